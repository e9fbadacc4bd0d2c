//! Fake policy servers on 127.0.0.1:0, each running one known behaviour (a good
//! policy, a reply without its NUL, a reset, silence...) on every connection, so that
//! the clients under test (the checker, the load client) are judged against a server
//! whose behaviour is certain. Every wait has a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest a fake server runs, and waits for a client's bytes.
pub const FAKE_DEADLINE: Duration = Duration::from_secs(20);

/// A running fake server; it stops accepting when dropped (or after
/// [`FAKE_DEADLINE`]).
pub struct Fake {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Listens on 127.0.0.1:0 and runs `behaviour` on every connection, one at a time,
/// with read and write timeouts of [`FAKE_DEADLINE`].
pub fn serve<F>(behaviour: F) -> Fake
where
    F: Fn(TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    // Non-blocking, so that the loop sees the stop flag and its deadline.
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
    thread::spawn(move || {
        let deadline = Instant::now() + FAKE_DEADLINE;
        while !stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1)); // polling interval
                    continue;
                }
                Err(_) => continue,
            };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(FAKE_DEADLINE));
            let _ = stream.set_write_timeout(Some(FAKE_DEADLINE));
            behaviour(stream);
        }
    });
    Fake {
        port,
        accepted,
        stop,
    }
}

/// Reads the 23-byte request (or until EOF or the deadline).
pub fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + FAKE_DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 23 && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// A server that reads the request, then sends `reply` in one write and closes.
pub fn replying(reply: Vec<u8>) -> Fake {
    serve(move |mut s| {
        read_request(&mut s);
        let _ = s.write_all(&reply);
    })
}

/// A server that waits for the request without reading it, sends `reply` and closes
/// with the request unread, which makes the kernel send a reset after the reply (as
/// nginx's `return` does).
pub fn replying_then_reset(reply: Vec<u8>) -> Fake {
    serve(move |mut s| {
        let _ = s.peek(&mut [0u8; 1]);
        let _ = s.write_all(&reply);
    })
}

/// A server that serves `policy` followed by one NUL.
pub fn policy_server(policy: &str) -> Fake {
    let mut bytes = policy.as_bytes().to_vec();
    bytes.push(0);
    replying(bytes)
}
