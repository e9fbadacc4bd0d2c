//! The OS seams on Unix: the calls std does not expose, through nix and, where nix
//! has no wrapper, libc in `unsafe` blocks. Linux-only calls say so; other Unix
//! systems get the portable answer beside them.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Listen queue length asked for: the longest the kernel grants (Linux and FreeBSD: -1,
/// capped at `net.core.somaxconn`). That queue is also where `TCP_DEFER_ACCEPT` keeps
/// silent connections: once they outnumber it, each new connection, real clients'
/// included, is answered with a SYN cookie, which skips the deferral (with 1,024 here,
/// 12 to 46 % of the real clients' connections beside 2,000 idle ones, and the idle
/// ones beyond the queue accepted at once and held in the readiness gate).
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
const LISTEN_BACKLOG: nix::sys::socket::Backlog = nix::sys::socket::Backlog::MAXALLOWABLE;

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
const LISTEN_BACKLOG: nix::sys::socket::Backlog = nix::sys::socket::Backlog::MAXCONN;

/// Creates a listening TCP socket on `addr`. An IPv6 socket is IPv6-only, so that
/// `0.0.0.0` and `::` can be bound side by side on one port.
///
/// # Errors
///
/// What the OS says (address in use, permission denied, no IPv6...).
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use nix::sys::socket::{
        self as s, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    use std::os::fd::AsRawFd;

    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    // macOS has no SOCK_CLOEXEC: there the flag is set just after, as std does.
    #[cfg(not(target_vendor = "apple"))]
    let flags = SockFlag::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let flags = SockFlag::empty();
    let fd = s::socket(family, SockType::Stream, flags, s::SockProtocol::Tcp)?;
    #[cfg(target_vendor = "apple")]
    {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    s::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        s::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    s::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    s::listen(&fd, LISTEN_BACKLOG)?;
    Ok(TcpListener::from(fd))
}

/// How accept threads learn that the server stops (Unix): one pipe shared by all of
/// them. Each waits in `poll()` on its listener and the pipe's read end before it
/// calls `accept()`; [`Wake::wake`] writes one byte that is never read, so every
/// thread, now and later, sees the pipe readable and leaves. No listening socket is
/// touched: a socket inherited from systemd keeps its queued connections for the next
/// daemon (a `shutdown()` on it would destroy it for systemd too).
pub(crate) struct Wake {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

impl Wake {
    /// A stop does not connect to the listeners: whatever `accept()` returns is a client.
    pub(crate) const CONNECTS: bool = false;

    /// A new, not yet woken, pipe (both ends non-blocking and close-on-exec).
    ///
    /// # Errors
    ///
    /// What the OS says (out of descriptors).
    pub(crate) fn new() -> io::Result<Wake> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        // macOS has no pipe2: the flags are set just after.
        #[cfg(not(target_vendor = "apple"))]
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        #[cfg(target_vendor = "apple")]
        let (read, write) = nix::unistd::pipe()?;
        for end in [&read, &write] {
            fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
            fcntl(end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        Ok(Wake { read, write })
    }

    /// Wakes every thread waiting in [`Wake::wait_accept`], for good.
    pub(crate) fn wake(&self, _listeners: &[TcpListener]) {
        // A full pipe (never: one byte per stop) already wakes everyone.
        let _ = nix::unistd::write(&self.write, b"x");
    }

    /// Blocks until `listener` has a connection to accept or [`Wake::wake`] was
    /// called; a stop wins over a waiting connection, which stays queued.
    pub(crate) fn wait_accept(&self, listener: &TcpListener) -> super::AcceptReady {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.read.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                        return super::AcceptReady::Stop;
                    }
                    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                        return super::AcceptReady::Accept;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Let accept() report the fault (and the caller back off).
                Err(_) => return super::AcceptReady::Accept,
            }
        }
    }
}

/// True when SIGHUP was already ignored when we started (as under `nohup`). Must be
/// called before any handler is installed.
pub(crate) fn sighup_ignored() -> bool {
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

/// Sets SIGHUP back to "ignore" after the ctrl-c handler took it over, so a hangup does
/// not stop a daemon started under `nohup`.
///
/// # Errors
///
/// What the OS says.
pub(crate) fn ignore_sighup() -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code in signal context.
    unsafe { sigaction(Signal::SIGHUP, &ignore) }?;
    Ok(())
}

