//! The operating-system seams: the few things std does not expose (IPv6-only listening
//! sockets, waking a blocked `accept`, SIGHUP under nohup, process liveness). Every
//! `unsafe` block of the crate lives here. Non-Unix builds get portable fallbacks.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Listen queue length asked for (the kernel caps it at `somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Creates a listening TCP socket on `addr`. An IPv6 socket is IPv6-only, so that
/// `0.0.0.0` and `::` can be bound side by side on one port.
///
/// # Errors
///
/// What the OS says (address in use, permission denied, no IPv6...).
#[cfg(unix)]
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use nix::sys::socket::{
        self as s, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    use std::os::fd::AsRawFd;

    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = s::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        s::SockProtocol::Tcp,
    )?;
    s::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        s::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    s::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    let backlog = s::Backlog::new(LISTEN_BACKLOG).unwrap_or(s::Backlog::MAXCONN);
    s::listen(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

/// Creates a listening TCP socket on `addr` (std's defaults).
///
/// # Errors
///
/// What the OS says.
#[cfg(not(unix))]
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Makes a thread blocked in `accept()` on `listener` return. On Linux, shutting down
/// a listening socket does that; elsewhere (and as a fallback) we connect to it.
pub fn wake_accept(listener: &TcpListener) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        if nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Read)
            .is_ok()
            && cfg!(target_os = "linux")
        {
            return;
        }
    }
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

/// True when SIGHUP was already ignored when we started (as under `nohup`). Must be
/// called before any handler is installed.
#[cfg(unix)]
pub fn sighup_ignored() -> bool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_IGN runs no code in signal context; we put the previous
    // disposition back at once unless it was SIG_IGN already.
    let old = match unsafe { sigaction(Signal::SIGHUP, &ignore) } {
        Ok(old) => old,
        Err(_) => return false,
    };
    if matches!(old.handler(), SigHandler::SigIgn) {
        return true;
    }
    // SAFETY: restores the disposition the process started with.
    let _ = unsafe { sigaction(Signal::SIGHUP, &old) };
    false
}

/// On non-Unix systems there is no SIGHUP.
#[cfg(not(unix))]
pub fn sighup_ignored() -> bool {
    false
}

/// Sets SIGHUP back to "ignore" after the ctrl-c handler took it over, so a hangup does
/// not stop a daemon started under `nohup`.
///
/// # Errors
///
/// What the OS says.
#[cfg(unix)]
pub fn ignore_sighup() -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code in signal context.
    unsafe { sigaction(Signal::SIGHUP, &ignore) }?;
    Ok(())
}

/// No SIGHUP on non-Unix systems.
///
/// # Errors
///
/// Never.
#[cfg(not(unix))]
pub fn ignore_sighup() -> io::Result<()> {
    Ok(())
}

/// True if a process with this pid exists (even one we may not signal).
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Without a portable way to ask, assume a recorded process is alive.
#[cfg(not(unix))]
pub fn process_alive(_pid: u32) -> bool {
    true
}

/// Asks the kernel (Linux `TCP_DEFER_ACCEPT`) to hand us a connection only once it has
/// data, for up to `wait`: clients that connect and send nothing never reach a worker.
///
/// # Errors
///
/// What the OS says; `Unsupported` where the option does not exist.
#[cfg(target_os = "linux")]
pub fn defer_accept(listener: &TcpListener, wait: std::time::Duration) -> io::Result<()> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let secs: libc::c_int = wait.as_secs().clamp(1, 3600) as libc::c_int;
    // SAFETY: `secs` is a live c_int and the length passed is its size; the fd is owned
    // by `listener` for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `TCP_DEFER_ACCEPT` exists only on Linux.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub fn defer_accept(_listener: &TcpListener, _wait: std::time::Duration) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Raises the soft open-files limit to the hard limit. Returns `(old, new)` soft limits,
/// or `None` where there is no such limit or it could not be read.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some((soft, soft));
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some((soft, hard)),
        Err(_) => Some((soft, soft)),
    }
}

/// No descriptor limit to raise outside Unix.
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
}

/// Reads what has already arrived, without waiting (`MSG_DONTWAIT`): `WouldBlock` when
/// nothing has.
///
/// # Errors
///
/// What the OS says.
#[cfg(target_os = "linux")]
pub fn recv_now(stream: &std::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    Ok(recv(stream.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)
}

/// Writes what fits in the socket buffer now, without waiting (`MSG_DONTWAIT`).
///
/// # Errors
///
/// What the OS says.
#[cfg(target_os = "linux")]
pub fn send_now(stream: &std::net::TcpStream, buf: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    use std::os::fd::AsRawFd;
    Ok(send(
        stream.as_raw_fd(),
        buf,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    )?)
}

/// True for the `accept` errors that mean "out of descriptors or memory": back off and
/// retry rather than spin or exit.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::libc;
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::OutOfMemory
    }
}
