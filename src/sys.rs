//! The operating-system seams: the few things std does not expose (IPv6-only listening
//! sockets, `TCP_DEFER_ACCEPT`, waking the accept threads without touching a listening
//! socket (an addition: each waits in `poll()` on its listener and a shared wake pipe
//! before `accept()`), the reply sent with the FIN,
//! `SCHED_BATCH`, descriptor limits, inherited sockets, SIGHUP under nohup, process
//! liveness). Every `unsafe` block of the crate lives here (the one module with
//! `#[allow(unsafe_code)]`). Non-Unix builds get portable fallbacks.

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
#[cfg(all(unix, not(any(target_os = "linux", target_os = "freebsd"))))]
const LISTEN_BACKLOG: nix::sys::socket::Backlog = nix::sys::socket::Backlog::MAXCONN;

/// The longest listen queue the kernel grants (`net.core.somaxconn`), for the log.
#[cfg(target_os = "linux")]
pub(crate) fn listen_queue_limit() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok()?;
    text.trim().parse().ok()
}

/// Not known on this system.
#[cfg(not(target_os = "linux"))]
pub(crate) fn listen_queue_limit() -> Option<u32> {
    None
}

/// Creates a listening TCP socket on `addr`. An IPv6 socket is IPv6-only, so that
/// `0.0.0.0` and `::` can be bound side by side on one port.
///
/// # Errors
///
/// What the OS says (address in use, permission denied, no IPv6...).
#[cfg(unix)]
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

/// Creates a listening TCP socket on `addr` (std's defaults).
///
/// # Errors
///
/// What the OS says.
#[cfg(not(unix))]
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// How accept threads learn that the server stops (Unix): one pipe shared by all of
/// them. Each waits in `poll()` on its listener and the pipe's read end before it
/// calls `accept()`; [`Wake::wake`] writes one byte that is never read, so every
/// thread, now and later, sees the pipe readable and leaves. No listening socket is
/// touched: a socket inherited from systemd keeps its queued connections for the next
/// daemon (a `shutdown()` on it would destroy it for systemd too).
#[cfg(unix)]
pub(crate) struct Wake {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

/// What an accept thread should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptReady {
    /// A connection (or an error) waits on the listener: call `accept()`.
    Accept,
    /// The server stops: accept nothing more.
    Stop,
}

#[cfg(unix)]
impl Wake {
    /// A new, not yet woken, pipe (both ends non-blocking and close-on-exec).
    ///
    /// # Errors
    ///
    /// What the OS says (out of descriptors).
    pub(crate) fn new() -> io::Result<Wake> {
        use nix::fcntl::OFlag;
        #[cfg(not(target_vendor = "apple"))]
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // macOS has no pipe2: there the flags are set just after, as for the sockets.
        #[cfg(target_vendor = "apple")]
        let (read, write) = {
            use nix::fcntl::{fcntl, FcntlArg, FdFlag};
            let (read, write) = nix::unistd::pipe()?;
            for end in [&read, &write] {
                fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
                fcntl(end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            }
            (read, write)
        };
        Ok(Wake { read, write })
    }

    /// Wakes every thread waiting in [`Wake::wait_accept`], for good.
    pub(crate) fn wake(&self, _listeners: &[TcpListener]) {
        // A full pipe (never: one byte per stop) already wakes everyone.
        let _ = nix::unistd::write(&self.write, b"x");
    }

    /// Blocks until `listener` has a connection to accept or [`Wake::wake`] was
    /// called; a stop wins over a waiting connection, which stays queued.
    pub(crate) fn wait_accept(&self, listener: &TcpListener) -> AcceptReady {
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
                        return AcceptReady::Stop;
                    }
                    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                        return AcceptReady::Accept;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Let accept() report the fault (and the caller back off).
                Err(_) => return AcceptReady::Accept,
            }
        }
    }
}

/// Elsewhere: accept blocks, and a stop connects to each listener to wake it.
#[cfg(not(unix))]
pub(crate) struct Wake;

#[cfg(not(unix))]
impl Wake {
    pub(crate) fn new() -> io::Result<Wake> {
        Ok(Wake)
    }

    /// Connects to each listener, so that its blocked `accept()` returns.
    pub(crate) fn wake(&self, listeners: &[TcpListener]) {
        for l in listeners {
            wake_accept(l);
        }
    }

    pub(crate) fn wait_accept(&self, _listener: &TcpListener) -> AcceptReady {
        AcceptReady::Accept
    }
}