/// True if a process with this pid exists (even one we may not signal).
pub(crate) fn process_alive(pid: u32) -> bool {
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

/// Asks the kernel (Linux `TCP_DEFER_ACCEPT`) to hand us a connection only once it has
/// data, or once [`deferral_for`]`(wait)` has passed: clients that connect and send
/// nothing reach neither the gate nor a worker meanwhile.
///
/// # Errors
///
/// What the OS says; `Unsupported` where the option does not exist.
#[cfg(target_os = "linux")]
pub(crate) fn defer_accept(listener: &TcpListener, wait: std::time::Duration) -> io::Result<()> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let deferral = deferral_for(wait);
    let secs = libc::c_int::try_from(deferral.as_secs()).unwrap_or(libc::c_int::MAX);
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

/// The kernel keeps a silent connection for a number of SYN-ACK retransmissions, sent
/// 1, 2, 4 … seconds apart (at most 120): a deferral is 1, 3, 7, 15 … seconds, and a
/// wait in between is rounded up. This is the longest one that is not longer than
/// `wait` (at least 1 s, at most an hour), so that the deferral and what is left of the
/// deadline afterwards add up to `wait`.
#[cfg(target_os = "linux")]
pub(crate) fn deferral_for(wait: std::time::Duration) -> std::time::Duration {
    let limit = wait.as_secs().min(3600);
    let (mut total, mut period) = (1, 2);
    while total + period <= limit {
        total += period;
        period = (period * 2).min(120);
    }
    std::time::Duration::from_secs(total)
}

/// `TCP_DEFER_ACCEPT` exists only on Linux.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn defer_accept(_listener: &TcpListener, _wait: std::time::Duration) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Raises the soft open-files limit to the hard limit. Returns `(old, new)` soft limits,
/// or `None` where there is no such limit or it could not be read.
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // `rlim_t` is u64 on Linux and macOS, i64 on FreeBSD (never negative: its
    // RLIM_INFINITY is i64::MAX).
    #[allow(clippy::useless_conversion)]
    let (old, max) = (u64::try_from(soft).ok()?, u64::try_from(hard).ok()?);
    if soft >= hard {
        return Some((old, old));
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some((old, max)),
        Err(_) => Some((old, old)),
    }
}

/// The soft open-files limit now (it sizes the readiness gate).
pub(crate) fn open_files_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    #[allow(clippy::useless_conversion)] // `rlim_t` is i64 on FreeBSD, u64 elsewhere
    u64::try_from(soft).ok()
}

/// Puts the calling thread (and the threads it creates later) under `SCHED_BATCH`, if it
/// runs under the default policy: same share of the CPU, but waking it does not preempt
/// the thread that woke it, so an accept thread hands several connections to a worker
/// per context switch instead of one. Needs no privilege.
pub(crate) fn batch_scheduling() -> io::Result<super::Scheduling> {
    use super::Scheduling;
    #[cfg(target_os = "linux")]
    {
        use nix::libc;
        // Raw system calls: musl's wrappers of these two return ENOSYS by design.
        // SAFETY: sched_getscheduler takes a pid (0: the calling thread) and no pointers.
        let policy = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
        if policy < 0 {
            return Err(io::Error::last_os_error());
        }
        if policy != libc::c_long::from(libc::SCHED_OTHER) {
            return Ok(Scheduling::Kept);
        }
        // A struct literal would not build on musl, whose sched_param has more fields.
        // SAFETY: sched_param is plain integers, for which all zeroes is a valid value
        // (priority 0, the only one SCHED_BATCH allows).
        let param: libc::sched_param = unsafe { std::mem::zeroed() };
        // SAFETY: `param` is a valid sched_param that outlives the call, which only reads
        // it; pid 0 is the calling thread.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                0,
                libc::SCHED_BATCH,
                &param as *const libc::sched_param,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Scheduling::Batch)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(Scheduling::Kept)
    }
}

