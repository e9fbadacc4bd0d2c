//! The daemon's life, black-box: stop on SIGTERM/SIGINT/SIGHUP with the counters logged,
//! SIGHUP ignored under nohup, in-flight connections finished at stop, a second instance
//! on a busy port, the unprivileged-port hint, the pid file, the log file and its format,
//! per-connection debug lines, the -q / RUST_LOG level controls, and the scheduling
//! policy of the serving threads (Linux).

use crate::support;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;

fn assert_policy(addr: SocketAddr) {
    let got = fetch_policy(addr);
    assert!(got == fixture_reply(), "served {}", show(&got));
}

/// Polls a pid file until it holds `pid` and a newline.
fn wait_pid_file(pid_file: &TempPath, pid: u32) {
    let want = format!("{pid}\n").into_bytes();
    let got = poll(Duration::from_secs(5), || {
        pid_file.read().filter(|c| *c == want)
    });
    assert!(
        got.is_some(),
        "pid file {} should contain {:?}, has {:?}",
        pid_file.as_str(),
        format!("{pid}\n"),
        pid_file
            .read()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
    );
}

// ---------------------------------------------------------------------------------------
// Stop signals

/// Starts a daemon with a pid file, serves one client, sends `signal`, expects a clean
/// stop: exit 0, counters logged, pid file removed.
fn clean_stop_on(signal: &str) {
    let pid_file = TempPath::new("stop.pid");
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "--pid-file", pid_file.as_str()]);
    wait_pid_file(&pid_file, d.pid());
    assert_policy(d.addr());

    d.signal(signal);
    d.expect_exit(0, EXIT);
    let stopped = d.expect_line("stopped:", Duration::from_secs(2));
    assert!(
        stopped.contains(" INFO "),
        "stopped line must be info: {stopped:?}"
    );
    assert_counters(
        &stopped,
        &[
            ("served", 1),
            ("rejected", 0),
            ("timed_out", 0),
            ("io_errors", 0),
            ("overflow", 0),
            ("fd_exhausted", 0),
        ],
    );
    assert!(
        !pid_file.exists(),
        "pid file {} must be removed at a clean stop (SIG{signal})",
        pid_file.as_str()
    );
    assert!(!d.stderr().contains("panicked"), "stderr:\n{}", d.stderr());
}

#[test]
fn sigterm_stops_cleanly() {
    clean_stop_on("TERM");
}

#[test]
fn sigint_stops_cleanly() {
    clean_stop_on("INT");
}

#[test]
fn sighup_stops_cleanly_when_not_under_nohup() {
    if sighup_ignored_here() {
        // The daemon would inherit SIG_IGN and rightly treat itself as under nohup.
        return skip(
            "sighup_stops_cleanly_when_not_under_nohup",
            "the test process ignores SIGHUP (run under nohup?)",
        );
    }
    clean_stop_on("HUP");
}

#[test]
fn sighup_is_ignored_under_nohup() {
    let file = fixture("policy.xml");
    let args = ["-p", "0", "-b", "127.0.0.1", "-f", &file];
    let wrappers: [&[&str]; 2] = [
        &["nohup"],
        // Same thing without nohup's own behaviour: HUP ignored, then exec.
        &["sh", "-c", "trap '' HUP; exec \"$0\" \"$@\""],
    ];
    for wrapper in wrappers {
        let mut d = Daemon::start_cmd(command_via(wrapper, &args), 1);
        assert_policy(d.addr());
        d.signal("HUP");
        d.expect_alive_for(Duration::from_millis(500));
        assert_policy(d.addr()); // still serving after the hangup
        assert!(
            d.wait_for_line("stopped:", Duration::from_millis(1))
                .is_none(),
            "under {wrapper:?} SIGHUP must not stop the daemon:\n{}",
            d.stderr()
        );
        let stopped = d.stop();
        assert_counters(&stopped, &[("served", 2)]);
    }
}

