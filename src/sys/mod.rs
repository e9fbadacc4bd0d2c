//! The operating-system seams: what std does not expose (IPv6-only listeners,
//! `TCP_DEFER_ACCEPT`, the reply sent with the FIN, `SCHED_BATCH`, descriptor limits,
//! SIGHUP under nohup, process liveness). `unix.rs` is the Unix implementation,
//! `other.rs` the stand-ins for other systems, `inherit.rs` the take-over of sockets
//! systemd or inetd hand us. Every `unsafe` block of the crate is in this folder (the
//! one `#[allow(unsafe_code)]`), each with its `// SAFETY:` line; callers need no `#[cfg]`.

pub(crate) mod inherit;
#[cfg(not(unix))]
mod other;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
pub(crate) use other::*;
#[cfg(unix)]
pub(crate) use unix::*;

use std::net::{SocketAddr, TcpListener};

/// The longest listen queue the kernel grants (Linux: `net.core.somaxconn`), for the
/// log; `None` where that is not known.
pub(crate) fn listen_queue_limit() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok()?;
    text.trim().parse().ok()
}

/// Makes a blocked `accept()` on `listener` return by connecting to it (on loopback
/// when it listens on every address).
pub(crate) fn wake_by_connecting(listener: &TcpListener) {
    if let Ok(mut addr) = listener.local_addr() {
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1));
    }
}

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
