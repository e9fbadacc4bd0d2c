//! One connection's life: read the request, send the policy, close cleanly — all under
//! one deadline. Outcomes are logged (debug) and counted here, never propagated.
//!
//! Two ways to run it: [`advance`] never waits for the client (Linux: what has not
//! arrived yet is waited for in the waiting room, not in a worker), and
//! [`serve_blocking`] waits with socket timeouts (other systems, inetd).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use log::debug;

use crate::request::{self, time_left, Matcher, Outcome};
use crate::stats::{Ending, Stats};

/// After the policy is sent, read and discard at most this much before closing...
pub const LINGER_MAX_BYTES: u32 = 16 * 1024;
/// ... and for at most this long (and never past the connection's deadline).
pub const LINGER_MAX_TIME: Duration = Duration::from_secs(1);

/// Counts the connections not yet closed, so shutdown can wait for them.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    /// Someone is in [`InFlight::wait_idle`]: only then does the last close notify (a
    /// notification costs a lock and a futex call, on every connection of an idle server).
    waiting: AtomicBool,
    lock: Mutex<()>,
    idle: Condvar,
}

impl InFlight {
    /// Registers one more open connection; it is counted until the guard drops.
    pub fn enter(self: &Arc<Self>) -> Live {
        self.count.fetch_add(1, Ordering::SeqCst);
        Live(Some(Arc::clone(self)))
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no connection is open, at most `limit`. Returns whether that happened.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        // Announced before the count is read: a close that brings it to zero after this
        // store sees the flag and notifies.
        self.waiting.store(true, Ordering::SeqCst);
        let mut guard = match self.lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        while self.count() > 0 {
            let Some(left) = time_left(end) else {
                return false;
            };
            guard = match self.idle.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

/// Guard of one open connection (see [`InFlight`]); `Live(None)` counts nothing.
#[derive(Debug)]
pub struct Live(Option<Arc<InFlight>>);

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            if f.count.fetch_sub(1, Ordering::SeqCst) == 1 && f.waiting.load(Ordering::SeqCst) {
                let _guard = f.lock.lock();
                f.idle.notify_all();
            }
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the rest of the request.
    Request,
    /// Policy sent and write side shut: discarding what the client still sends until it
    /// closes, so our close is not a reset. The deadline is then the end of lingering.
    Linger {
        /// Bytes discarded so far.
        bytes: u32,
    },
}

/// An accepted connection and its state.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// The client, for the logs.
    pub peer: SocketAddr,
    /// When we accepted it.
    pub accepted: Instant,
    /// When its time is up, whatever it is doing (lingering ends earlier: see [`reply`]).
    pub deadline: Instant,
    /// The request bytes seen so far.
    pub matcher: Matcher,
    /// Where it is.
    pub phase: Phase,
    _live: Live,
}

impl Conn {
    /// Wraps an accepted socket; `flight` (if any) counts it until it is dropped.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        timeout: Duration,
        flight: Option<&Arc<InFlight>>,
    ) -> Conn {
        let accepted = Instant::now();
        Conn {
            stream,
            peer,
            accepted,
            deadline: accepted + timeout,
            matcher: Matcher::new(),
            phase: Phase::Request,
            _live: flight.map_or(Live(None), InFlight::enter),
        }
    }
}

/// What [`advance`] and [`reply`] leave to the caller.
#[derive(Debug)]
pub enum Next {
    /// The connection is finished (and closed, once dropped).
    Done,
    /// It must wait for the client to send more: park it until it is readable.
    Wait(Conn),
}

/// Reads what has already arrived, without waiting, and feeds it to the matcher:
/// `None` while the request is still incomplete (nothing more has arrived), else the
/// decided outcome (`Request`, `Junk`, `Closed` or `Failed`). (Linux: `MSG_DONTWAIT`.)
#[cfg(target_os = "linux")]
pub fn read_now(conn: &mut Conn) -> Option<Outcome> {
    let mut buf = [0u8; request::READ_CHUNK];
    loop {
        let n = match crate::sys::recv_now(&conn.stream, &mut buf) {
            Ok(0) => {
                let received = conn.matcher.matched();
                return Some(Outcome::Closed { received });
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Outcome::Failed(e)),
        };
        log::trace!(
            "{} read {:?}",
            conn.peer,
            String::from_utf8_lossy(&buf[..n])
        );
        if let Some(outcome) = request::step(&mut conn.matcher, &buf[..n]) {
            return Some(outcome);
        }
    }
}

/// Runs a connection as far as it goes without waiting for the client: reads what has
/// arrived, answers a complete request, rejects junk. (Linux only.)
#[cfg(target_os = "linux")]
pub fn advance(mut conn: Conn, policy: &[u8], stats: &Stats) -> Next {
    match read_now(&mut conn) {
        Some(outcome) => decide(conn, outcome, policy, stats),
        None if time_left(conn.deadline).is_none() => {
            let received = conn.matcher.matched();
            finish(conn, Outcome::TimedOut { received }, stats)
        }
        None => Next::Wait(conn),
    }
}

