//! One client transaction and its verdict: connect, send the request (whole or in two
//! writes, or junk), read until the server closes, close. Failures are sorted into [`Failure`] kinds; a good
//! reply followed by a TCP reset is a success that [`Done::reset`] flags.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::net;
use flashpolicyd::request::REQUEST;

/// Every policy contains this; a reply without it is a bad reply.
pub const MARKER: &[u8] = b"cross-domain-policy";
/// A reply larger than this is an error (and bounds the read loop).
pub const MAX_REPLY: usize = 64 * 1024;
/// A split request is sent as its first `SPLIT_AT` bytes, then the rest (with the NUL)...
pub const SPLIT_AT: usize = 11;
/// ... this long after: long enough that the server has read the first part and has
/// to wait for the second.
pub const SPLIT_PAUSE: Duration = Duration::from_millis(2);

/// What junk clients send, in turn: an HTTP request (a browser or scanner on port
/// 843), a request cut short followed by EOF, and the start of a TLS ClientHello.
/// The `bool` says whether the client half-closes after sending.
pub const JUNK: [(&[u8], bool); 3] = [
    (b"GET / HTTP/1.0\r\n\r\n", false),
    (b"<policy-file-request/", true),
    (
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\x04\x05\x06\x07",
        false,
    ),
];

/// Why a transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connect: ECONNREFUSED (nothing listening, or a full queue with syncookies off).
    ConnRefused,
    /// Connect: no answer before the deadline (SYNs dropped on a full accept queue).
    ConnTimeout,
    /// Connect: reset during the handshake.
    ConnReset,
    /// Connect: no free local port or address.
    ConnAddrNotAvail,
    /// Out of descriptors on the client side (EMFILE, ENFILE).
    FdLimit,
    /// Connect: anything else.
    ConnOther,
    /// The request could not be written, and no reply came.
    Write,
    /// The reply did not end (EOF) before the deadline.
    ReadTimeout,
    /// Reset before a complete reply.
    ReadReset,
    /// Any other read error.
    ReadOther,
    /// The server closed without sending anything.
    EmptyReply,
    /// The server sent something that is not a policy.
    BadReply,
    /// A policy that does not end in a NUL byte.
    NoNul,
    /// A reply over [`MAX_REPLY`] bytes.
    TooBig,
    /// The server sent a policy in answer to junk.
    AnsweredJunk,
}

impl Failure {
    /// Every kind, in report order; `ALL[f.index()] == f`.
    pub const ALL: [Failure; 15] = [
        Failure::ConnRefused,
        Failure::ConnTimeout,
        Failure::ConnReset,
        Failure::ConnAddrNotAvail,
        Failure::FdLimit,
        Failure::ConnOther,
        Failure::Write,
        Failure::ReadTimeout,
        Failure::ReadReset,
        Failure::ReadOther,
        Failure::EmptyReply,
        Failure::BadReply,
        Failure::NoNul,
        Failure::TooBig,
        Failure::AnsweredJunk,
    ];

    /// The name used in reports (`err_<name>=` in the `RESULT` line).
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::ConnRefused => "conn_refused",
            Failure::ConnTimeout => "conn_timeout",
            Failure::ConnReset => "conn_reset",
            Failure::ConnAddrNotAvail => "conn_addrnotavail",
            Failure::FdLimit => "fd_limit",
            Failure::ConnOther => "conn_other",
            Failure::Write => "write",
            Failure::ReadTimeout => "read_timeout",
            Failure::ReadReset => "read_reset",
            Failure::ReadOther => "read_other",
            Failure::EmptyReply => "empty_reply",
            Failure::BadReply => "bad_reply",
            Failure::NoNul => "no_nul",
            Failure::TooBig => "too_big",
            Failure::AnsweredJunk => "answered_junk",
        }
    }

    /// Position in [`Failure::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Sorts a failed connect.
