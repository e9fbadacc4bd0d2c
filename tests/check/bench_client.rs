//! The load client `flashpolicy-bench` against a real flashpolicyd on 127.0.0.1:0
//! (every mode, short runs), and against tiny fake servers that misbehave in one
//! known way each (reset after the reply, no NUL, junk answered), so that every
//! verdict is checked against a server whose behaviour is certain.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use crate::fake::{replying, replying_then_reset, Fake};
use support::{run_cmd, Daemon, Output};

const BENCH: &str = env!("CARGO_BIN_EXE_flashpolicy-bench");
const POLICY: &[u8] = b"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>\0";
/// The `-t` of a run against the daemon: one transaction's deadline.
const TIMEOUT_SECS: u64 = 4;
/// Every `err_KIND` key the RESULT line carries (the kinds of `client::Failure`).
const FAILURES: [&str; 15] = [
    "conn_refused",
    "conn_timeout",
    "conn_reset",
    "conn_addrnotavail",
    "fd_limit",
    "conn_other",
    "write",
    "read_timeout",
    "read_reset",
    "read_other",
    "empty_reply",
    "bad_reply",
    "no_nul",
    "too_big",
    "answered_junk",
];

/// A finished run of the binary: its output and the fields of its RESULT line.
struct Run {
    out: Output,
    fields: BTreeMap<String, String>,
}

impl Run {
    /// The numeric field `key` (panics with the output if it is missing).
    fn n(&self, key: &str) -> f64 {
        num(&self.fields, key)
    }

    /// The summary and the RESULT line, for failure messages.
    fn text(&self) -> String {
        self.out.stdout_text()
    }
}

/// Runs `flashpolicy-bench MODE -H 127.0.0.1 -p PORT -c CLIENTS -d SECS -t 4 EXTRA...`.
fn bench(mode: &str, port: u16, clients: usize, secs: f64, extra: &[&str]) -> Run {
    bench_t(mode, port, clients, secs, TIMEOUT_SECS, extra)
}

/// Like [`bench`] with `-t TIMEOUT`. Bounded: the duration, one transaction timeout
/// and the holders' wind-down (5 s), plus 10 s for a busy machine to start it.
fn bench_t(mode: &str, port: u16, clients: usize, secs: f64, timeout: u64, extra: &[&str]) -> Run {
    let (port, clients) = (port.to_string(), clients.to_string());
    let (secs_arg, timeout_arg) = (secs.to_string(), timeout.to_string());
    let mut args = vec![
        mode,
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-c",
        &clients,
        "-d",
        &secs_arg,
        "-t",
        &timeout_arg,
    ];
    args.extend_from_slice(extra);
    let limit = Duration::from_secs_f64(secs) + Duration::from_secs(timeout + 5 + 10);
    let mut cmd = Command::new(BENCH);
    cmd.args(&args);
    let out = run_cmd(cmd, limit);
    support::assert_no_panic(&out);
    let fields = result_fields(&out);
    Run { out, fields }
}

fn assert_clean(r: &Run) {
    assert_eq!(r.n("errors"), 0.0, "errors:\n{}", r.text());
    assert_eq!(r.n("resets"), 0.0, "resets:\n{}", r.text());
    assert_eq!(r.out.code(), 0, "{:?}", r.out);
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
        "last line is not RESULT:\n{text}\nstderr:\n{}",
        out.stderr
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
    let r = bench("rate", d.port(), 4, 1.0, &[]);
    assert_clean(&r);
    assert!(r.n("rate") > 0.0 && r.n("ok") > 0.0, "{}", r.text());
    assert_eq!(r.n("clients_started"), 4.0);
    let (p50, p99, max) = (r.n("p50_us"), r.n("p99_us"), r.n("max_us"));
    assert!(p50 <= p99 && p99 <= max, "{}", r.text());
    assert!(max > 0.0, "{}", r.text());
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
    let kinds: BTreeSet<&str> = f.keys().filter_map(|k| k.strip_prefix("err_")).collect();
    assert_eq!(kinds, FAILURES.into_iter().collect(), "{f:?}");
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
    let r = bench("junk", d.port(), 3, 0.5, &[]);
    assert_eq!(r.n("errors"), 0.0, "{}", r.text());
    assert_eq!(r.n("ok"), 0.0);
    assert!(
        r.n("junk_ok") >= 3.0,
        "every junk payload at least once: {}",
        r.text()
    );
}

