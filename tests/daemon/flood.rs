//! Starvation and overload (issue 5): idle, stalled and trickling clients must not keep
//! a small fixed pool from serving ready clients; overload is shed, never fatal.
//!
//! These tests assert behaviour, not speed: "served long before the slow clients'
//! deadline" with a deadline of many seconds, never a tight time bound.

use crate::support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Opens `n` connections to `addr` that send `prefix` (maybe nothing) and then stall.
fn hold(addr: SocketAddr, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(addr);
            if !prefix.is_empty() {
                s.write_all(prefix).expect("send prefix");
            }
            s
        })
        .collect()
}

#[test]
fn stalled_clients_do_not_hold_the_workers() {
    // Two workers, a 20 s deadline: if stalled clients held workers, the real clients
    // below would wait ~20 s. They must be served while the stalled ones are still open.
    let mut d = Daemon::start_local(&["-w", "2", "-t", "20"]);
    let addr = d.addr();
    let partial = hold(addr, 100, b"<policy-file");
    let trickle = hold(addr, 50, b"<");
    let idle = hold(addr, 50, b"");
    let start = Instant::now();
    for _ in 0..20 {
        let r = fetch(addr, REQUEST);
        assert_served_then_eof(&r);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "20 real clients took {took:?} beside 200 stalled ones (deadline 20 s): workers were held"
    );
    // The stalled clients are still waiting (not cut off early) and can still finish.
    let mut s = partial.into_iter().next().unwrap();
    s.write_all(b"-request/>\0").unwrap();
    let r = read_to_end(&mut s);
    assert_served_then_eof(&r);
    drop((trickle, idle));
    let line = d.stop();
    assert_eq!(counter(&line, "served"), 21, "{line}");
}

#[test]
fn trickling_clients_are_cut_at_the_whole_connection_deadline_by_the_waiting_room() {
    let d = Daemon::start_local(&["-w", "1", "-t", "1"]);
    let addr = d.addr();
    let mut clients = hold(addr, 20, b"<");
    let start = Instant::now();
    // Each sends one more byte every 200 ms; none may get a policy, all are closed by ~1 s.
    for step in 1..6 {
        thread::sleep(Duration::from_millis(200)); // pacing the trickle, not synchronising
        for c in &mut clients {
            let _ = c.write_all(&REQUEST_TEXT[step..step + 1]);
        }
    }
    for mut c in clients {
        let r = read_to_end(&mut c);
        assert!(
            r.bytes.is_empty(),
            "a trickling client got {}",
            show(&r.bytes)
        );
        assert_ne!(r.end, End::Timeout, "not closed by the server");
    }
    let took = start.elapsed();
    // About 1 s; 6 s leaves a busy machine room and stays within each client's wait.
    assert!(took < Duration::from_secs(6), "closed only after {took:?}");
}

#[test]
fn clients_a_slow_round_trip_away_are_served_side_by_side_by_one_worker() {
    // What a server sees of wide-area clients: each piece a client sends arrives a round
    // trip after the previous one. Here the request (with its NUL, as a player sends it)
    // comes in two pieces 300 ms apart. With one worker, 40 such clients at once must be
    // served side by side: were the worker to wait for any one of them between its
    // pieces, they would take 40 x 0.3 s. (A request without its NUL is answered, then
    // the worker lingers for the NUL, bounded: see wire.rs.)
    let mut d = Daemon::start_local(&["-w", "1", "-t", "20"]);
    let addr = d.addr();
    let rtt = Duration::from_millis(300);
    let start = Instant::now();
    let clients: Vec<_> = (0..40)
        .map(|_| {
            thread::spawn(move || {
                let mut s = connect(addr);
                s.write_all(b"<policy-file-").expect("first piece");
                thread::sleep(rtt); // the round trip, not synchronisation
                s.write_all(b"request/>\0").expect("second piece");
                read_to_end(&mut s)
            })
        })
        .collect();
    // A client with no delay, while the 40 are between their pieces.
    let r = fetch(addr, REQUEST);
    assert_served_then_eof(&r);
    for c in clients {
        let r = c.join().expect("client thread");
        assert_served_then_eof(&r);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "40 slow clients took {took:?} with one worker (12 s if it waited for each)"
    );
    let line = d.stop();
    assert_eq!(counter(&line, "served"), 41, "{line}");
}

#[test]
fn a_full_descriptor_table_is_survived() {
    // The daemon gets only 64 descriptors (soft and hard), so it cannot raise them.
    let mut cmd = command_via(
        &["sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\""],
        &["-p", "0", "-b", "127.0.0.1", "-w", "2", "-t", "30"],
    );
    cmd.env("RUST_LOG", "info");
    let d = Daemon::start_cmd(cmd, 1);
    let addr = d.addr();
    // Far more stalled clients than descriptors.
    let stalled = hold(addr, 150, b"<policy");
    // Real clients are still served: the oldest stalled ones make room.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = 0;
    while served < 10 && Instant::now() < deadline {
        if let Some(r) = try_fetch(addr, REQUEST) {
            if r.end == End::Eof && r.bytes.ends_with(b"</cross-domain-policy>\n\0") {
                served += 1;
            }
        }
    }
    assert_eq!(
        served,
        10,
        "real clients starved by a full descriptor table:\n{}",
        d.stderr()
    );
    drop(stalled);
    let mut d = d;
    let line = d.stop();
    assert!(counter(&line, "served") >= 10, "{line}");
}

#[test]
fn overload_beyond_max_pending_is_shed_not_fatal() {
    let mut d = Daemon::start_local(&["-w", "1", "--max-pending", "1"]);
    let addr = d.addr();
    let n = 200;
    let clients: Vec<_> = (0..n)
        .map(|_| {
            thread::spawn(move || {
                let r = fetch(addr, REQUEST);
                // Either the whole policy or nothing: never a partial policy.
                assert!(
                    r.bytes.is_empty() || r.bytes.ends_with(b"</cross-domain-policy>\n\0"),
                    "{r:?}"
                );
                !r.bytes.is_empty()
            })
        })
        .collect();
    let got = clients
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|&b| b)
        .count();
    let line = d.stop();
    assert_eq!(counter(&line, "served") as usize, got, "{line}");
    assert_eq!(
        counter(&line, "served") + counter(&line, "overflow"),
        n as u64,
        "every connection is either served or shed: {line}"
    );
}
