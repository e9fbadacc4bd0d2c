//! `--reload-interval`, black-box: good, bad and good policy files swapped under a
//! running daemon. A valid version is served after the next check and logged with its
//! size and digest (as `sha256sum` computes it); an invalid one is a warning naming
//! path:line and the old policy stays; a vanished file keeps the old policy; clients
//! hammering the daemon meanwhile always get one whole version, never a mix.

#![cfg(unix)]

mod support;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::*;

/// Time for a change to be picked up with `--reload-interval 0.2`: far above it.
const PICKUP: Duration = Duration::from_secs(5);

fn policy(domain: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
         <allow-access-from domain=\"{domain}\" to-ports=\"843\"/>\n</cross-domain-policy>\n"
    )
    .into_bytes()
}

/// Line 3 lacks `to-ports`: invalid in a socket policy.
const BAD: &[u8] =
    b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  <allow-access-from domain=\"bad.example\"/>\n</cross-domain-policy>\n";

fn served(doc: &[u8]) -> Vec<u8> {
    let mut v = doc.to_vec();
    v.push(0);
    v
}

/// Fetches until the daemon serves `want` (bounded).
fn wait_served(d: &Daemon, want: &[u8]) {
    let addr = d.addr();
    let got = poll(PICKUP, || {
        let b = fetch_policy(addr);
        (b == want).then_some(b)
    });
    assert!(
        got.is_some(),
        "still not serving {} after {PICKUP:?}; serving {}; stderr:\n{}",
        show(want),
        show(&fetch_policy(addr)),
        d.stderr()
    );
}

#[test]
fn good_bad_good_swaps_under_a_running_daemon() {
    let (a, b, c) = (
        policy("a.example"),
        policy("b.example"),
        policy("c.example"),
    );
    let file = TempPath::with_contents("reload.xml", &a);
    let d = Daemon::start_local(&["-f", file.as_str(), "--reload-interval", "0.2"]);
    assert_eq!(fetch_policy(d.addr()), served(&a));

    // Clients all along: each reply must be one whole version.
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (stop, addr) = (Arc::clone(&stop), d.addr());
        let versions = [served(&a), served(&b), served(&c)];
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let got = fetch_policy(addr);
                assert!(versions.contains(&got), "a mixed reply: {}", show(&got));
                n += 1;
            }
            n
        })
    };

    // A good version, swapped in by rename.
    replace_file(file.path(), &b);
    wait_served(&d, &served(&b));
    d.expect_line(
        &format!(
            "INFO policy reloaded from {}: {} bytes served, sha256 {}",
            file.as_str(),
            b.len() + 1,
            sha256sum(file.path())
        ),
        PICKUP,
    );

    // A bad version: a warning naming path:line, and b stays.
    replace_file(file.path(), BAD);
    let warning = d.expect_line("policy reload refused", PICKUP);
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(
        warning.contains(&format!("invalid policy {}:3:", file.as_str())),
        "{warning}"
    );
    for _ in 0..5 {
        assert_eq!(fetch_policy(d.addr()), served(&b));
    }

    // A good version again, this time written in place (same inode).
    fs::write(file.path(), &c).unwrap();
    wait_served(&d, &served(&c));

    stop.store(true, Ordering::SeqCst);
    let fetched = hammer.join().expect("no client got a mixed reply");
    assert!(fetched > 0);
    let mut d = d;
    d.stop();
}

/// A reloaded version is checked against the listening port like the first one: a
/// site-control in a policy served from a port other than 843 voids it for Lightspark
/// (protocol.md §7), so the reload warns, naming the port and the rule.
#[test]
fn a_reloaded_policy_gets_the_per_port_warnings() {
    // Ports of 1024 and above: nothing to warn about on an unprivileged port.
    let plain = b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
        <allow-access-from domain=\"a.example\" to-ports=\"8843\"/>\n</cross-domain-policy>\n";
    let file = TempPath::with_contents("reload-ports.xml", plain);
    let d = Daemon::start_local(&["-f", file.as_str(), "--reload-interval", "0.2"]);
    let port = d.port();
    let before = format!("policy: port {port}:");
    assert!(!d.stderr().contains(&before), "{}", d.stderr());
    let with_site_control = b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
        <site-control permitted-cross-domain-policies=\"all\"/>\n  \
        <allow-access-from domain=\"a.example\" to-ports=\"8843\"/>\n</cross-domain-policy>\n";
    replace_file(file.path(), with_site_control);
    wait_served(&d, &served(with_site_control));
    let warned = poll(PICKUP, || {
        d.lines()
            .into_iter()
            .find(|l| l.contains(&before) && l.contains("site-control"))
    });
    assert!(warned.is_some(), "no per-port warning:\n{}", d.stderr());
}

