//! Fuzz target: see `flashpolicyd_fuzz::policy_validate` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashpolicyd_fuzz::policy_validate(data));