#[test]
fn stop_finishes_the_connection_in_flight() {
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "-t", "3"]);
    let mut s = connect(d.addr());
    s.write_all(b"<policy-file-").unwrap();
    // Make sure the daemon has the connection before the signal: a second, complete
    // client is served only after the accept loop has taken the first one.
    assert_policy(d.addr());

    d.signal("TERM");
    // The daemon must wait for the client in flight (bounded by its 3 s deadline).
    d.expect_alive_for(Duration::from_millis(300));
    s.write_all(&REQUEST[13..]).expect("finish the request");
    let r = read_to_end(&mut s);
    assert!(
        r.bytes == fixture_reply(),
        "in-flight client must be served after the stop signal, got {} ({:?})",
        show(&r.bytes),
        r.end
    );
    assert_eq!(r.end, End::Eof, "{r:?}");
    d.expect_exit(0, EXIT);
    let stopped = d.expect_line("stopped:", Duration::from_secs(2));
    assert_counters(&stopped, &[("served", 2), ("timed_out", 0)]);
}

#[test]
fn stop_is_bounded_by_the_deadline_of_a_stalled_client() {
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "-t", "1"]);
    let mut s = connect(d.addr());
    s.write_all(b"<policy").unwrap();
    assert_policy(d.addr()); // the accept loop has taken the stalled client too
    let start = Instant::now();
    d.signal("TERM");
    d.expect_exit(0, EXIT);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stop took {:?} with a 1 s deadline",
        start.elapsed()
    );
    let r = read_to_end(&mut s);
    assert!(r.bytes.is_empty(), "stalled client got {}", show(&r.bytes));
    let stopped = d.expect_line("stopped:", Duration::from_secs(2));
    assert_counters(&stopped, &[("served", 1), ("timed_out", 1)]);
}

// ---------------------------------------------------------------------------------------
// Second instance, privileged port

#[test]
fn second_instance_on_a_busy_port_exits_1_and_leaves_the_first_alone() {
    let pid_file = TempPath::new("first.pid");
    let file = fixture("policy.xml");
    let mut first = Daemon::start_local(&["-f", &file, "--pid-file", pid_file.as_str()]);
    wait_pid_file(&pid_file, first.pid());
    let port = first.port().to_string();

    let start = Instant::now();
    let out = run(
        &[
            "-p",
            &port,
            "-b",
            "127.0.0.1",
            "-f",
            &file,
            "--pid-file",
            pid_file.as_str(),
        ],
        Duration::from_secs(10),
    );
    assert_no_panic(&out);
    assert_eq!(
        out.code(),
        1,
        "second instance must exit 1; stderr:\n{}",
        out.stderr
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "second instance must fail at once, took {:?}",
        start.elapsed()
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(&addr) && l.contains("in use")),
        "stderr must name {addr} and say `in use`:\n{}",
        out.stderr
    );

    // The first instance: still running, still serving, pid file unchanged.
    first.expect_alive_for(Duration::from_millis(100));
    assert_policy(first.addr());
    assert_eq!(
        pid_file.read(),
        Some(format!("{}\n", first.pid()).into_bytes()),
        "the first instance's pid file must be untouched"
    );
    first.stop();
    assert!(!pid_file.exists());
}

