//! The load client `flashpolicy-bench` against a real flashpolicyd on 127.0.0.1:0
//! (every mode, short runs), and against tiny fake servers that misbehave in one
//! known way each (reset after the reply, no NUL, junk answered), so that every
//! verdict is checked against a server whose behaviour is certain.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flashpolicyd::bench::{self, Config, Mode, Report};
use support::{run_cmd, Daemon, Output};

const BENCH: &str = env!("CARGO_BIN_EXE_flashpolicy-bench");
const POLICY: &[u8] = b"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>\0";

fn config(mode: Mode, port: u16, clients: usize, secs: f64) -> Config {
    let mut c = Config::new(mode, "127.0.0.1", port);
    c.clients = clients;
    c.duration = Duration::from_secs_f64(secs);
    c.timeout = Duration::from_secs(4);
    c
}

fn run(c: &Config) -> Report {
    let t = Instant::now();
    let r = bench::run(c).expect("bench run");
    // Bounded: the duration, one transaction timeout, and the holders' wind-down.
    assert!(t.elapsed() < c.duration + c.timeout + Duration::from_secs(5));
    r
}

fn assert_clean(r: &Report) {
    assert_eq!(
        r.tally.error_count(),
        0,
        "errors:\n{r}\n{}",
        r.result_line()
    );
    assert_eq!(r.tally.resets, 0, "resets:\n{r}");
}

fn bench_cmd(args: &[&str]) -> Output {
    let mut cmd = Command::new(BENCH);
    cmd.args(args);
    run_cmd(cmd, Duration::from_secs(20))
}

fn result_fields(out: &Output) -> BTreeMap<String, String> {
    let text = out.stdout_text();
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("RESULT "),
        "last line is not RESULT:\n{text}"
    );
    last.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn num(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {key} in {fields:?}"))
}

#[test]
fn one_second_at_four_clients_reports_a_rate_and_no_errors() {
    let d = Daemon::start_local(&[]);
    let r = run(&config(Mode::Rate, d.port(), 4, 1.0));
    assert_clean(&r);
    assert!(r.rate() > 0.0 && r.tally.ok > 0, "{r}");
    assert_eq!(r.clients_started, 4);
    let l = &r.tally.latency;
    assert_eq!(l.count(), r.tally.ok);
    assert!(l.quantile_us(0.5) <= l.quantile_us(0.99) && l.quantile_us(0.99) <= l.max_us());
    assert!(l.max_us() > 0);
}

#[test]
fn the_binary_prints_a_summary_and_a_complete_result_line() {
    let d = Daemon::start_local(&[]);
    let port = d.port().to_string();
    let out = bench_cmd(&["rate", "-p", &port, "-c", "2", "-d", "0.5", "--label", "t1"]);
    assert_eq!(out.code(), 0, "{out:?}");
    support::assert_no_panic(&out);
    let text = out.stdout_text();
    assert!(text.contains("conn/s") && text.contains("p99"), "{text}");
    let f = result_fields(&out);
    assert_eq!(f["mode"], "rate");
    assert_eq!(f["label"], "t1");
    assert!(num(&f, "ok") > 0.0 && num(&f, "rate") > 0.0);
    assert_eq!(num(&f, "errors"), 0.0);
    for kind in bench::client::Failure::ALL {
        assert!(f.contains_key(&format!("err_{}", kind.as_str())), "{f:?}");
    }
    for key in [
        "p50_us",
        "p99_us",
        "max_us",
        "resets",
        "held_open_avg",
        "connections",
    ] {
        num(&f, key);
    }
}

#[test]
fn junk_is_closed_without_a_policy() {
    let d = Daemon::start_local(&[]);
    let r = run(&config(Mode::Junk, d.port(), 3, 0.5));
    assert_eq!(r.tally.error_count(), 0, "{r}");
    assert_eq!(r.tally.ok, 0);
    assert!(
        r.tally.junk_ok >= 3,
        "every junk payload at least once: {r}"
    );
}

#[test]
fn idle_connections_are_held_beside_the_clients() {
    let d = Daemon::start_local(&[]);
    let mut c = config(Mode::Idle, d.port(), 2, 1.0);
    c.held = 50;
    let r = run(&c);
    assert_clean(&r);
    assert!(r.tally.ok > 0, "{r}");
    let h = r.held.as_ref().expect("held report");
    assert_eq!((h.target, h.open_start), (50, 50), "{r}");
    assert!(h.opened >= 50, "{r}");
}

#[test]
fn trickling_connections_are_reopened_after_the_server_closes_them() {
    // A 1 s deadline: the server gives up on each trickler after a byte or two.
    let d = Daemon::start_local(&["-t", "1"]);
    let mut c = config(Mode::Trickle, d.port(), 2, 2.5);
    c.held = 10;
    let r = run(&c);
    assert_clean(&r);
    assert!(r.tally.ok > 0, "{r}");
    let h = r.held.as_ref().expect("held report");
    assert!(h.tally.server_closed >= 10, "{r}");
    assert!(h.tally.reopens >= 1 && h.opened > 10, "{r}");
    assert_eq!(h.tally.replies, 0, "a partial request got a policy: {r}");
}

