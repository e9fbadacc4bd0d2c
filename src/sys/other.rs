//! The OS seams' stand-ins on Windows (the one other system the crate builds for):
//! std's defaults, or "not available here", with the names and contracts of `unix.rs`.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Creates a listening TCP socket on `addr` (std's defaults).
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Here accept blocks, and a stop connects to each listener to wake it.
pub(crate) struct Wake;

impl Wake {
    /// A stop connects to each listener: what `accept()` returns after it is the
    /// wake-up.
    pub(crate) const CONNECTS: bool = true;

    /// Nothing to make.
    pub(crate) fn new() -> io::Result<Wake> {
        Ok(Wake)
    }

    /// Connects to each listener, so that its blocked `accept()` returns.
    pub(crate) fn wake(&self, listeners: &[TcpListener]) {
        for l in listeners {
            wake_by_connecting(l);
        }
    }

    /// Goes straight to `accept()`.
    pub(crate) fn wait_accept(&self, _listener: &TcpListener) -> super::AcceptReady {
        super::AcceptReady::Accept
    }
}

/// On non-Unix systems there is no SIGHUP.
pub(crate) fn sighup_ignored() -> bool {
    false
}

/// No SIGHUP on non-Unix systems.
pub(crate) fn ignore_sighup() -> io::Result<()> {
    Ok(())
}

/// True if a process with this pid is running (it can be opened and has not exited).
pub(crate) fn process_alive(pid: u32) -> bool {
    type Handle = *mut core::ffi::c_void;
    const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
    const STILL_ACTIVE: u32 = 259;
    #[link(name = "kernel32")]
    extern "system" {
        fn OpenProcess(access: u32, inherit: i32, pid: u32) -> Handle;
        fn GetExitCodeProcess(process: Handle, code: *mut u32) -> i32;
        fn CloseHandle(handle: Handle) -> i32;
    }
    // SAFETY: OpenProcess takes plain integers and returns a handle or null.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if handle.is_null() {
        // No such process, or one we may not query; only the former is common for the
        // pid a pid file records.
        return false;
    }
    let mut code: u32 = 0;
    // SAFETY: `handle` is a valid process handle (checked above) and `code` a live u32.
    let ok = unsafe { GetExitCodeProcess(handle, &mut code) };
    // SAFETY: `handle` was returned by OpenProcess and is closed exactly once.
    unsafe { CloseHandle(handle) };
    ok != 0 && code == STILL_ACTIVE
}

/// `TCP_DEFER_ACCEPT` exists only on Linux.
pub(crate) fn defer_accept(_listener: &TcpListener, _wait: std::time::Duration) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No descriptor limit to raise outside Unix.
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
}

/// Not known on this system.
pub(crate) fn open_files_limit() -> Option<u64> {
    None
}

/// `SCHED_BATCH` exists only on Linux.
pub(crate) fn batch_scheduling() -> io::Result<super::Scheduling> {
    Ok(super::Scheduling::Kept)
}

/// One write, as much as the socket takes within its write timeout.
pub(crate) fn send_part(stream: &std::net::TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    let mut s = stream;
    s.write(bytes)
}

/// True for the `accept` errors that mean "out of memory": back off and retry.
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::OutOfMemory
}

/// True for the errors that mean "this host has no IPv6" when binding `::`.
pub(crate) fn is_no_ipv6(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
}

/// Makes a blocked `accept()` on `listener` return by connecting to it (on loopback
/// when it listens on every address).
fn wake_by_connecting(listener: &TcpListener) {
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
