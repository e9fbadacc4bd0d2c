//! The counters, black-box: every connection lands in exactly one outcome (a client
//! that sends nothing is `empty`, bytes that are not the request are `rejected`, part
//! of the request then silence is `timed_out`), and `--stats-file` shows them in the
//! Prometheus text format, read back with a real parser of that format, at start,
//! every `--stats-interval` and at stop.
//!
//! `fd_exhausted` counts failed `accept` calls, not connections (the connection stays
//! in the kernel's queue and is counted when it is accepted), so it is not part of the
//! sums. A client that resets a silent connection before the daemon accepts it (on
//! Linux silent ones wait in the kernel: TCP_DEFER_ACCEPT) never reaches the daemon and
//! is not counted; none of the clients here does that.

#![cfg(unix)]

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{PrometheusType, PrometheusValue};

use support::*;

/// The connection counters, in the order of the stats line.
const OUTCOMES: &[&str] = COUNTERS.split_at(6).0;

/// Far above the time any change takes to show (intervals of 0.2 s, deadlines of 1 s).
const SHOW_UP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Clients, one per outcome

/// What a client does; the comment says the outcome the daemon must count.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// The whole request: `served`.
    Request,
    /// An HTTP request: `rejected` at its first byte.
    Junk,
    /// Part of the request, then a close: `rejected`.
    PartThenClose,
    /// Part of the request, then silence until the deadline: `timed_out`.
    PartThenSilence,
    /// Connect and close at once, sending nothing (a TCP health check): `empty`.
    Close,
    /// Connect and send nothing until the daemon gives up: `empty`.
    Silence,
}

impl Client {
    /// Runs the client to its end; returns whether it got the policy.
    fn run(self, addr: SocketAddr) -> bool {
        let mut s = connect(addr);
        let sent: &[u8] = match self {
            Client::Request => REQUEST,
            Client::Junk => b"GET / HTTP/1.0\r\n\r\n",
            Client::PartThenClose | Client::PartThenSilence => b"<policy-file",
            Client::Close | Client::Silence => b"",
        };
        if !sent.is_empty() {
            // A shed connection (overflow) may be closed before the write.
            let _ = s.write_all(sent);
        }
        if matches!(self, Client::PartThenClose | Client::Close) {
            shutdown_write(&s);
        }
        let r = read_to_end(&mut s);
        assert_ne!(
            r.end,
            End::Timeout,
            "{self:?}: the daemon never closed: {r:?}"
        );
        if !r.bytes.is_empty() {
            assert_served_then_eof(&r);
        }
        !r.bytes.is_empty()
    }

    fn outcome(self) -> &'static str {
        match self {
            Client::Request => "served",
            Client::Junk | Client::PartThenClose => "rejected",
            Client::PartThenSilence => "timed_out",
            Client::Close | Client::Silence => "empty",
        }
    }
}

const EVERY_KIND: [Client; 6] = [
    Client::Request,
    Client::Junk,
    Client::PartThenClose,
    Client::PartThenSilence,
    Client::Close,
    Client::Silence,
];

/// `n` clients of each kind, run one after the other; the expected counters.
fn one_of_each(addr: SocketAddr, n: u64) -> BTreeMap<&'static str, u64> {
    let mut want: BTreeMap<&str, u64> = OUTCOMES.iter().map(|&o| (o, 0)).collect();
    for kind in EVERY_KIND {
        for _ in 0..n {
            let served = kind.run(addr);
            assert_eq!(served, matches!(kind, Client::Request), "{kind:?}");
            *want.get_mut(kind.outcome()).unwrap() += 1;
        }
    }
    want
}

// ---------------------------------------------------------------------------------------
// The stats line

#[test]
fn every_connection_lands_in_exactly_one_outcome() {
    let mut d = Daemon::start_local(&["-t", "1", "-v"]);
    let want = one_of_each(d.addr(), 2);
    let line = d.stop();
    let got = parse_counters(&line);
    for &o in OUTCOMES {
        assert_eq!(got.get(o), want.get(o), "{o} in {line:?}");
    }
    assert_eq!(got.get("fd_exhausted"), Some(&0), "{line}");
    let total: u64 = OUTCOMES.iter().map(|o| got[*o]).sum();
    assert_eq!(total, 2 * EVERY_KIND.len() as u64, "{line}");
    // The per-connection lines name the outcome too.
    let empties = d
        .lines()
        .iter()
        .filter(|l| l.contains(" DEBUG ") && l.contains(" empty: "))
        .count();
    assert_eq!(empties, 4, "{}", d.stderr());
}

