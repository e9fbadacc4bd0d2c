//! Fetching a policy the way a player does: connect, send the request, read until the
//! NUL or end of stream under one deadline, and classify what came back (refused,
//! timed out, reset, no NUL, bytes after the NUL, oversize). The checker's only I/O.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::describe_io;
use crate::request::{is_timeout, REQUEST};

/// Most bytes read from a reply: far above any sane policy, low enough that a server
/// streaming garbage cannot make the checker hoard memory.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// After the NUL, how long to keep reading to see whether more bytes follow it (within
/// the deadline). A well-behaved server closes right after the NUL, so this is only
/// spent on servers that keep the connection open.
pub(crate) const TRAILING_GRACE: Duration = Duration::from_millis(200);

/// Bytes asked of each read: Lightspark's receive buffer, so that [`Probe::reads`]
/// splits a reply where Lightspark would.
pub(crate) const REPLY_CHUNK: usize = 4096;

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The host name did not resolve (the resolver's words).
    Unresolved(String),
    /// The connection was refused.
    Refused,
    /// No connection within the deadline.
    ConnectTimeout,
    /// Connecting failed otherwise (unreachable network...).
    ConnectFailed(String),
    /// A NUL arrived; `trailing` bytes followed it.
    Nul {
        /// Bytes received after the first NUL.
        trailing: usize,
    },
    /// The server closed the connection without sending a NUL.
    Eof,
    /// The deadline passed before the NUL or end of stream.
    Timeout,
    /// The connection was reset before the NUL.
    Reset,
    /// More than [`MAX_REPLY_BYTES`] arrived without a NUL.
    Oversize,
    /// Another error while sending or reading.
    Failed(String),
}

/// Everything a probe learnt.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// `host:port` as asked (IPv6 literals in brackets).
    pub target: String,
    /// The address actually connected to, if any.
    pub peer: Option<SocketAddr>,
    /// From the start of the connection attempt to the NUL, or to the end of the probe.
    pub elapsed: Duration,
    /// The bytes received (at most [`MAX_REPLY_BYTES`] + 1).
    pub received: Vec<u8>,
    /// The size of each read that filled `received`, in order: reads of at most
    /// [`REPLY_CHUNK`] bytes, as Lightspark makes them (it keeps only the first short one).
    pub reads: Vec<usize>,
    /// How it ended.
    pub end: End,
    /// The timeout the probe ran under.
    pub timeout: Duration,
}

impl Probe {
    /// The policy document: the bytes before the first NUL, or everything when the
    /// server closed without one. `None` when the reply is unusable (nothing arrived,
    /// timeout, reset or oversize before a NUL).
    pub(crate) fn document(&self) -> Option<&[u8]> {
        match self.end {
            End::Nul { .. } => {
                let nul = self.received.iter().position(|&b| b == 0)?;
                Some(&self.received[..nul])
            }
            End::Eof if !self.received.is_empty() => Some(&self.received),
            _ => None,
        }
    }

    /// Why no document could be had, in words naming `host:port`; `None` when there is
    /// one.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.document().is_some() {
            return None;
        }
        let t = &self.target;
        let n = self.received.len();
        let secs = fmt_secs(self.timeout);
        Some(match &self.end {
            End::Unresolved(why) => format!("cannot resolve {t}: {why}"),
            End::Refused => format!("connection refused by {t}"),
            End::ConnectTimeout => format!("no connection to {t} within {secs}s"),
            End::ConnectFailed(why) => format!("cannot connect to {t}: {why}"),
            End::Timeout if n == 0 => format!("no reply from {t} within {secs}s"),
            End::Timeout => format!("reply from {t} incomplete after {secs}s ({n} bytes, no NUL)"),
            End::Reset if n == 0 => format!("connection reset by {t} without a reply"),
            End::Reset => format!("connection reset by {t} after {n} bytes, before the NUL"),
            End::Eof => format!("{t} closed the connection without a reply"),
            End::Oversize => {
                format!("reply from {t} exceeds {MAX_REPLY_BYTES} bytes without a NUL")
            }
            End::Failed(why) => format!("cannot talk to {t}: {why}"),
            End::Nul { .. } => format!("reply from {t} has no usable document"),
        })
    }
}

/// Seconds with the fraction only when there is one: `3`, `0.5`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failure() {
            Some(why) => f.write_str(&why),
            None => write!(
                f,
                "{} bytes from {} in {:.6}s",
                self.received.len(),
                self.target,
                self.elapsed.as_secs_f64()
            ),
        }
    }
}