pub fn classify_connect(e: &std::io::Error) -> Failure {
    if net::is_connect_timeout(e) {
        Failure::ConnTimeout
    } else if net::is_fd_exhaustion(e) {
        Failure::FdLimit
    } else if net::is_addr_not_available(e) {
        Failure::ConnAddrNotAvail
    } else {
        match e.kind() {
            ErrorKind::ConnectionRefused => Failure::ConnRefused,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Failure::ConnReset,
            _ => Failure::ConnOther,
        }
    }
}

/// What a transaction sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The 23-byte request.
    Good,
    /// The 23-byte request in two writes, [`SPLIT_PAUSE`] apart.
    Split,
    /// Entry `n % 3` of [`JUNK`].
    Junk(u64),
}

impl Kind {
    /// Whether it sends the policy request (whole or split), not junk.
    pub fn is_request(self) -> bool {
        !matches!(self, Kind::Junk(_))
    }
}

/// A transaction that went as it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The server's close was a reset (after a complete policy, or after junk)
    /// rather than a FIN. On a real network a reset can destroy a reply in flight.
    pub reset: bool,
}

/// Runs one transaction against `target` from `src`, all of it within `timeout`.
///
/// # Errors
///
/// The [`Failure`] kind. A good transaction gets a reply that contains [`MARKER`]
/// and ends in a NUL; a junk one gets a close with no policy.
pub fn transact(
    target: SocketAddr,
    src: Option<IpAddr>,
    kind: Kind,
    timeout: Duration,
) -> Result<Done, Failure> {
    let deadline = Instant::now() + timeout;
    let mut s = net::connect(target, src, timeout).map_err(|e| classify_connect(&e))?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::ReadTimeout);
    }
    // On Linux the connect timeout (SO_SNDTIMEO) still bounds the write.
    #[cfg(not(target_os = "linux"))]
    let _ = s.set_write_timeout(Some(left));
    // One read timeout for the whole reply (a syscall per read would cost the client
    // more than it measures); the deadline is checked after every read.
    let _ = s.set_read_timeout(Some(left));
    let (payload, half_close) = match kind {
        Kind::Good | Kind::Split => (&REQUEST[..], false),
        Kind::Junk(n) => JUNK[(n % JUNK.len() as u64) as usize],
    };
    // Some servers answer on connect and close without reading: a failed write is
    // only an error if no policy comes back either.
    let write_failed = if kind == Kind::Split {
        let (first, rest) = payload.split_at(SPLIT_AT);
        s.write_all(first).is_err() || {
            std::thread::sleep(SPLIT_PAUSE);
            s.write_all(rest).is_err()
        }
    } else {
        s.write_all(payload).is_err()
    };
    if half_close && !write_failed {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut reply = Vec::with_capacity(256);
    let mut buf = [0u8; 2048];
    let mut reset = false;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.len() > MAX_REPLY {
                    return Err(Failure::TooBig);
                }
                if Instant::now() >= deadline {
                    return Err(Failure::ReadTimeout);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::ReadTimeout)
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                reset = true;
                break;
            }
            Err(_) => return Err(Failure::ReadOther),
        }
    }
    let policy = contains(&reply, MARKER);
    if !kind.is_request() {
        return if policy {
            Err(Failure::AnsweredJunk)
        } else {
            Ok(Done { reset })
        };
    }
    if !policy {
        return Err(if write_failed {
            Failure::Write
        } else if reset {
            Failure::ReadReset
        } else if reply.is_empty() {
            Failure::EmptyReply
        } else {
            Failure::BadReply
        });
    }
    if reply.last() != Some(&0) {
        return Err(Failure::NoNul);
    }
    Ok(Done {
        reset: reset || write_failed,
    })
}

/// True if `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_are_unique_and_indexed() {
        for (i, f) in Failure::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
        let mut names: Vec<_> = Failure::ALL.iter().map(|f| f.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Failure::ALL.len());
    }

    #[test]
    fn junk_is_never_the_request() {
        for (bytes, _) in JUNK {
            assert!(!contains(bytes, &REQUEST[..22]));
        }
        assert!(contains(b"<cross-domain-policy/>", MARKER));
        assert!(!contains(b"", MARKER));
    }
}