#[test]
fn under_overload_the_shed_connections_are_counted_once_too() {
    // One worker, one waiting slot: most of a burst is shed (overflow); whatever each
    // connection became, the counters add up to the connections made. (A long deadline:
    // no client here stays silent, and a slow machine must not turn a request into a
    // timeout.)
    let mut d = Daemon::start_local(&["-w", "1", "--max-pending", "1", "-t", "3"]);
    let addr = d.addr();
    let kinds = [Client::Request, Client::Junk, Client::Close];
    let per_kind = 40;
    let clients: Vec<_> = (0..per_kind)
        .flat_map(|_| kinds)
        .map(|kind| thread::spawn(move || kind.run(addr)))
        .collect();
    let made = clients.len() as u64;
    let got_policy = clients
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|&b| b)
        .count() as u64;
    let line = d.stop();
    let got = parse_counters(&line);
    let total: u64 = OUTCOMES.iter().map(|o| got[*o]).sum();
    assert_eq!(
        total, made,
        "every connection in exactly one counter: {line}"
    );
    assert_eq!(got["served"], got_policy, "{line}");
    assert!(got["served"] <= per_kind, "{line}");
    assert!(got["rejected"] <= per_kind, "{line}");
    assert!(got["empty"] <= per_kind, "{line}");
    assert_eq!(got["timed_out"] + got["io_errors"], 0, "{line}");
}

// ---------------------------------------------------------------------------------------
// --stats-file

/// One sample of the textfile: family name and labels (sorted `k=v`), and its value.
type Samples = BTreeMap<(String, Vec<String>), f64>;

/// Parses the textfile with a real parser of the format (the test fails on any line it
/// rejects) and checks the conventions node_exporter's users expect: every family
/// prefixed `flashpolicyd_`, with help; counters, and only counters, ending in `_total`.
fn parse(text: &str) -> Samples {
    let exposition = parse_prometheus(text)
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e:?}\n{text}"));
    let mut out = Samples::new();
    for (name, family) in &exposition.families {
        assert!(name.starts_with("flashpolicyd_"), "{name}");
        assert!(!family.help.is_empty(), "{name} has no # HELP");
        let counter = family.family_type == PrometheusType::Counter;
        assert_eq!(
            counter,
            name.ends_with("_total"),
            "{name}: {:?}",
            family.family_type
        );
        for s in family.iter_samples() {
            let mut labels: Vec<String> = s
                .get_labelset()
                .expect("labels")
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            let value = match &s.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(g) => g.as_f64(),
                other => panic!("{name}: neither a counter nor a gauge: {other:?}"),
            };
            out.insert((name.clone(), labels), value);
        }
    }
    // HELP and TYPE come first, before the samples of their family.
    for (name, _) in out.keys() {
        let help = text.find(&format!("# HELP {name} ")).expect("HELP line");
        let kind = text.find(&format!("# TYPE {name} ")).expect("TYPE line");
        let first = text.find(&format!("\n{name}")).expect("a sample");
        assert!(
            help < first && kind < first,
            "{name}: HELP/TYPE after a sample"
        );
    }
    out
}

fn get(samples: &Samples, name: &str, labels: &[&str]) -> Option<f64> {
    let key = (
        name.to_string(),
        labels.iter().map(|l| l.to_string()).collect(),
    );
    samples.get(&key).copied()
}

fn connections(samples: &Samples, outcome: &str) -> Option<f64> {
    get(
        samples,
        "flashpolicyd_connections_total",
        &[&format!("outcome={outcome}")],
    )
}

fn read_samples(path: &Path) -> Option<Samples> {
    fs::read_to_string(path).ok().map(|t| parse(&t))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64
}

fn policy(domain: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
         <allow-access-from domain=\"{domain}\" to-ports=\"843\"/>\n</cross-domain-policy>\n"
    )
    .into_bytes()
}

