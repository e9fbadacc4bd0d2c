//! The daemon's behaviour, seen from outside: its command line, the wire exchange,
//! its life from start to stop, floods, the counters, and the fuzz corpus replayed
//! through the parsers it serves with. One test binary (`cargo test --test daemon`).

// Off Unix, stats.rs (Unix only) is left out and some helpers go unused.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

#[path = "../support/served.rs"]
mod served;
#[path = "../support/mod.rs"]
mod shared;

mod helpers;

/// Every helper a test module reaches as `support::`.
mod support {
    pub use crate::helpers::*;
    pub use crate::served::*;
    pub use crate::shared::*;
}

mod cli;
mod flood;
mod fuzz_corpus;
mod lifecycle;
mod stats;
mod wire;