/// One send of the reply, as much as the socket takes within its write timeout, for
/// a caller that closes (or shuts down the write side) right after (`conn::send` loops
/// over the parts). On Linux the bytes are held back (`MSG_MORE`) until then, so they
/// leave with the FIN in one segment: one packet and one acknowledgement fewer per
/// connection (18 % less server CPU per connection in the A/B of
/// docs/performance.md). Elsewhere, a plain write.
///
/// # Errors
///
/// What the OS says; `WouldBlock` or `TimedOut` when the write timeout passed.
#[cfg(target_os = "linux")]
pub(crate) fn send_part(stream: &std::net::TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    use std::os::fd::AsRawFd;
    // nix has no MSG_MORE; the flag is only a number to the kernel.
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
    Ok(send(stream.as_raw_fd(), bytes, flags)?)
}

/// One write, as much as the socket takes within its write timeout.
///
/// # Errors
///
/// What the OS says; `WouldBlock` or `TimedOut` when the write timeout passed.
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_part(stream: &std::net::TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    let mut s = stream;
    s.write(bytes)
}

/// True for the `accept` errors that mean "out of descriptors or memory": back off and
/// retry rather than spin or exit.
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    use nix::libc;
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// True for the errors that mean "this host has no IPv6" when binding `::`.
pub(crate) fn is_no_ipv6(e: &io::Error) -> bool {
    use nix::libc;
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    /// The kernel's deferrals are its SYN-ACK retransmission times, 1, 2, 4 … s apart
    /// and at most 120 s apart (`secs_to_retrans` in net/ipv4/tcp.c): 1, 3, 7, 15, 31,
    /// 63, 127, 247, 367 … s. The wait asked for is rounded down to one of them.
    #[test]
    fn a_deferral_is_the_longest_kernel_wait_within_the_timeout() {
        use std::time::Duration;
        let secs = |s: f64| deferral_for(Duration::from_secs_f64(s)).as_secs();
        let cases = [
            (0.0, 1),
            (0.5, 1),
            (1.0, 1),
            (2.9, 1),
            (3.0, 3),
            (6.0, 3),
            (7.0, 7),
            (20.0, 15),
            (127.0, 127),
            (246.0, 127),
            (247.0, 247),
            (400.0, 367),
            (1e9, 3487),
        ];
        for (wait, want) in cases {
            assert_eq!(secs(wait), want, "deferral for a {wait} s timeout");
        }
    }

    /// A flood of silent connections larger than the old queue (1,024) stays in the
    /// kernel: none can be accepted, while a client that sends its request is. With a
    /// queue shorter than the flood, the connections beyond it were answered with SYN
    /// cookies, which skip `TCP_DEFER_ACCEPT`, and reached `accept()` at once.
    #[test]
    fn silent_connections_beyond_a_thousand_stay_in_the_kernel() {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        use std::time::Duration;
        const SILENT: usize = 1_100;
        let _ = raise_open_files_limit();
        let queue = super::super::listen_queue_limit().unwrap_or(0);
        let files = open_files_limit().unwrap_or(0);
        if queue < 1_200 || files < 1_400 {
            eprintln!("skipped: net.core.somaxconn {queue}, open-files limit {files}");
            return;
        }
        let listener = listen("127.0.0.1:0".parse().expect("address")).expect("listen");
        defer_accept(&listener, Duration::from_secs(60)).expect("TCP_DEFER_ACCEPT");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let silent: Vec<TcpStream> = (0..SILENT)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("silent connection {i}: {e}"))
            })
            .collect();
        match listener.accept() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("silent connection from {peer} was accepted (a SYN cookie?)"),
            Err(e) => panic!("accept: {e}"),
        }
        let mut talker = TcpStream::connect(addr).expect("connect");
        talker
            .write_all(b"<policy-file-request/>\0")
            .expect("request");
        let mut ready = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut ready, PollTimeout::from(10_000u16)).expect("poll");
        assert_eq!(
            n, 1,
            "the talking client was not ready to accept within 10 s"
        );
        let (_, peer) = listener.accept().expect("accept the talking client");
        assert_eq!(peer, talker.local_addr().expect("address"));
        drop(silent);
    }
}