#[test]
fn the_stats_file_shows_every_outcome_and_the_final_counters() {
    let dir = TempDir::new("stats");
    let prom = dir.join("flashpolicyd.prom");
    let policy_file = dir.join("policy.xml");
    fs::write(&policy_file, policy("a.example.com")).unwrap();
    let before = unix_now();
    let mut d = Daemon::start_local(&[
        "-t",
        "1",
        "-f",
        &policy_file,
        "--reload-interval",
        "0.2",
        "--stats-file",
        &prom,
        "--stats-interval",
        "0.2",
    ]);
    let after = unix_now();
    let prom = PathBuf::from(prom);

    // Written before the daemon said it was listening: every counter at 0.
    let first = read_samples(&prom).expect("the stats file exists once the daemon listens");
    for &o in OUTCOMES {
        assert_eq!(connections(&first, o), Some(0.0), "{o}: {first:?}");
    }
    let served = policy("a.example.com").len() as f64 + 1.0; // and its NUL
    assert_eq!(get(&first, "flashpolicyd_policy_bytes", &[]), Some(served));
    assert_eq!(
        get(&first, "flashpolicyd_policy_reloads_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        get(&first, "flashpolicyd_policy_reload_failures_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        get(&first, "flashpolicyd_accept_fd_exhausted_total", &[]),
        Some(0.0)
    );
    let started = get(&first, "flashpolicyd_start_time_seconds", &[]).expect("start time");
    assert!(
        before - 1.0 <= started && started <= after + 1.0,
        "start time {started} outside [{before}, {after}]"
    );
    let version = format!("version={}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        get(&first, "flashpolicyd_build_info", &[&version]),
        Some(1.0),
        "{first:?}"
    );

    // Connections of each kind, then a reload (a bigger policy) and a refused one.
    let want = one_of_each(d.addr(), 1);
    let bigger = policy("a-longer-name.example.com");
    replace_file(Path::new(&policy_file), &bigger);
    let shown = poll(SHOW_UP, || {
        let s = read_samples(&prom)?;
        let all = OUTCOMES
            .iter()
            .all(|o| connections(&s, o) == Some(want[o] as f64));
        let reloaded = get(&s, "flashpolicyd_policy_reloads_total", &[]) == Some(1.0);
        (all && reloaded).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the stats file never showed {want:?} and one reload:\n{}\nstderr:\n{}",
            fs::read_to_string(&prom).unwrap_or_default(),
            d.stderr()
        )
    });
    assert_eq!(
        get(&shown, "flashpolicyd_policy_bytes", &[]),
        Some(bigger.len() as f64 + 1.0)
    );
    replace_file(Path::new(&policy_file), b"<cross-domain-policy>");
    poll(SHOW_UP, || {
        let s = read_samples(&prom)?;
        (get(&s, "flashpolicyd_policy_reload_failures_total", &[]) == Some(1.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("no refused reload counted:\n{}", d.stderr()));

    // One more client, right before the stop: only the write at stop can show it.
    assert!(Client::Request.run(d.addr()));
    let line = d.stop();
    let last = read_samples(&prom).expect("the stats file after the stop");
    let stopped = parse_counters(&line);
    for &o in OUTCOMES {
        assert_eq!(
            connections(&last, o),
            Some(stopped[o] as f64),
            "{o}: file and stopped line disagree: {line}"
        );
    }
    assert_eq!(
        connections(&last, "served"),
        Some(want["served"] as f64 + 1.0)
    );
    assert_eq!(
        get(&last, "flashpolicyd_start_time_seconds", &[]),
        Some(started)
    );
    // Only the file (and the policy) are left: no temporary file behind.
    assert_eq!(dir.names(), ["flashpolicyd.prom", "policy.xml"]);
}

#[test]
fn the_stats_file_defaults_to_every_15_seconds() {
    let dir = TempDir::new("stats-default");
    let prom = dir.join("flashpolicyd.prom");
    let mut d = Daemon::start_local(&["--stats-file", &prom]);
    d.expect_line("writing the counters to ", Duration::from_secs(2));
    let line = d.expect_line("every 15s", Duration::from_secs(2));
    assert!(line.contains(&prom), "{line}");
    d.stop();
}

#[test]
fn an_unwritable_stats_file_is_a_configuration_error_naming_the_path() {
    let dir = TempDir::new("stats-bad");
    let missing = dir.join("no-such-dir/flashpolicyd.prom");
    let is_dir = dir.join("a-directory");
    fs::create_dir(&is_dir).unwrap();
    for path in [&missing, &is_dir] {
        let out = run(
            &["-p", "0", "-b", "127.0.0.1", "--stats-file", path],
            Duration::from_secs(10),
        );
        assert_no_panic(&out);
        assert_eq!(out.code(), 2, "{path}: {}", out.stderr);
        let lines = out.stderr_lines();
        let err = lines.last().expect("an error line");
        assert!(
            err.contains(&format!("cannot write --stats-file {path}: ")),
            "{path}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("listening on"),
            "{path}: started anyway: {}",
            out.stderr
        );
    }
    assert_eq!(dir.names(), ["a-directory"], "temporary files left behind");
    if !is_root() {
        let locked = TempDir::new("stats-locked");
        let mut perms = fs::metadata(&locked.0).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        fs::set_permissions(&locked.0, perms).unwrap();
        let path = locked.join("flashpolicyd.prom");
        let out = run(
            &["-p", "0", "-b", "127.0.0.1", "--stats-file", &path],
            Duration::from_secs(10),
        );
        assert_stats_file_refused(&out, &path);
    }
}