#[test]
fn unprivileged_bind_of_843_fails_with_a_setcap_hint() {
    let name = "unprivileged_bind_of_843_fails_with_a_setcap_hint";
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1024);
    if start <= 843 {
        return skip(
            name,
            "net.ipv4.ip_unprivileged_port_start lets anyone bind 843",
        );
    }
    let args = ["-p", "843", "-b", "127.0.0.1"];
    let cmd = if is_root() {
        // As root, drop to nobody (which also drops every capability) if we can.
        let probe = run_cmd(
            command_via(
                &[
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                ],
                &["--version"],
            ),
            Duration::from_secs(5),
        );
        if !probe.status.success() {
            return skip(
                name,
                "running as root and cannot drop to uid 65534 with setpriv",
            );
        }
        command_via(
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ],
            &args,
        )
    } else {
        command(&args)
    };
    let out = run_cmd(cmd, Duration::from_secs(5));
    assert_no_panic(&out);
    assert_eq!(
        out.code(),
        1,
        "binding 843 unprivileged is a runtime failure:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("setcap"),
        "stderr must hint at setcap:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("843"),
        "stderr must name the port:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// Log file, log format, levels, per-connection lines

#[test]
fn log_file_gets_the_lines_in_append_mode() {
    let log = TempPath::with_contents("daemon.log", b"previous content\n");
    let file = fixture("policy.xml");
    let mut d = Daemon::spawn(command(&[
        "-p",
        "0",
        "-b",
        "127.0.0.1",
        "-f",
        &file,
        "--log-file",
        log.as_str(),
    ]));
    let addr = poll(READY, || {
        let text = String::from_utf8_lossy(&log.read()?).into_owned();
        text.lines().find_map(parse_listening)
    })
    .unwrap_or_else(|| {
        panic!(
            "no `listening on` in the log file; file: {:?}; stderr:\n{}",
            log.read().map(|c| String::from_utf8_lossy(&c).into_owned()),
            d.stderr()
        )
    });
    assert_policy(addr);
    d.signal("TERM");
    d.expect_exit(0, EXIT);

    let text = String::from_utf8(log.read().expect("log file")).expect("UTF-8 log");
    assert!(
        text.starts_with("previous content\n"),
        "the log file must be appended to, not truncated:\n{text}"
    );
    let stopped = text
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("no stopped: line in the log file:\n{text}"));
    assert_counters(stopped, &[("served", 1), ("rejected", 0), ("timed_out", 0)]);
    assert!(
        !d.stderr().contains("listening on"),
        "with --log-file the log lines go to the file, not stderr:\n{}",
        d.stderr()
    );
}

/// True if `ts` looks like an RFC 3339 UTC timestamp: `2026-11-21T15:07:10[.123]Z`.
fn is_rfc3339_utc(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |mut r: std::ops::Range<usize>| r.all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20 || !ts.ends_with('Z') {
        return false;
    }
    let head = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let frac = &ts[19..ts.len() - 1];
    head && (frac.is_empty()
        || (frac.len() >= 2
            && frac.starts_with('.')
            && frac[1..].bytes().all(|c| c.is_ascii_digit())))
}

#[test]
fn log_lines_have_timestamp_level_message() {
    let file = fixture("policy.xml");
    let d = Daemon::start_local(&["-f", &file]);
    let line = d.expect_line("listening on", Duration::from_secs(1));
    let mut parts = line.splitn(3, ' ');
    let (ts, level, msg) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    assert!(
        is_rfc3339_utc(ts),
        "timestamp {ts:?} is not RFC 3339 UTC in {line:?}"
    );
    assert_eq!(level, "INFO", "level in {line:?}");
    assert!(
        msg.starts_with(&format!("listening on {}", d.addr())),
        "message in {line:?}"
    );
}

