//! Fuzz target: see `flashpolicyd_fuzz::allow_spec` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashpolicyd_fuzz::allow_spec(data));
