//! One connection's life, top to bottom, as one pool worker runs it: from its first
//! byte to its close, under one deadline for the whole connection. The worker sets the
//! socket's read timeout to the time left before each read, matches the request, sends
//! the cached policy bytes (the write timeout set to the time left before each partial
//! send, so the deadline bounds the reply too), closes cleanly, and counts the outcome.
//! The same code on every system and in inetd mode. One tuning beyond the card, kept because alone it saves 18 % server CPU per connection
//! (docs/performance.md): on Linux the policy leaves with the FIN (`MSG_MORE`).

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use log::debug;

use crate::request::{self, time_left, Outcome, TimedRead, REQUEST_TEXT};
use crate::stats::{Ending, Stats};
use crate::sys;

/// After the policy is sent, read and discard at most this much before closing...
pub(crate) const LINGER_MAX_BYTES: usize = 16 * 1024;
/// ... and for at most this long (and never past the connection's deadline).
pub(crate) const LINGER_MAX_TIME: Duration = Duration::from_secs(1);

/// An accepted connection on its way to a worker.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The socket; dropping it closes the connection.
    pub(crate) stream: TcpStream,
    /// The client, for the logs.
    pub(crate) peer: SocketAddr,
    /// When it was accepted.
    pub(crate) accepted: Instant,
    /// When its time is up, whatever it is doing.
    pub(crate) deadline: Instant,
}

impl Conn {
    /// A connection accepted now, with `timeout` for its whole life.
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, timeout: Duration) -> Conn {
        let accepted = Instant::now();
        Conn {
            stream,
            peer,
            accepted,
            deadline: accepted + timeout,
        }
    }
}

/// The whole life of one connection: read the request, send `policy`, close.
pub(crate) fn serve(conn: Conn, policy: &[u8], stats: &Stats) {
    let outcome = request::read_request(&mut Socket(&conn.stream), conn.deadline);
    let Outcome::Request { nul, extra } = outcome else {
        count(&conn, outcome, stats);
        return; // dropping the stream closes it
    };
    if let Err(e) = send(&conn.stream, policy, conn.deadline) {
        if request::is_timeout(&e) {
            stats.count(Ending::TimedOut);
            debug!("{} timed out sending the policy", conn.peer);
        } else {
            stats.count(Ending::IoError);
            debug!("{} io error sending the policy: {e}", conn.peer);
        }
        return;
    }
    stats.count(Ending::Served);
    debug!(
        "{} served {} bytes in {:?}",
        conn.peer,
        policy.len(),
        conn.accepted.elapsed()
    );
    if !nul || extra {
        // The NUL may still be on its way, or junk followed the request: closing with
        // bytes unread would send a reset that can destroy the reply in flight.
        linger(&conn);
    }
}

/// The socket as the request matcher reads it: each read is bounded by the time left.
struct Socket<'a>(&'a TcpStream);

impl Read for Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0;
        s.read(buf)
    }
}

impl TimedRead for Socket<'_> {
    fn set_read_limit(&mut self, limit: Duration) -> io::Result<()> {
        self.0.set_read_timeout(Some(limit))
    }
}

/// Writes the policy before the deadline: a client may take the bytes a few at a time,
/// and each partial send gets only the time left, so the deadline bounds the whole
/// reply, not each piece. The caller closes or shuts down the write side right after
/// (on Linux the policy leaves with the FIN).
///
/// # Errors
///
/// What the OS says; `TimedOut` (or `WouldBlock`, the kernel's word for a send that
/// timed out) once the deadline passed.
fn send(stream: &TcpStream, policy: &[u8], deadline: Instant) -> io::Result<()> {
    let mut sent = 0;
    while sent < policy.len() {
        let left = time_left(deadline).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
        stream.set_write_timeout(Some(left))?;
        match sys::send_part(stream, &policy[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Shuts the write side (our FIN follows the policy), then discards what the client
/// still sends until it closes, bounded in bytes and time.
fn linger(conn: &Conn) {
    let _ = conn.stream.shutdown(Shutdown::Write);
    let until = conn.deadline.min(Instant::now() + LINGER_MAX_TIME);
    let mut buf = [0u8; 512];
    let mut s = &conn.stream;
    let mut bytes = 0;
    while bytes < LINGER_MAX_BYTES {
        let Some(left) = time_left(until) else { return };
        if s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => bytes += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Counts and logs a connection that ends without a policy.
fn count(conn: &Conn, outcome: Outcome, stats: &Stats) {
    let Some(ending) = Ending::of(&outcome) else {
        return; // a request: answered and counted by the caller
    };
    stats.count(ending);
    let peer = conn.peer;
    let elapsed = conn.accepted.elapsed();
    let want = REQUEST_TEXT.len();
    match outcome {
        Outcome::Request { .. } => {}
        Outcome::Junk { at, byte } => debug!(
            "{peer} rejected: byte 0x{byte:02x} at offset {at} is not <policy-file-request/>"
        ),
        Outcome::Closed { received: 0 } => debug!("{peer} empty: closed without sending a byte"),
        Outcome::Closed { received } => {
            debug!("{peer} rejected: closed after {received} of {want} request bytes");
        }
        Outcome::TimedOut { received: 0 } => {
            debug!("{peer} empty: sent nothing in {elapsed:?}");
        }
        Outcome::TimedOut { received } => {
            debug!("{peer} timed out after {elapsed:?} with {received} of {want} request bytes");
        }
        Outcome::Failed { error, received } => {
            debug!(
                "{peer} {}: io error after {received} request bytes: {error}",
                ending.name()
            );
        }
    }
}

/// Ends a connection that never reached a worker (Linux readiness gate): its deadline
/// passed with `received` request bytes, or it was closed early to make room
/// (`evicted`).
#[cfg(target_os = "linux")]
pub(crate) fn expire(conn: Conn, received: usize, evicted: bool, stats: &Stats) {
    if evicted {
        stats.count(Ending::timed_out(received));
        debug!(
            "{} closed early (evicted to make room) with {received} request bytes",
            conn.peer
        );
    } else {
        count(&conn, Outcome::TimedOut { received }, stats);
    }
}

#[cfg(test)]
mod tests;
