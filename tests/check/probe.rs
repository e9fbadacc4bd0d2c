//! `flashpolicy-check` against deliberately broken fake servers: each reply defect must
//! give the status docs/protocol.md and the plugin conventions call for.

use crate::support;

use std::io::Write;
use std::thread;
use std::time::Duration;

use crate::checker::*;
use crate::fake::*;
use support::{closed_port, closed_port_on};

fn host_port(port: u16) -> Vec<String> {
    vec![
        "-H".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ]
}

fn run_on(port: u16, extra: &[&str]) -> Run {
    let mut args = host_port(port);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(&args)
}

#[test]
fn good_policy_is_ok_with_perfdata() {
    let fake = policy_server(GOOD);
    let run = run_on(fake.port, &[]);
    expect(&run, 0);
    let line = run.first_line();
    assert!(line.contains(&format!("127.0.0.1:{}", fake.port)), "{line}");
    let perf = line.split(" | ").nth(1).expect("perfdata after \" | \"");
    assert!(perf.starts_with("time="), "{perf}");
    assert!(perf.contains("s;;;0 "), "{perf}");
    assert!(
        perf.ends_with(&format!(" size={}B", GOOD.len() + 1)),
        "{perf}"
    );
    assert!(run.stdout.contains("ended with one NUL"), "{}", run.stdout);
}

#[test]
fn silent_server_times_out_within_the_deadline() {
    let fake = serve(|mut s| {
        read_request(&mut s);
        // Hold the connection until the client gives up (bounded by FAKE_DEADLINE).
        read_request(&mut s);
    });
    let run = run_on(fake.port, &["-t", "0.5"]);
    expect(&run, 2);
    assert!(
        run.first_line().contains("no reply from 127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(run.first_line().contains("within 0.5s"), "{}", run.stdout);
    assert!(
        run.elapsed >= Duration::from_millis(450),
        "{:?}",
        run.elapsed
    );
    // Far below the fake's 20 s: the checker gave up at its own deadline.
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn resetting_server_is_critical() {
    let fake = serve(|s| {
        // Closing with the request unread makes the kernel send RST.
        let mut buf = [0u8; 1];
        let _ = s.peek(&mut buf);
        drop(s);
    });
    let run = run_on(fake.port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line().contains("connection reset by 127.0.0.1:"),
        "{}",
        run.stdout
    );
}

#[test]
fn refused_connection_is_critical() {
    let closed = closed_port();
    let port = closed.port();
    let run = run_on(port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line()
            .contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{}",
        run.stdout
    );
}

#[test]
fn close_without_reply_is_critical() {
    let fake = replying(Vec::new());
    let run = run_on(fake.port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line()
            .contains("closed the connection without a reply"),
        "{}",
        run.stdout
    );
}

#[test]
fn junk_reply_is_an_invalid_policy() {
    let fake = replying(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec());
    let run = run_on(fake.port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line().contains("invalid policy"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("without the NUL"), "{}", run.stdout);
}

#[test]
fn reply_without_nul_is_a_warning() {
    let fake = replying(GOOD.as_bytes().to_vec());
    let run = run_on(fake.port, &[]);
    expect(&run, 1);
    assert!(
        run.first_line().contains("ends without the NUL"),
        "{}",
        run.stdout
    );
    assert!(
        run.first_line().ends_with(&format!("size={}B", GOOD.len())),
        "{}",
        run.stdout
    );
}

#[test]
fn bytes_after_the_nul_are_a_warning() {
    let mut reply = GOOD.as_bytes().to_vec();
    reply.extend_from_slice(b"\0junk");
    let fake = replying(reply);
    let run = run_on(fake.port, &[]);
    expect(&run, 1);
    assert!(
        run.first_line().contains("4 bytes after the NUL"),
        "{}",
        run.stdout
    );
}

#[test]
fn split_reply_is_read_until_the_nul() {
    let fake = serve(|mut s| {
        read_request(&mut s);
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.push(0);
        for piece in bytes.chunks(bytes.len() / 4 + 1) {
            if s.write_all(piece).and_then(|()| s.flush()).is_err() {
                return;
            }
            // Pauses are the behaviour under test (TCP delivers separate segments).
            thread::sleep(Duration::from_millis(60));
        }
    });
    let run = run_on(fake.port, &[]);
    expect(&run, 0);
    assert!(
        run.first_line()
            .ends_with(&format!("size={}B", GOOD.len() + 1)),
        "{}",
        run.stdout
    );
}

#[test]
fn oversize_reply_is_critical() {
    let fake = serve(|mut s| {
        read_request(&mut s);
        let chunk = [b'x'; 4096];
        for _ in 0..64 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let run = run_on(fake.port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line()
            .contains("exceeds 65536 bytes without a NUL"),
        "{}",
        run.stdout
    );
}

#[test]
fn thresholds_apply_to_the_reply_time() {
    let fake = policy_server(GOOD);
    let run = run_on(fake.port, &["-c", "0"]);
    expect(&run, 2);
    assert!(
        run.first_line().contains("over critical 0.000000s"),
        "{}",
        run.stdout
    );
    assert!(
        run.first_line().contains(";;0.000000;0 size="),
        "{}",
        run.stdout
    );
    let run = run_on(fake.port, &["-w", "0", "-c", "60"]);
    expect(&run, 1);
    assert!(
        run.first_line().contains("over warning 0.000000s"),
        "{}",
        run.stdout
    );
    let run = run_on(fake.port, &["-w", "60", "-c", "60"]);
    expect(&run, 0);
}

#[test]
fn verbose_prints_the_policy_and_its_elements() {
    let fake = policy_server(GOOD);
    let run = run_on(fake.port, &["-v"]);
    expect(&run, 0);
    assert!(
        run.stdout.contains("<cross-domain-policy>"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("line 3: allow-access-from domain=\"*.example.com\" to-ports=\"9000-9100\""),
        "{}",
        run.stdout
    );
}

#[test]
fn validator_errors_are_reported() {
    let bad = "<cross-domain-policy>\n<allow-access-from domain=\"*\"/>\n</cross-domain-policy>";
    let fake = policy_server(bad);
    let run = run_on(fake.port, &[]);
    expect(&run, 2);
    assert!(
        run.first_line().contains("invalid policy"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("line 2"), "{}", run.stdout);
}

#[test]
fn ipv6_loopback_literal_is_accepted() {
    // Nothing listens on [::1] here: what matters is that the literal is understood
    // (a refusal, or an unreachable address on hosts without IPv6), not a usage error.
    // A port closed on ::1 where there is an IPv6 loopback; without one, any port is
    // unreachable there.
    let closed = closed_port_on("::1".parse().unwrap()).unwrap_or_else(closed_port);
    let port = closed.port();
    let run = check(&["-H", "::1", "-p", &port.to_string(), "-t", "1"]);
    expect(&run, 2);
    assert!(
        run.first_line().contains(&format!("[::1]:{port}")),
        "{}",
        run.stdout
    );
}