#[test]
fn a_vanished_file_keeps_the_old_policy_until_it_returns() {
    let (a, b) = (policy("a.example"), policy("b.example"));
    let file = TempPath::with_contents("vanish.xml", &a);
    let mut d = Daemon::start_local(&["-f", file.as_str(), "--reload-interval", "0.2"]);
    assert_eq!(fetch_policy(d.addr()), served(&a));

    fs::remove_file(file.path()).unwrap();
    let warning = d.expect_line("vanished", PICKUP);
    assert!(warning.contains(" WARN "), "{warning}");
    assert_eq!(fetch_policy(d.addr()), served(&a));

    replace_file(file.path(), &b);
    wait_served(&d, &served(&b));
    d.stop();
}

#[test]
fn reload_interval_0_starts_no_watcher() {
    let file = TempPath::with_contents("noreload.xml", &policy("a.example"));
    let mut d = Daemon::start_local(&[
        "-f",
        file.as_str(),
        "--reload-interval",
        "0",
        "--stats-interval",
        "0.05",
    ]);
    // The stats thread starts after the reloader would have: once it has logged, the
    // watcher's announcement would be there.
    d.expect_line("INFO stats:", PICKUP);
    assert!(!d.stderr().contains("for changes every"), "{}", d.stderr());
    assert_eq!(fetch_policy(d.addr()), served(&policy("a.example")));
    d.stop();
}

#[test]
fn the_default_checks_every_5_seconds() {
    let file = TempPath::with_contents("default.xml", &policy("a.example"));
    let mut d = Daemon::start_local(&["-f", file.as_str()]);
    d.expect_line(
        &format!("INFO checking {} for changes every 5s", file.as_str()),
        READY,
    );
    d.stop();
}

/// A policy path that becomes a FIFO while the daemon runs (issue 22): the reload is
/// refused at once (a logged warning, counted, old policy kept) instead of blocking
/// the reload thread in `open`, and a stop still finishes: last stats written, pid
/// file removed.
#[test]
fn a_policy_replaced_by_a_fifo_is_refused_and_the_stop_still_finishes() {
    let a = policy("a.example");
    let file = TempPath::with_contents("fifo.xml", &a);
    let pid_file = TempPath::new("fifo.pid");
    let stats_file = TempPath::new("fifo.prom");
    let mut d = Daemon::start_local(&[
        "-f",
        file.as_str(),
        "--reload-interval",
        "0.2",
        "--pid-file",
        pid_file.as_str(),
        "--stats-file",
        stats_file.as_str(),
        "--timeout",
        "1",
    ]);
    assert_eq!(fetch_policy(d.addr()), served(&a));

    // Made aside and renamed over the policy: no moment without a file (a vanished
    // file would be counted as a refusal too).
    let fifo = TempPath::new("fifo.new");
    nix::unistd::mkfifo(fifo.path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .expect("mkfifo");
    fs::rename(fifo.path(), file.path()).expect("rename the FIFO over the policy");
    let warning = d.expect_line("is a FIFO, not a regular file", PICKUP);
    assert!(
        warning.contains(" WARN ") && warning.contains("policy reload refused"),
        "{warning}"
    );
    assert!(warning.contains(file.as_str()), "{warning}");
    assert_eq!(fetch_policy(d.addr()), served(&a));

    d.stop();
    assert!(
        !pid_file.exists(),
        "the pid file must be removed at the stop"
    );
    let stats = String::from_utf8(stats_file.read().expect("stats file")).unwrap();
    let failures = stats
        .lines()
        .find(|l| l.starts_with("flashpolicyd_policy_reload_failures_total"))
        .unwrap_or_else(|| panic!("no reload failure counter:\n{stats}"));
    assert!(failures.ends_with(" 1"), "{failures}\n{stats}");
    assert!(
        stats.contains("flashpolicyd_connections_total{outcome=\"served\"} 2"),
        "the last stats must count the served connection:\n{stats}"
    );
}
