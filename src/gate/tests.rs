//! The gate on real loopback sockets: what it holds, what it hands on, what it closes.

use super::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::Receiver;

/// Every wait for the gate thread is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

struct Fixture {
    listener: TcpListener,
    gate: Arc<Gate>,
    thread: Option<JoinHandle<()>>,
    ready: Receiver<Conn>,
    stats: Arc<Stats>,
}

fn fixture(capacity: usize) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stats = Arc::new(Stats::default());
    let (tx, ready) = mpsc::channel();
    let (gate, thread) = Gate::start(capacity, Arc::clone(&stats), move |c| {
        let _ = tx.send(c);
    })
    .unwrap();
    Fixture {
        listener,
        gate,
        thread: Some(thread),
        ready,
        stats,
    }
}

impl Fixture {
    /// A client that has sent `first`, and the gate's answer for its connection.
    fn client(&self, first: &[u8], timeout: Duration) -> (TcpStream, Option<Conn>) {
        let mut client = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        client.write_all(first).unwrap();
        let (stream, peer) = self.listener.accept().unwrap();
        // What was sent is queued before the gate looks (loopback, bounded wait).
        let end = Instant::now() + LIMIT;
        let mut buf = [0u8; 64];
        while stream.peek(&mut buf).unwrap() < first.len() && Instant::now() < end {}
        (client, self.gate.admit(Conn::new(stream, peer, timeout)))
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Fixture) -> bool) {
        let end = Instant::now() + LIMIT;
        while !done(self) {
            assert!(Instant::now() < end, "{what}: not within {LIMIT:?}");
            thread::sleep(Duration::from_millis(5)); // polling, bounded by `end`
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.gate.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether the server closed (EOF, or a reset for the bytes it never read) within LIMIT.
fn eof(client: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match client.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn a_complete_request_junk_and_a_hang_up_go_straight_to_a_worker() {
    let f = fixture(8);
    let long = Duration::from_secs(60);
    assert!(f.client(b"<policy-file-request/>\0", long).1.is_some());
    assert!(f.client(b"<policy-file-request/>", long).1.is_some());
    assert!(f.client(b"GET / HTTP/1.0\r\n", long).1.is_some());
    assert!(f.client(b"<policy-X", long).1.is_some());
}

#[test]
fn a_partial_request_is_held_until_the_rest_arrives_and_nothing_is_consumed() {
    let f = fixture(8);
    let (mut client, conn) = f.client(b"<policy-", Duration::from_secs(60));
    assert!(conn.is_none(), "a partial request went to a worker");
    client.write_all(b"file-request/>\0").unwrap();
    let conn = f
        .ready
        .recv_timeout(LIMIT)
        .expect("handed on once complete");
    let mut got = [0u8; 23];
    (&conn.stream).read_exact(&mut got).unwrap();
    assert_eq!(
        &got, b"<policy-file-request/>\0",
        "the worker reads every byte"
    );
}

#[test]
fn a_hang_up_after_a_partial_request_is_handed_on() {
    let f = fixture(8);
    let (client, conn) = f.client(b"<policy-file", Duration::from_secs(60));
    assert!(conn.is_none());
    client.shutdown(Shutdown::Write).unwrap();
    f.ready
        .recv_timeout(LIMIT)
        .expect("handed on at the hang-up");
}

#[test]
fn a_held_connection_is_closed_and_counted_at_its_deadline() {
    let f = fixture(8);
    let (mut client, conn) = f.client(b"<pol", Duration::from_millis(200));
    assert!(conn.is_none());
    assert!(eof(&mut client), "closed by the gate");
    f.wait_for("counted", |f| f.stats.snapshot().timed_out == 1);
    assert!(
        f.ready.try_recv().is_err(),
        "an expired connection reached a worker"
    );
}

#[test]
fn a_full_gate_closes_its_oldest_connection() {
    let f = fixture(1);
    let long = Duration::from_secs(60);
    let (mut first, held) = f.client(b"<pol", long);
    assert!(held.is_none());
    let (_second, held) = f.client(b"<pol", long);
    assert!(held.is_none());
    assert!(eof(&mut first), "the oldest was closed to make room");
    f.wait_for("counted", |f| f.stats.snapshot().timed_out == 1);
}

#[test]
fn eviction_on_request_closes_the_oldest() {
    let f = fixture(8);
    let long = Duration::from_secs(60);
    let (mut first, _) = f.client(b"<pol", long);
    let (_second, _) = f.client(b"<poli", long);
    f.gate.evict(1);
    assert!(eof(&mut first));
    f.wait_for("counted", |f| f.stats.snapshot().timed_out == 1);
}
