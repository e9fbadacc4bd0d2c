//! The operating-system seams: what std does not expose (IPv6-only listeners,
//! `TCP_DEFER_ACCEPT`, waking the accept threads without touching a listening socket
//! (an addition to the fixed design: each waits in `poll()` on its listener and a shared
//! wake pipe before `accept()`), the reply sent with the FIN, a policy file opened
//! without blocking, `SCHED_BATCH`, descriptor limits,
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

use std::io;

/// The longest listen queue the kernel grants (Linux: `net.core.somaxconn`), for the
/// log; `None` where that is not known.
pub(crate) fn listen_queue_limit() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok()?;
    text.trim().parse().ok()
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

/// What an accept thread should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptReady {
    /// A connection (or an error) waits on the listener: call `accept()`.
    Accept,
    /// The server stops: accept nothing more.
    Stop,
}

/// Opens `path` for reading only if it is a regular file, without ever blocking: the
/// open is non-blocking (a FIFO with no writer, a device, would otherwise hang it) and
/// the opened file is checked with `fstat`. Anything else is an `InvalidInput` error
/// saying what it is ("is a FIFO, not a regular file").
///
/// # Errors
///
/// What the OS says, or `InvalidInput` for a file that is not regular.
pub(crate) fn open_regular(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK changes nothing for a regular file's reads.
        options.custom_flags(nix::libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, not a regular file", file_kind(kind)),
    ))
}

/// "a directory", "a FIFO"... for a message.
fn file_kind(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}
