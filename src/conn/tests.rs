//! A worker's whole connection on real loopback sockets, without the readiness gate
//! (what non-Linux systems and `--inetd` run): the worker waits for the client itself,
//! bounded by the deadline.

use super::*;
use std::io::Write;
use std::net::TcpListener;
use std::thread;

const POLICY: &[u8] = b"<cross-domain-policy/>\0";
/// Every client read is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// Serves one connection accepted on a fresh listener with `timeout`, in a thread,
/// while `client` runs against it; returns the counters and what the client returned.
fn serve_one<T: Send + 'static>(
    timeout: Duration,
    client: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (crate::stats::Snapshot, T) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        client(s)
    });
    let (stream, peer) = listener.accept().unwrap();
    let stats = Stats::default();
    serve(Conn::new(stream, peer, timeout), POLICY, &stats);
    (stats.snapshot(), client.join().unwrap())
}

fn read_all(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    s.read_to_end(&mut got).map(|_| got)
}

#[test]
fn a_request_in_pieces_is_answered_and_closed_with_a_fin() {
    let (stats, got) = serve_one(LIMIT, |mut s| {
        s.write_all(b"<policy-").unwrap();
        thread::sleep(Duration::from_millis(50)); // pacing only: two reads
        s.write_all(b"file-request/>\0").unwrap();
        read_all(&mut s)
    });
    assert_eq!(got.unwrap(), POLICY);
    assert_eq!(stats.served, 1);
}

#[test]
fn a_request_without_its_nul_is_answered_then_the_late_nul_is_read() {
    let (stats, got) = serve_one(LIMIT, |mut s| {
        s.write_all(b"<policy-file-request/>").unwrap();
        let mut reply = vec![0u8; POLICY.len()];
        s.read_exact(&mut reply).unwrap();
        // The NUL arrives after the reply: the worker lingers for it, so its close is
        // a FIN, not a reset.
        s.write_all(b"\0").unwrap();
        (reply, read_all(&mut s))
    });
    assert_eq!(got.0, POLICY);
    assert_eq!(got.1.unwrap(), b"", "EOF after the policy, not a reset");
    assert_eq!(stats.served, 1);
}

#[test]
fn a_silent_client_is_closed_at_its_deadline_and_counted_empty() {
    let start = Instant::now();
    let (stats, got) = serve_one(Duration::from_millis(300), |mut s| read_all(&mut s));
    assert_eq!(got.unwrap(), b"");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!((stats.empty, stats.timed_out), (1, 0));
}

#[test]
fn part_of_the_request_then_silence_is_a_timeout() {
    let (stats, _) = serve_one(Duration::from_millis(300), |mut s| {
        s.write_all(b"<policy").unwrap();
        let _ = read_all(&mut s);
    });
    assert_eq!((stats.timed_out, stats.served), (1, 0));
}

#[test]
fn junk_is_rejected_at_its_first_wrong_byte() {
    let (stats, got) = serve_one(LIMIT, |mut s| {
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        read_all(&mut s).unwrap_or_default()
    });
    assert!(got.is_empty(), "no policy for junk");
    assert_eq!(stats.rejected, 1);
}
