//! Fuzz target: see `flashpolicyd_fuzz::request_matcher` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashpolicyd_fuzz::request_matcher(data));