/// `host:port`, with brackets around IPv6 literals.
pub(crate) fn target_name(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves `host` (a name, an IPv4 address, or an IPv6 address with or without
/// brackets) to the addresses to try.
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match (bare, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err("no addresses".to_string())
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(describe_io(&e)),
    }
}

/// The connection is gone: reset, aborted, or (writing the request) a broken pipe.
fn reset_aborted_or_broken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Asks `host:port` for its policy, the whole exchange bounded by `timeout`.
///
/// Never fails: every outcome, resolution and connection errors included, is
/// described by the returned [`Probe`].
pub(crate) fn probe(host: &str, port: u16, timeout: Duration) -> Probe {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut probe = Probe {
        target: target_name(host, port),
        peer: None,
        elapsed: Duration::ZERO,
        received: Vec::new(),
        reads: Vec::new(),
        end: End::Timeout,
        timeout,
    };
    let addrs = match resolve(host, port) {
        Ok(addrs) => addrs,
        Err(why) => {
            probe.end = End::Unresolved(why);
            probe.elapsed = start.elapsed();
            return probe;
        }
    };
    let started = Instant::now();
    let mut stream = None;
    let mut end = End::ConnectTimeout;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            end = End::ConnectTimeout;
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                probe.peer = Some(addr);
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => end = End::Refused,
            Err(e) if is_timeout(&e) => end = End::ConnectTimeout,
            Err(e) => end = End::ConnectFailed(describe_io(&e)),
        }
    }
    let (end, nul_at) = match stream {
        Some(mut s) => exchange(&mut s, deadline, &mut probe.received, &mut probe.reads),
        None => (end, None),
    };
    probe.end = end;
    // The reply time runs to the NUL, not through the wait for trailing bytes.
    probe.elapsed = nul_at.unwrap_or_else(Instant::now).duration_since(started);
    probe
}

/// Reads on `stream` until `deadline`, appending at most [`MAX_REPLY_BYTES`] + 1 bytes.
fn read_some(
    stream: &mut TcpStream,
    deadline: Instant,
    buf: &mut Vec<u8>,
    reads: &mut Vec<usize>,
) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left))?;
    let room = (MAX_REPLY_BYTES + 1)
        .saturating_sub(buf.len())
        .min(REPLY_CHUNK);
    let mut chunk = [0u8; REPLY_CHUNK];
    loop {
        match stream.read(&mut chunk[..room]) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if n > 0 {
                    reads.push(n);
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends the request and reads the reply; returns how it ended and when the NUL came.
fn exchange(
    stream: &mut TcpStream,
    deadline: Instant,
    buf: &mut Vec<u8>,
    reads: &mut Vec<usize>,
) -> (End, Option<Instant>) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return (End::Timeout, None);
    }
    let sent = stream
        .set_write_timeout(Some(left))
        .and_then(|()| stream.write_all(REQUEST));
    match sent {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => return (End::Timeout, None),
        Err(e) if reset_aborted_or_broken(&e) => return (End::Reset, None),
        Err(e) => {
            return (
                End::Failed(format!("sending the request: {}", describe_io(&e))),
                None,
            )
        }
    }
    loop {
        if buf.contains(&0) {
            let nul_at = Instant::now();
            return (trailing(stream, deadline, buf, reads), Some(nul_at));
        }
        if buf.len() > MAX_REPLY_BYTES {
            return (End::Oversize, None);
        }
        match read_some(stream, deadline, buf, reads) {
            Ok(0) => return (End::Eof, None),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return (End::Timeout, None),
            Err(e) if reset_aborted_or_broken(&e) => return (End::Reset, None),
            Err(e) => return (End::Failed(describe_io(&e)), None),
        }
    }
}

/// After the NUL: reads briefly to count any bytes that follow it.
fn trailing(
    stream: &mut TcpStream,
    deadline: Instant,
    buf: &mut Vec<u8>,
    reads: &mut Vec<usize>,
) -> End {
    let grace = deadline.min(Instant::now() + TRAILING_GRACE);
    while buf.len() <= MAX_REPLY_BYTES {
        match read_some(stream, grace, buf, reads) {
            Ok(n) if n > 0 => continue,
            // End of stream, silence, or a reset once the policy is in: all the same here.
            _ => break,
        }
    }
    let nul = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    End::Nul {
        trailing: buf.len().saturating_sub(nul + 1),
    }
}
