//! The pid file for cron and nohup, black-box: a stale file (its process is gone) is
//! taken over with a log line; a file naming a live process makes a second instance
//! exit 1 and leaves the file untouched; a file without a pid is replaced.

#![cfg(unix)]

use crate::support;

use std::time::Duration;

use support::*;

#[test]
fn a_stale_pid_file_is_taken_over_with_a_log_line() {
    let gone = dead_pid();
    let pid_file = TempPath::with_contents("stale.pid", format!("{gone}\n").as_bytes());
    let mut d = Daemon::start_local(&["-a", "*", "--pid-file", pid_file.as_str()]);
    let line = d.expect_line("stale pid file", READY);
    assert!(
        line.contains(&format!(
            "WARN taking over stale pid file {} (process {gone} is gone)",
            pid_file.as_str()
        )),
        "{line}"
    );
    d.expect_line(&format!("wrote pid {}", d.pid()), READY);
    assert_eq!(pid_file.read(), Some(format!("{}\n", d.pid()).into_bytes()));
    fetch_policy(d.addr());
    d.stop();
    assert!(!pid_file.exists(), "removed at a clean stop");
}

#[test]
fn a_pid_file_naming_a_live_process_stops_a_second_instance() {
    // This test process is alive for sure.
    let live = std::process::id();
    let contents = format!("{live}\n").into_bytes();
    let pid_file = TempPath::with_contents("live.pid", &contents);
    let out = run(
        &[
            "-p",
            "0",
            "-b",
            "127.0.0.1",
            "-a",
            "*",
            "--pid-file",
            pid_file.as_str(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 1, "{out:?}");
    let last = out
        .stderr_lines()
        .last()
        .map(|l| l.to_string())
        .unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "flashpolicyd: pid file {} names process {live}, which is running: \
             is flashpolicyd already running?",
            pid_file.as_str()
        )
    );
    assert_eq!(pid_file.read(), Some(contents), "left untouched");
}

#[test]
fn a_pid_file_without_a_pid_is_replaced() {
    let pid_file = TempPath::with_contents("junk.pid", b"not a pid\n");
    let mut d = Daemon::start_local(&["-a", "*", "--pid-file", pid_file.as_str()]);
    d.expect_line("holds no pid: replacing it", READY);
    d.expect_line(&format!("wrote pid {}", d.pid()), READY);
    assert_eq!(pid_file.read(), Some(format!("{}\n", d.pid()).into_bytes()));
    fetch_policy(d.addr());
    d.stop();
}
