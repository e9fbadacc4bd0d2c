//! flashpolicyd: a Flash socket policy server.
//!
//! Flash Player will not open a socket to a host until it has fetched a *socket
//! policy*: it connects to port 843, sends `<policy-file-request/>` and one NUL, and
//! expects a `<cross-domain-policy>` document ending in one NUL, after which the server
//! closes. This crate answers that request from a fixed pool of blocking workers: an
//! accept thread per listener hands each socket to a worker, which matches the request
//! incrementally under one deadline for the whole connection, sends the policy bytes
//! (built once at start) in one write, and closes cleanly.
//!
//! Log-level policy: `error` = the daemon cannot do its job; `warn` = an operator
//! should look (permissive or dubious policy, refused reload, shed connections, out of
//! descriptors); `info` = start, stop, counters; `debug` = one line per connection;
//! `trace` = the bytes received.
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod check;
pub mod cli;
pub mod config;
mod conn;
pub mod daemon;
pub mod error;
#[cfg_attr(not(target_os = "linux"), path = "gate/standin.rs")]
mod gate;
mod logging;
mod metrics;
pub mod options;
mod pidfile;
pub mod policy;
mod privilege;
pub mod protocol;
mod reload;
pub mod request;
mod server;
mod stats;
#[allow(unsafe_code)] // the OS seams: every unsafe block, each with its SAFETY line
mod sys;

pub use error::{Error, Result};