/// Makes a thread blocked in `accept()` on `listener` return, by connecting to it.
#[cfg(not(unix))]
fn wake_accept(listener: &TcpListener) {
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

/// True when SIGHUP was already ignored when we started (as under `nohup`). Must be
/// called before any handler is installed.
#[cfg(unix)]
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

/// On non-Unix systems there is no SIGHUP.
#[cfg(not(unix))]
pub(crate) fn sighup_ignored() -> bool {
    false
}

/// Sets SIGHUP back to "ignore" after the ctrl-c handler took it over, so a hangup does
/// not stop a daemon started under `nohup`.
///
/// # Errors
///
/// What the OS says.
#[cfg(unix)]
pub(crate) fn ignore_sighup() -> io::Result<()> {
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
pub(crate) fn ignore_sighup() -> io::Result<()> {
    Ok(())
}

/// True if a process with this pid exists (even one we may not signal).
#[cfg(unix)]
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

/// True if a process with this pid is running (Windows: it can be opened and has not
/// exited).
#[cfg(windows)]
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

/// Without a way to ask, assume a recorded process is alive.
#[cfg(not(any(unix, windows)))]
pub(crate) fn process_alive(_pid: u32) -> bool {
    true
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
#[cfg(unix)]
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

/// The soft open-files limit now (it sizes the Linux readiness gate).
#[cfg(target_os = "linux")]
pub(crate) fn open_files_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// No descriptor limit to raise outside Unix.
#[cfg(not(unix))]
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
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

/// Puts the calling thread (and the threads it creates later) under `SCHED_BATCH`, if it
/// runs under the default policy: same share of the CPU, but waking it does not preempt
/// the thread that woke it, so an accept thread hands several connections to a worker
/// per context switch instead of one. Needs no privilege.
pub(crate) fn batch_scheduling() -> io::Result<Scheduling> {
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

// --- inherited sockets and privileges ---

/// What a descriptor handed to us turned out to be, when it is not what we need.
#[cfg(unix)]
fn not_usable(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Takes ownership of the `count` sockets systemd socket activation handed over
/// (descriptors 3, 4, …), checking that each is a listening TCP socket. Only the first
/// call in a process claims them: a later one fails, so no descriptor gets two owners.
///
/// # Errors
///
/// The descriptor at fault and why it is not usable (see [`inherited_listener`]).
#[cfg(unix)]
pub(crate) fn claim_inherited_listeners(
    first: i32,
    count: usize,
) -> Result<Vec<TcpListener>, (i32, io::Error)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLAIMED: AtomicBool = AtomicBool::new(false);
    if CLAIMED.swap(true, Ordering::SeqCst) {
        let e = not_usable("was already claimed by this process");
        return Err((first, e));
    }
    (first..)
        .take(count)
        // SAFETY: by the socket activation protocol these descriptors were handed to
        // this process for it to own, and the flag above lets only one call claim them.
        .map(|fd| unsafe { inherited_listener(fd) }.map_err(|e| (fd, e)))
        .collect()
}

/// No socket activation outside Unix.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(unix))]
pub(crate) fn claim_inherited_listeners(
    first: i32,
    _count: usize,
) -> Result<Vec<TcpListener>, (i32, io::Error)> {
    Err((
        first,
        io::Error::new(
            io::ErrorKind::Unsupported,
            "socket activation is not available on this system",
        ),
    ))
}

/// The local addresses of the `count` descriptors from `first` on that are TCP sockets,
/// without taking them (`--check-config` under socket activation).
#[cfg(unix)]
pub(crate) fn inherited_addresses(first: i32, count: usize) -> Vec<SocketAddr> {
    use nix::sys::socket::{getsockname, SockaddrStorage};
    (first..)
        .take(count)
        .filter_map(|fd| getsockname::<SockaddrStorage>(fd).ok())
        .filter_map(|a| match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
            (Some(v4), _) => Some(SocketAddr::from((v4.ip(), v4.port()))),
            (_, Some(v6)) => Some(SocketAddr::from((v6.ip(), v6.port()))),
            _ => None,
        })
        .collect()
}

/// No socket activation outside Unix.
#[cfg(not(unix))]
pub(crate) fn inherited_addresses(_first: i32, _count: usize) -> Vec<SocketAddr> {
    Vec::new()
}

/// Takes ownership of descriptor `fd` and checks that it is a listening TCP socket; it
/// is made close-on-exec and blocking.
///
/// # Safety
///
/// If `fd` is open, nothing else in the process may own or use it, now or later: the
/// returned listener closes it when dropped.
///
/// # Errors
///
/// `InvalidInput` with a readable reason when `fd` is not open, not a socket, not a
/// TCP socket, or not listening (a connected socket, as `Accept=yes` hands out);
/// what the OS says otherwise.
#[cfg(unix)]
unsafe fn inherited_listener(fd: i32) -> io::Result<TcpListener> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use nix::sys::socket::{getsockopt, sockopt};
    use std::os::fd::{FromRawFd, OwnedFd};

    if fd < 3 {
        return Err(not_usable(
            "is standard input, output or error, not an inherited socket",
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor flags of an integer descriptor; it
    // touches no memory and fails with EBADF if the descriptor is not open.
    if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } < 0 {
        return Err(not_usable("is not open"));
    }
    // SAFETY: the descriptor is open (checked just above), and the caller's contract
    // says no one else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    check_tcp_socket(&owned)?;
    match getsockopt(&owned, sockopt::AcceptConn) {
        Ok(true) => {}
        Ok(false) => {
            return Err(not_usable(
                "is a connected socket, not a listening one (Accept=yes in the .socket unit? \
                 use Accept=no, or --inetd with Accept=yes)",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let listener = TcpListener::from(owned);
    listener.set_nonblocking(false)?;
    Ok(listener)
}

/// Checks that `fd` is a TCP (IPv4 or IPv6 stream) socket.
#[cfg(unix)]
fn check_tcp_socket(fd: &std::os::fd::OwnedFd) -> io::Result<()> {
    use nix::sys::socket::AddressFamily;
    match stream_family(fd)? {
        Some(AddressFamily::Inet | AddressFamily::Inet6) => Ok(()),
        _ => Err(not_usable("is not an IPv4 or IPv6 socket")),
    }
}

/// The address family of `fd`, after checking it is a stream socket.
#[cfg(unix)]
fn stream_family(fd: &std::os::fd::OwnedFd) -> io::Result<Option<nix::sys::socket::AddressFamily>> {
    use nix::errno::Errno;
    use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType};
    use nix::sys::socket::{SockaddrLike, SockaddrStorage};
    use std::os::fd::AsRawFd;

    match getsockopt(fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(_) => return Err(not_usable("is not a stream (TCP) socket")),
        Err(Errno::ENOTSOCK) => return Err(not_usable("is not a socket")),
        Err(e) => return Err(e.into()),
    }
    let addr: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    Ok(addr.family())
}

/// The connection inetd hands us as standard input, duplicated into a `TcpStream`.
///
/// Standard input may be a connected TCP socket (inetd `nowait`, xinetd `wait = no`,
/// `systemd-socket-activate --inetd -a`), a connected Unix stream socket (what
/// `socat … EXEC:` passes by default; read, write, timeouts and shutdown work the
/// same on it), or a listening TCP socket (inetd `wait` mode): then one connection is
/// accepted, waiting at most `accept_within` for it.
///
/// # Errors
///
/// `InvalidInput` with a readable reason when standard input is not a stream socket;
/// `TimedOut` when no connection came in `wait` mode; what the OS says otherwise.
#[cfg(unix)]
pub(crate) fn stdin_connection(
    accept_within: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt, AddressFamily};
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::os::fd::AsFd;

    let fd = nix::unistd::dup(io::stdin().as_fd())?;
    let family = stream_family(&fd).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => not_usable(&format!("standard input {e}")),
        _ => e,
    })?;
    let listening = getsockopt(&fd, sockopt::AcceptConn)?;
    let stream = match (family, listening) {
        (Some(AddressFamily::Inet | AddressFamily::Inet6), true) => {
            // On Linux a receive timeout bounds accept() too.
            let micros = i64::try_from(accept_within.as_micros()).unwrap_or(i64::MAX);
            setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::microseconds(micros))?;
            match TcpListener::from(fd).accept() {
                Ok((stream, _)) => stream,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "standard input is a listening socket (inetd wait mode) and no \
                         connection came to accept",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        (Some(AddressFamily::Inet | AddressFamily::Inet6 | AddressFamily::Unix), false) => {
            std::net::TcpStream::from(fd)
        }
        (Some(AddressFamily::Unix), true) => {
            return Err(not_usable(
                "standard input is a listening Unix socket: pass a connection (inetd `nowait`)",
            ))
        }
        _ => {
            return Err(not_usable(
                "standard input is not a TCP or Unix stream socket",
            ))
        }
    };
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// No inetd outside Unix.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(unix))]
pub(crate) fn stdin_connection(
    _accept_within: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--inetd is not available on this system",
    ))
}

/// Points standard input, output and error at `/dev/null`, so that nothing written to
/// them (not even a panic message) can reach the client whose socket they were under
/// inetd, and so that our own duplicate is the connection's last descriptor.
///
/// # Errors
///
/// What the OS says.
#[cfg(unix)]
pub(crate) fn detach_stdio() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// Nothing to do outside Unix (there is no inetd mode).
///
/// # Errors
///
/// Never.
#[cfg(not(unix))]
pub(crate) fn detach_stdio() -> io::Result<()> {
    Ok(())
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
        let queue = listen_queue_limit().unwrap_or(0);
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
