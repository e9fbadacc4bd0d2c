//! Fuzz target: see `flashpolicyd_fuzz::domain_match` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashpolicyd_fuzz::domain_match(data));
