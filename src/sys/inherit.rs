//! Listening sockets handed over by systemd socket activation: when `LISTEN_PID` is
//! our pid, `LISTEN_FDS` sockets start at descriptor 3 and are served instead of
//! binding (so port 843 needs no root). The variables are removed at start, so that
//! they reach no child. Also inetd's single connection on stdin ([`stdin_connection`]).
//! Non-Unix systems have neither: the stand-ins at the end say so.

use std::net::TcpListener;

use std::io;
use std::net::SocketAddr;

use crate::error::{Error, Result};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
pub(crate) const LISTEN_FDS_START: i32 = 3;
/// Most inherited sockets accepted: a sanity bound on `LISTEN_FDS`.
pub(crate) const MAX_LISTEN_FDS: usize = 64;

/// What the `LISTEN_*` environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activation {
    /// No socket activation (no `LISTEN_PID`, or `LISTEN_FDS=0`): bind as configured.
    Off,
    /// `LISTEN_PID` names another process (the variables leaked from a parent that
    /// did not `exec` us): they are ignored.
    NotOurs {
        /// The `LISTEN_PID` value, as found.
        listen_pid: String,
    },
    /// Serve the sockets at descriptors 3 to 3 + `count` - 1.
    Sockets {
        /// How many (`LISTEN_FDS`).
        count: usize,
    },
    /// `LISTEN_PID` is ours but `LISTEN_FDS` is not a usable number.
    Invalid {
        /// The `LISTEN_FDS` value, as found.
        listen_fds: String,
    },
}

/// Interprets `LISTEN_PID` and `LISTEN_FDS` for the process `our_pid` (pure).
pub(crate) fn interpret(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    our_pid: u32,
) -> Activation {
    let Some(pid) = listen_pid else {
        return Activation::Off;
    };
    if pid.trim().parse::<u32>().ok() != Some(our_pid) {
        return Activation::NotOurs {
            listen_pid: pid.to_string(),
        };
    }
    let fds = listen_fds.unwrap_or("");
    match fds.trim().parse::<usize>() {
        Ok(0) => Activation::Off,
        Ok(n) if n <= MAX_LISTEN_FDS => Activation::Sockets { count: n },
        _ => Activation::Invalid {
            listen_fds: fds.to_string(),
        },
    }
}

/// Reads and removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`. Call it before
/// any thread starts (the environment is not thread-safe). Outside Unix there is no
/// socket activation: always [`Activation::Off`], the environment untouched.
pub(crate) fn take_from_env() -> Activation {
    if !cfg!(unix) {
        return Activation::Off;
    }
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    interpret(pid.as_deref(), fds.as_deref(), std::process::id())
}

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
/// [`Error::Setup`] (exit 1) naming the descriptor that is not usable and why.
#[cfg(unix)]
pub(crate) fn listeners(count: usize) -> Result<Vec<TcpListener>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLAIMED: AtomicBool = AtomicBool::new(false);
    let unusable = |fd: i32, e: io::Error| {
        Error::Setup(format!(
            "socket activation: inherited descriptor {fd} {}",
            crate::error::describe_io(&e)
        ))
    };
    if CLAIMED.swap(true, Ordering::SeqCst) {
        let e = not_usable("was already claimed by this process");
        return Err(unusable(LISTEN_FDS_START, e));
    }
    (LISTEN_FDS_START..)
        .take(count)
        // SAFETY: by the socket activation protocol these descriptors were handed to
        // this process for it to own, and the flag above lets only one call claim them.
        .map(|fd| unsafe { inherited_listener(fd) }.map_err(|e| unusable(fd, e)))
        .collect()
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

/// No socket activation outside Unix ([`take_from_env`] says so).
#[cfg(not(unix))]
pub(crate) fn listeners(_count: usize) -> Result<Vec<TcpListener>> {
    Err(Error::Setup("no socket activation on this system".into()))
}

/// No socket activation outside Unix.
#[cfg(not(unix))]
pub(crate) fn inherited_addresses(_first: i32, _count: usize) -> Vec<SocketAddr> {
    Vec::new()
}

/// No inetd outside Unix.
#[cfg(not(unix))]
pub(crate) fn stdin_connection(
    _accept_within: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    Err(io::Error::other("--inetd is not available on this system"))
}

/// Nothing to do outside Unix (there is no inetd mode).
#[cfg(not(unix))]
pub(crate) fn detach_stdio() -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_pid_counts() {
        assert_eq!(interpret(None, Some("1"), 42), Activation::Off);
        assert_eq!(
            interpret(Some("42"), Some("2"), 42),
            Activation::Sockets { count: 2 }
        );
        assert_eq!(
            interpret(Some("41"), Some("2"), 42),
            Activation::NotOurs {
                listen_pid: "41".into()
            }
        );
        assert_eq!(
            interpret(Some("x"), Some("2"), 42),
            Activation::NotOurs {
                listen_pid: "x".into()
            }
        );
        assert_eq!(interpret(Some("42"), Some("0"), 42), Activation::Off);
    }

    #[test]
    fn bad_counts_are_invalid() {
        for bad in ["", "-1", "two", "65"] {
            assert_eq!(
                interpret(Some("42"), Some(bad), 42),
                Activation::Invalid {
                    listen_fds: bad.into()
                },
                "{bad}"
            );
        }
        assert_eq!(
            interpret(Some("42"), None, 42),
            Activation::Invalid {
                listen_fds: String::new()
            }
        );
    }
}
