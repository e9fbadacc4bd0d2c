//! The socket and process details the load client needs beyond std: a connect from a
//! chosen source address with a deadline (Linux, through nix's safe wrappers), the
//! open-files limit, and our own CPU time. Other systems get std fallbacks.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The source address for transaction `n`: 127.0.0.2.. spread over `src_ips`
/// addresses when the target is on 127/8, so that the 4-tuples of back-to-back
/// connections differ and the server's TIME_WAIT entries (it closes first) do not
/// collide with new connections. `None` lets the kernel choose.
pub fn source_for(target: &SocketAddr, src_ips: u8, n: u64) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.octets()[0] == 127 && src_ips > 0 => {
            // n % src_ips < 250, so the last octet stays within 2..=251.
            let last = 2 + (n % u64::from(src_ips)) as u8;
            Some(Ipv4Addr::new(127, 0, 0, last).into())
        }
        _ => None,
    }
}

/// Connects to `dst` from `src` (any port) within `timeout`.
///
/// The socket is bound before connecting with `IP_BIND_ADDRESS_NO_PORT`, so binding
/// an address does not reserve a port per socket; SO_SNDTIMEO bounds the blocking
/// `connect()` (Linux reports its expiry as `EINPROGRESS`: see [`is_connect_timeout`]).
///
/// # Errors
///
/// What the OS says.
#[cfg(target_os = "linux")]
pub fn connect(dst: SocketAddr, src: Option<IpAddr>, timeout: Duration) -> io::Result<TcpStream> {
    use nix::sys::socket::{
        self as s, sockopt, AddressFamily, SockFlag, SockProtocol, SockType, SockaddrStorage,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::os::fd::AsRawFd;

    let family = match dst {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = s::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Tcp,
    )?;
    if let Some(ip) = src {
        // Best effort: without it, bind() picks the port at once (fewer 4-tuples).
        let _ = s::setsockopt(&fd, sockopt::IpBindAddressNoPort, &true);
        s::bind(
            fd.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(ip, 0)),
        )?;
    }
    let micros = i64::try_from(timeout.as_micros())
        .unwrap_or(i64::MAX)
        .max(1000);
    s::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::microseconds(micros))?;
    s::connect(fd.as_raw_fd(), &SockaddrStorage::from(dst))?;
    Ok(TcpStream::from(fd))
}

/// Connects to `dst` within `timeout`; the source address is left to the system.
///
/// # Errors
///
/// What the OS says.
#[cfg(not(target_os = "linux"))]
pub fn connect(dst: SocketAddr, _src: Option<IpAddr>, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&dst, timeout)
}

/// True when a failed connect means "no answer within the deadline".
pub fn is_connect_timeout(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::libc;
        if matches!(
            e.raw_os_error(),
            Some(libc::EINPROGRESS | libc::EAGAIN | libc::ETIMEDOUT)
        ) {
            return true;
        }
    }
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// True when the OS ran out of descriptors (EMFILE, ENFILE).
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::libc;
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// True when no local address or port was free for a connect.
pub fn is_addr_not_available(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
}

/// Raises the soft open-files limit to the hard limit; returns the soft limit in
/// force afterwards, or `None` where there is no such limit.
#[cfg(unix)]
pub fn raise_nofile() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let now = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    // `rlim_t` is u64 on Linux and macOS, i64 on FreeBSD (never negative).
    #[allow(clippy::useless_conversion)]
    u64::try_from(now).ok()
}

/// No open-files limit to raise on this system.
#[cfg(not(unix))]
pub fn raise_nofile() -> Option<u64> {
    None
}

/// User + system CPU time used by this process so far (zero where unknown).
#[cfg(unix)]
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let us = u.user_time().num_microseconds() + u.system_time().num_microseconds();
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        }
        Err(_) => Duration::ZERO,
    }
}

/// CPU time is not measured on this system.
#[cfg(not(unix))]
pub fn cpu_time() -> Duration {
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_only() {
        let lo: SocketAddr = "127.0.0.1:843".parse().expect("literal");
        let far: SocketAddr = "192.0.2.1:843".parse().expect("literal");
        let v6: SocketAddr = "[::1]:843".parse().expect("literal");
        assert_eq!(source_for(&lo, 8, 0), Some([127, 0, 0, 2].into()));
        assert_eq!(source_for(&lo, 8, 9), Some([127, 0, 0, 3].into()));
        assert_eq!(source_for(&lo, 250, 249), Some([127, 0, 0, 251].into()));
        assert_eq!(source_for(&lo, 0, 5), None);
        assert_eq!(source_for(&far, 8, 1), None);
        assert_eq!(source_for(&v6, 8, 1), None);
    }
}