#[test]
fn counters_and_per_connection_debug_lines() {
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "-t", "0.5", "-v"]);
    let addr = d.addr();

    // Served.
    let mut s = connect(addr);
    let served_peer = s.local_addr().unwrap().to_string();
    s.write_all(REQUEST).unwrap();
    let r = read_to_end(&mut s);
    assert!(r.bytes == fixture_reply() && r.end == End::Eof, "{r:?}");

    // Rejected.
    let mut s = connect(addr);
    let rejected_peer = s.local_addr().unwrap().to_string();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let r = read_to_end(&mut s);
    assert!(
        r.bytes.is_empty() && matches!(r.end, End::Eof | End::Reset),
        "{r:?}"
    );

    // Timed out: part of the request, then silence.
    let mut s = connect(addr);
    let stalled_peer = s.local_addr().unwrap().to_string();
    s.write_all(b"<policy").unwrap();
    let r = read_to_end(&mut s);
    assert!(
        r.bytes.is_empty() && matches!(r.end, End::Eof | End::Reset),
        "{r:?}"
    );

    // Empty: silent until the deadline (a TCP health check).
    let mut s = connect(addr);
    let idle_peer = s.local_addr().unwrap().to_string();
    let r = read_to_end(&mut s);
    assert!(
        r.bytes.is_empty() && matches!(r.end, End::Eof | End::Reset),
        "{r:?}"
    );

    for (peer, word) in [
        (&served_peer, "served"),
        (&rejected_peer, "rejected"),
        (&stalled_peer, "timed out"),
        (&idle_peer, "empty"),
    ] {
        let found = poll(READY, || {
            d.lines()
                .into_iter()
                .find(|l| l.contains(peer.as_str()) && l.contains(word))
        });
        let found = found.unwrap_or_else(|| {
            panic!(
                "no debug line with peer {peer} and {word:?}:\n{}",
                d.stderr()
            )
        });
        assert!(
            found.contains(" DEBUG "),
            "per-connection line must be debug: {found:?}"
        );
    }

    let stopped = d.stop();
    assert_counters(
        &stopped,
        &[
            ("served", 1),
            ("rejected", 1),
            ("empty", 1),
            ("timed_out", 1),
            ("io_errors", 0),
            ("overflow", 0),
            ("fd_exhausted", 0),
        ],
    );
}

#[test]
fn no_per_connection_lines_at_the_default_level() {
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file]);
    let mut s = connect(d.addr());
    let peer = s.local_addr().unwrap().to_string();
    s.write_all(REQUEST).unwrap();
    let _ = read_to_end(&mut s);
    d.stop();
    assert!(
        !d.lines().iter().any(|l| l.contains(&peer)),
        "per-connection lines are debug only:\n{}",
        d.stderr()
    );
}

#[test]
#[cfg(unix)]
fn quiet_shows_warnings_only() {
    // -q hides `listening on`, so the test binds the listener and hands it over as
    // systemd would: it knows the port, and nobody else can take it.
    let (fd3, addr) = loopback_listener();
    let mut d = Daemon::spawn(activated(fd3, &["-q"]));
    let served = poll(READY, || try_fetch(addr, REQUEST));
    let served = served.unwrap_or_else(|| panic!("quiet daemon never served:\n{}", d.stderr()));
    assert_one_trailing_nul(&served.bytes);
    d.signal("TERM");
    d.expect_exit(0, EXIT);
    let text = d.stderr();
    assert!(
        !text.contains("listening on") && !text.contains("stopped:"),
        "-q must hide info lines:\n{text}"
    );
    assert!(
        d.lines()
            .iter()
            .any(|l| l.contains(" WARN ") && is_permissive_warning(l)),
        "-q must still show the permissive-default warning:\n{text}"
    );
}