#[test]
fn idle_connections_are_held_beside_the_clients() {
    let d = Daemon::start_local(&[]);
    let r = bench("idle", d.port(), 2, 1.0, &["-k", "50"]);
    assert_clean(&r);
    assert!(r.n("ok") > 0.0, "{}", r.text());
    assert_eq!(
        (r.n("held"), r.n("held_open_start")),
        (50.0, 50.0),
        "{}",
        r.text()
    );
    assert!(r.n("held_opened") >= 50.0, "{}", r.text());
}

#[test]
fn trickling_connections_are_reopened_after_the_server_closes_them() {
    // A 1 s deadline: the server gives up on each trickler after a byte or two.
    let d = Daemon::start_local(&["-t", "1"]);
    let r = bench("trickle", d.port(), 2, 2.5, &["-k", "10"]);
    assert_clean(&r);
    assert!(r.n("ok") > 0.0, "{}", r.text());
    assert!(r.n("held_server_closed") >= 10.0, "{}", r.text());
    assert!(
        r.n("held_reopens") >= 1.0 && r.n("held_opened") > 10.0,
        "{}",
        r.text()
    );
    assert_eq!(
        r.n("held_replies"),
        0.0,
        "a partial request got a policy: {}",
        r.text()
    );
}

#[test]
fn mix_stops_at_max_conns_and_sends_its_share_of_junk() {
    let d = Daemon::start_local(&[]);
    let r = bench("mix", d.port(), 2, 20.0, &["-k", "10", "-n", "200"]);
    assert_clean(&r);
    assert_eq!(r.n("ok") + r.n("junk_ok"), 200.0, "{}", r.text());
    // Each client sends junk as every fourth of its own transactions: 48-50 of 200.
    assert!((48.0..=50.0).contains(&r.n("junk_ok")), "{}", r.text());
    // The budget, not the 20 s clock, ended the run.
    assert!(r.n("elapsed_s") < 20.0, "{}", r.text());
    assert!(r.n("connections") >= 210.0, "{}", r.text());
}

#[test]
fn a_closed_port_is_counted_as_refused_and_exits_1() {
    let closed = support::closed_port();
    let port = closed.port().to_string();
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

/// One client for 0.4 s against `fake`, with a 2 s transaction deadline.
fn bench_fake(fake: &Fake, mode: &str) -> Run {
    bench_t(mode, fake.port, 1, 0.4, 2, &[])
}

#[test]
fn a_reply_that_ends_in_a_reset_is_good_but_counted() {
    let fake = replying_then_reset(POLICY.to_vec());
    let r = bench_fake(&fake, "rate");
    assert_eq!(r.n("errors"), 0.0, "{}", r.text());
    assert!(r.n("ok") > 0.0, "{}", r.text());
    assert_eq!(r.n("resets"), r.n("ok"), "{}", r.text());
}

#[test]
fn a_policy_without_its_nul_is_an_error() {
    let fake = replying(POLICY[..POLICY.len() - 1].to_vec());
    let r = bench_fake(&fake, "rate");
    assert_eq!(r.n("ok"), 0.0, "{}", r.text());
    let no_nul = r.n("err_no_nul");
    assert!(no_nul > 0.0 && no_nul == r.n("errors"), "{}", r.text());
    assert_eq!(r.out.code(), 1, "nothing succeeded: {:?}", r.out);
}

#[test]
fn junk_answered_with_a_policy_is_an_error() {
    let fake = replying_then_reset(POLICY.to_vec());
    let r = bench_fake(&fake, "junk");
    assert_eq!(r.n("junk_ok"), 0.0, "{}", r.text());
    let answered = r.n("err_answered_junk");
    assert!(answered > 0.0 && answered == r.n("errors"), "{}", r.text());
}

/// `scripts/ab.py`, the side-by-side A/B script, run for one short round against two
/// daemons (this build twice): it must print one table row per server and
/// concurrency, with a rate, a CPU figure and a switches figure.
#[test]
fn the_ab_script_prints_a_row_per_server_and_concurrency() {
    if Command::new("python3").arg("--version").output().is_err() {
        support::skip("ab_script", "python3 is not installed");
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
