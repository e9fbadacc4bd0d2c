//! The operating-system seams: the few things std does not expose (IPv6-only listening
//! sockets, `TCP_DEFER_ACCEPT`, waking a blocked `accept`, the reply sent with the FIN,
//! `SCHED_BATCH`, descriptor limits, SIGHUP under nohup, process liveness) and the
//! take-over of sockets handed to us by systemd or inetd. Every `unsafe` block of the
//! crate lives in this folder (the one module with `#[allow(unsafe_code)]`), each with
//! its `// SAFETY:` line.
//!
//! `unix.rs` is the Unix implementation, `other.rs` the stand-ins for other systems
//! (same names, portable answers), `inherit.rs` the inherited sockets. Callers use
//! `sys::name` and never need a `#[cfg]` of their own.

pub(crate) mod inherit;
#[cfg(not(unix))]
mod other;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
pub(crate) use other::*;
#[cfg(unix)]
pub(crate) use unix::*;

/// What [`batch_scheduling`] did for the calling thread.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scheduling {
    /// Now `SCHED_BATCH`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Batch,
    /// Left alone: the thread runs under another policy than the default one (an
    /// operator's `chrt`, or systemd's `CPUSchedulingPolicy=`), or this is not Linux.
    Kept,
}