/// Counts the time a fresh connection spent silent in the kernel against its deadline.
/// A connection that reached `accept()` without data although the listener defers
/// silent ones (`TCP_DEFER_ACCEPT`, for `deferral`) is one whose deferral ran out: it
/// has been silent that long already, so the whole connection's deadline still holds.
/// (Connections that come with data, or with a SYN cookie, are left alone.)
#[cfg(target_os = "linux")]
pub fn charge_deferral(mut conn: Conn, deferral: Duration, stats: &Stats) -> Next {
    if conn.phase != Phase::Request
        || conn.matcher.matched() > 0
        || !crate::sys::syn_ack_retransmitted(&conn.stream)
    {
        return Next::Wait(conn);
    }
    conn.deadline = conn.deadline.checked_sub(deferral).unwrap_or(conn.accepted);
    if time_left(conn.deadline).is_some() {
        return Next::Wait(conn);
    }
    stats.count(Ending::Empty);
    debug!(
        "{} empty: silent for {deferral:?} in the kernel's queue (TCP_DEFER_ACCEPT), timed out",
        conn.peer
    );
    Next::Done
}

/// Acts on a decided outcome: answers a request, or ends the connection.
pub fn decide(conn: Conn, outcome: Outcome, policy: &[u8], stats: &Stats) -> Next {
    match outcome {
        Outcome::Request { nul, extra } => reply(conn, nul, extra, policy, stats),
        other => finish(conn, other, stats),
    }
}

/// The whole connection with blocking reads bounded by the time left: for systems
/// without the waiting room, and for a single inherited connection (inetd).
pub fn serve_blocking(mut conn: Conn, policy: &[u8], stats: &Stats) {
    let deadline = conn.deadline;
    let outcome = request::continue_request(&mut &conn.stream, deadline, &mut conn.matcher);
    let next = match outcome {
        Outcome::Request { nul, extra } => reply(conn, nul, extra, policy, stats),
        other => finish(conn, other, stats),
    };
    if let Next::Wait(conn) = next {
        linger_blocking(conn);
    }
}

/// Sends the policy, then either closes (the client is done sending) or asks to
/// linger (bytes may still be in flight: a late NUL, junk after the request).
pub fn reply(mut conn: Conn, nul: bool, extra: bool, policy: &[u8], stats: &Stats) -> Next {
    if let Err(e) = send_policy(&conn.stream, policy, conn.deadline) {
        let elapsed = conn.accepted.elapsed();
        if request::is_timeout(&e) {
            Stats::bump(&stats.timed_out);
            debug!(
                "{} timed out sending the policy after {elapsed:?}",
                conn.peer
            );
        } else {
            Stats::bump(&stats.io_errors);
            debug!("{} io error sending the policy: {e}", conn.peer);
        }
        return Next::Done;
    }
    Stats::bump(&stats.served);
    debug!(
        "{} served {} bytes in {:?}",
        conn.peer,
        policy.len(),
        conn.accepted.elapsed()
    );
    if nul && !extra {
        // Nothing unread and nothing more coming: close() sends a plain FIN.
        return Next::Done;
    }
    let _ = conn.stream.shutdown(Shutdown::Write);
    conn.deadline = conn.deadline.min(Instant::now() + LINGER_MAX_TIME);
    conn.phase = Phase::Linger { bytes: 0 };
    Next::Wait(conn)
}

/// Writes the policy, on Linux without waiting for the client (the send buffer is grown
/// if the policy does not fit), else bounded by the deadline. The caller closes or shuts
/// down the write side right after (Linux: that sends the FIN with the policy).
fn send_policy(stream: &TcpStream, policy: &[u8], deadline: Instant) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    let mut sent = send_now(stream, policy)?;
    #[cfg(target_os = "linux")]
    if sent < policy.len() && crate::sys::grow_send_buffer(stream, policy.len() - sent).is_ok() {
        // The send buffer was smaller than the policy (tcp_wmem set below it): with room
        // made, the rest goes in without waiting for the client to read.
        sent += send_now(stream, &policy[sent..])?;
    }
    #[cfg(not(target_os = "linux"))]
    let sent = 0;
    if sent == policy.len() {
        return Ok(());
    }
    // Still no room (net.core.wmem_max below the policy size, or not Linux): finish
    // with a blocking write bounded by the time left.
    let left = time_left(deadline).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
    stream.set_write_timeout(Some(left))?;
    let mut s = stream;
    s.write_all(&policy[sent..])
}

/// [`crate::sys::send_before_fin`], with a full buffer counted as nothing sent.
#[cfg(target_os = "linux")]
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match crate::sys::send_before_fin(stream, bytes) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// Discards what a lingering client sends, without waiting. Returns true if it must go
/// on lingering (the client has not closed, the time and byte budgets are not spent).
#[cfg(target_os = "linux")]
pub fn linger_now(conn: &mut Conn) -> bool {
    let Phase::Linger { mut bytes } = conn.phase else {
        return false;
    };
    let until = conn.deadline;
    let mut buf = [0u8; 512];
    while bytes < LINGER_MAX_BYTES {
        match crate::sys::recv_now(&conn.stream, &mut buf) {
            Ok(0) => return false,
            Ok(n) => bytes = bytes.saturating_add(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.phase = Phase::Linger { bytes };
                return time_left(until).is_some();
            }
            Err(_) => return false,
        }
    }
    false
}

