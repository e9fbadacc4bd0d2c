//! The clients: `flashpolicy-check` (against fake servers with one known flaw each,
//! and against the real daemon) and the load client `flashpolicy-bench`. One test
//! binary (`cargo test --test check`).

#[path = "../support/mod.rs"]
mod shared;

mod checker;
mod fake;

/// Every helper a test module reaches as `support::`.
mod support {
    pub use crate::checker::{closed_port, closed_port_on};
    pub use crate::shared::*;
}

mod bench_client;
mod daemon;
mod eval;
mod players;
mod probe;