#[test]
#[cfg(unix)]
fn rust_log_wins_over_quiet_and_verbose() {
    let file = fixture("policy.xml");
    // RUST_LOG=info with -q: info lines appear.
    let mut cmd = command(&["-p", "0", "-b", "127.0.0.1", "-f", &file, "-q"]);
    cmd.env("RUST_LOG", "info");
    let mut d = Daemon::start_cmd(cmd, 1);
    d.stop();

    // RUST_LOG=debug with no -v: per-connection lines appear.
    let mut cmd = command(&["-p", "0", "-b", "127.0.0.1", "-f", &file]);
    cmd.env("RUST_LOG", "debug");
    let mut d = Daemon::start_cmd(cmd, 1);
    let mut s = connect(d.addr());
    let peer = s.local_addr().unwrap().to_string();
    s.write_all(REQUEST).unwrap();
    let _ = read_to_end(&mut s);
    d.expect_line(&peer, READY);
    d.stop();

    // RUST_LOG=warn with -v: no info lines. They would name the port, so the test
    // hands the daemon a listener it bound (as systemd would).
    let (fd3, addr) = loopback_listener();
    let mut cmd = activated(fd3, &["-f", &file, "-v"]);
    cmd.env("RUST_LOG", "warn");
    let mut d = Daemon::spawn(cmd);
    let served = poll(READY, || try_fetch(addr, REQUEST));
    let served = served.unwrap_or_else(|| panic!("daemon never served:\n{}", d.stderr()));
    assert!(
        served.bytes == fixture_reply(),
        "served {}",
        show(&served.bytes)
    );
    d.signal("TERM");
    d.expect_exit(0, EXIT);
    assert!(
        !d.stderr().contains("listening on"),
        "RUST_LOG=warn must win over -v:\n{}",
        d.stderr()
    );
}

#[test]
fn pid_file_holds_the_pid_and_is_removed_at_stop() {
    let pid_file = TempPath::new("daemon.pid");
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "--pid-file", pid_file.as_str()]);
    wait_pid_file(&pid_file, d.pid());
    d.stop();
    assert!(
        !pid_file.exists(),
        "pid file must be removed at a clean stop"
    );
}

/// The scheduling policy (field 41 of /proc/PID/task/TID/stat) of each thread of `pid`
/// whose name starts with `prefix`.
#[cfg(target_os = "linux")]
fn thread_policies(pid: u32, prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read the task list");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the ")" that closes the name start at field 3.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(policy) = after.split_whitespace().nth(41 - 3) {
            out.push(policy.parse().expect("numeric policy"));
        }
    }
    out
}

#[cfg(target_os = "linux")]
const SCHED_BATCH: u32 = 3;
#[cfg(target_os = "linux")]
const SCHED_IDLE: u32 = 5;

#[cfg(target_os = "linux")]
#[test]
fn serving_threads_run_under_sched_batch() {
    let mut d = Daemon::start_local(&["--workers", "3"]);
    fetch_policy(d.addr());
    // A thread names itself when it first runs: wait (bounded) until the three workers,
    // an accept thread and the gate have (on a loaded machine the gate may run last).
    let prefixes = ["policy-worker", "accept-", "readiness-gate"];
    let named = |pid| {
        thread_policies(pid, "policy-worker").len() == 3
            && prefixes.iter().all(|p| !thread_policies(pid, p).is_empty())
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !named(d.pid()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10)); // polling, bounded by `end`
    }
    for prefix in prefixes {
        let got = thread_policies(d.pid(), prefix);
        assert!(!got.is_empty(), "no {prefix} thread found");
        assert!(
            got.iter().all(|&p| p == SCHED_BATCH),
            "{prefix} threads have policies {got:?}, want SCHED_BATCH ({SCHED_BATCH})"
        );
    }
    assert_eq!(thread_policies(d.pid(), "policy-worker").len(), 3);
    d.stop();
}

#[cfg(target_os = "linux")]
#[test]
fn a_policy_chosen_by_the_operator_is_kept() {
    if std::process::Command::new("chrt")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "a_policy_chosen_by_the_operator_is_kept",
            "chrt (util-linux) is not installed",
        );
        return;
    }
    let cmd = command_via(&["chrt", "--idle", "0"], &["-p", "0", "-b", "127.0.0.1"]);
    let mut d = Daemon::start_cmd(cmd, 1);
    fetch_policy(d.addr());
    let got = thread_policies(d.pid(), "policy-worker");
    assert!(!got.is_empty(), "no worker thread found");
    assert!(
        got.iter().all(|&p| p == SCHED_IDLE),
        "workers have policies {got:?}, want the SCHED_IDLE ({SCHED_IDLE}) they were started with"
    );
    d.stop();
}