/// Discards what a lingering client sends until it closes, bounded in bytes and time.
pub fn linger_blocking(conn: Conn) {
    let Phase::Linger { mut bytes } = conn.phase else {
        return;
    };
    let until = conn.deadline;
    let mut buf = [0u8; 512];
    let mut s = &conn.stream;
    while bytes < LINGER_MAX_BYTES {
        let Some(left) = time_left(until) else { return };
        if s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => bytes = bytes.saturating_add(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Counts and logs a connection that ends without a policy, and closes it.
pub fn finish(conn: Conn, outcome: Outcome, stats: &Stats) -> Next {
    let peer = conn.peer;
    let elapsed = conn.accepted.elapsed();
    let ending = Ending::of(&outcome, conn.matcher.matched());
    if let Some(ending) = ending {
        stats.count(ending);
    }
    match outcome {
        Outcome::Request { .. } => {} // never passed here
        Outcome::Junk { at, byte } => {
            debug!(
                "{peer} rejected: byte 0x{byte:02x} at offset {at} is not <policy-file-request/>"
            );
        }
        Outcome::Closed { received: 0 } => {
            debug!("{peer} empty: closed after {elapsed:?} without sending a byte");
        }
        Outcome::Closed { received } => {
            debug!("{peer} rejected: closed after {received} of 22 request bytes");
        }
        Outcome::TimedOut { received: 0 } => {
            debug!("{peer} empty: timed out after {elapsed:?} without sending a byte");
        }
        Outcome::TimedOut { received } => {
            debug!("{peer} timed out after {elapsed:?} with {received} of 22 request bytes");
        }
        Outcome::Failed(e) if ending == Some(Ending::Empty) => {
            debug!("{peer} empty: {e} after {elapsed:?} without sending a byte");
        }
        Outcome::Failed(e) => {
            debug!("{peer} io error reading the request: {e}");
        }
    }
    Next::Done
}

/// Ends a connection the waiting room gives up on: its deadline passed, or room was
/// needed for others (`evicted`).
pub fn expire(conn: Conn, evicted: bool, stats: &Stats) {
    if let Phase::Request = conn.phase {
        let received = conn.matcher.matched();
        if evicted {
            stats.count(Ending::timed_out(received));
            debug!(
                "{} timed out early (evicted to make room) with {received} of 22 request bytes",
                conn.peer
            );
        } else {
            finish(conn, Outcome::TimedOut { received }, stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_idle_wakes_when_the_last_connection_closes() {
        let flight = Arc::new(InFlight::default());
        let (a, b) = (flight.enter(), flight.enter());
        assert_eq!(flight.count(), 2);
        let closer = std::thread::spawn(move || {
            // Give the waiter a chance to block first; correctness does not depend on it.
            std::thread::sleep(Duration::from_millis(20));
            drop(a);
            drop(b);
        });
        let start = Instant::now();
        assert!(flight.wait_idle(Duration::from_secs(10)));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "woken by the close, not the limit"
        );
        closer.join().unwrap();
        assert_eq!(flight.count(), 0);
    }

    #[test]
    fn wait_idle_gives_up_at_its_limit() {
        let flight = Arc::new(InFlight::default());
        let _open = flight.enter();
        assert!(!flight.wait_idle(Duration::from_millis(30)));
        assert_eq!(flight.count(), 1);
    }

    /// A client that reads nothing and advertises a tiny window, against a server socket
    /// whose send buffer (4.5 KiB, as on a host with tcp_wmem that low) is smaller than
    /// the largest policy: the reply must still be handed to the kernel at once, not wait
    /// for the client (a worker would be held until the deadline).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_policy_larger_than_the_send_buffer_is_sent_without_waiting_for_the_client() {
        use nix::sys::socket::{
            connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
        };
        use std::os::fd::AsRawFd;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // Inherited by the accepted socket; the kernel's minimum (4,608 bytes).
        setsockopt(&listener, sockopt::SndBuf, &1).unwrap();
        let addr = match listener.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let client = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        setsockopt(&client, sockopt::RcvBuf, &1).unwrap();
        connect(client.as_raw_fd(), &SockaddrIn::from(addr)).unwrap();
        let mut client = TcpStream::from(client);
        let (server, _) = listener.accept().unwrap();

        let policy = vec![b'x'; crate::policy::MAX_POLICY_BYTES];
        let sent = send_policy(
            &server,
            &policy,
            Instant::now() + Duration::from_millis(300),
        );
        assert!(sent.is_ok(), "had to wait for the client: {sent:?}");
        drop(server);

        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, policy, "the whole policy, then a clean close");
    }
}