#[test]
fn mix_stops_at_max_conns_and_sends_its_share_of_junk() {
    let d = Daemon::start_local(&[]);
    let mut c = config(Mode::Mix, d.port(), 2, 20.0);
    c.held = 10;
    c.max_conns = Some(200);
    let r = run(&c);
    assert_clean(&r);
    assert_eq!(r.tally.ok + r.tally.junk_ok, 200, "{r}");
    // Each client sends junk as every fourth of its own transactions: 48-50 of 200.
    assert!((48..=50).contains(&r.tally.junk_ok), "{r}");
    assert!(r.elapsed < Duration::from_secs(10), "{r}");
    assert!(r.connections() >= 210, "{r}");
}

#[test]
fn a_closed_port_is_counted_as_refused_and_exits_1() {
    let port = support::free_port().to_string();
    let out = bench_cmd(&["-p", &port, "-c", "1", "-d", "0.3"]);
    assert_eq!(out.code(), 1, "{out:?}");
    let f = result_fields(&out);
    assert_eq!(num(&f, "ok"), 0.0);
    assert!(num(&f, "err_conn_refused") > 0.0, "{f:?}");
    assert_eq!(num(&f, "errors"), num(&f, "err_conn_refused"));
}

#[test]
fn usage_errors_name_the_flag_and_exit_2() {
    let out = bench_cmd(&["-p", "0"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("invalid --port \"0\""),
        "{}",
        out.stderr
    );
    let out = bench_cmd(&["--help"]);
    assert_eq!(out.code(), 0);
    assert!(out.stdout_text().contains("trickle"));
}

// ---------------------------------------------------------------------------------------
// Fake servers with one known flaw each

/// Serves `reply` to every connection until dropped. With `read_first`, it waits for
/// the whole 23-byte request; without, it answers as soon as the request arrives and
/// closes with it unread, which makes the kernel send a reset (as nginx's `return`
/// does).
struct Fake {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn start(reply: &'static [u8], read_first: bool) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((mut s, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if read_first {
                    let mut req = [0u8; 23];
                    let _ = s.read_exact(&mut req);
                } else {
                    // Wait for the request without consuming it: closing with it
                    // unread makes the kernel send a reset.
                    let _ = s.peek(&mut [0u8; 1]);
                }
                let _ = s.write_all(reply);
            }
        });
        Fake {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn config(&self, mode: Mode) -> Config {
        let mut c = config(mode, self.addr.port(), 1, 0.4);
        c.timeout = Duration::from_secs(2);
        c
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_reply_that_ends_in_a_reset_is_good_but_counted() {
    let fake = Fake::start(POLICY, false);
    let r = run(&fake.config(Mode::Rate));
    assert_eq!(r.tally.error_count(), 0, "{r}");
    assert!(r.tally.ok > 0, "{r}");
    assert_eq!(r.tally.resets, r.tally.ok, "{r}");
}

#[test]
fn a_policy_without_its_nul_is_an_error() {
    let fake = Fake::start(&POLICY[..POLICY.len() - 1], true);
    let r = run(&fake.config(Mode::Rate));
    assert_eq!(r.tally.ok, 0, "{r}");
    let no_nul = r.tally.errors[bench::client::Failure::NoNul.index()];
    assert!(no_nul > 0 && no_nul == r.tally.error_count(), "{r}");
}

#[test]
fn junk_answered_with_a_policy_is_an_error() {
    let fake = Fake::start(POLICY, false);
    let r = run(&fake.config(Mode::Junk));
    assert_eq!(r.tally.junk_ok, 0, "{r}");
    let answered = r.tally.errors[bench::client::Failure::AnsweredJunk.index()];
    assert!(answered > 0 && answered == r.tally.error_count(), "{r}");
}

/// `scripts/ab.py`, the side-by-side A/B script, run for one short round against two
/// daemons (this build twice): it must print one table row per server and
/// concurrency, with a rate, a CPU figure and a switches figure.
#[test]
fn the_ab_script_prints_a_row_per_server_and_concurrency() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let daemon = env!("CARGO_BIN_EXE_flashpolicyd");
    let a = format!("a={daemon} -p {{port}} -b 127.0.0.1 -q");
    let b = format!("b={daemon} -p {{port}} -b 127.0.0.1 -q --workers 2");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ab.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "-r", "1", "-d", "1", "-c", "2,4", &a, &b])
        .env("AB_CLIENT", BENCH);
    let out = run_cmd(cmd, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "ab.py failed:\n{}", out.stderr);
    let text = out.stdout_text();
    for (name, c) in [("a", 2), ("a", 4), ("b", 2), ("b", 4)] {
        let prefix = format!("| {name} | {c} | ");
        let row = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?} in:\n{text}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rate: f64 = cells[3].parse().expect("conn/s is a number");
        assert!(rate > 0.0, "no transaction in {row}");
        assert!(
            cells[5].ends_with("µs") && cells[6].parse::<f64>().is_ok(),
            "{row}"
        );
    }
}
