//! Logs for long-running deployments, black-box: `--stats-interval` logs the counters
//! periodically; the periodic threads stop at once at shutdown; `--log-file` follows
//! logrotate (a moved or removed file is reopened at the path; `copytruncate` works
//! too).

#![cfg(unix)]

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

/// Generous bound for a line to show up (the intervals used are 0.2 s or less).
const SHOW_UP: Duration = Duration::from_secs(5);

#[test]
fn stats_interval_logs_the_counters_periodically() {
    let mut d = Daemon::start_local(&["-a", "*", "--stats-interval", "0.2"]);
    let first = d.expect_line("INFO stats: ", SHOW_UP);
    assert!(first.contains("stats: served=0 "), "{first}");
    fetch_policy(d.addr());
    let later = d.expect_line("stats: served=1 ", SHOW_UP);
    assert!(later.contains(" INFO "), "{later}");
    for name in [
        "rejected=",
        "timed_out=",
        "io_errors=",
        "overflow=",
        "fd_exhausted=",
    ] {
        assert!(later.contains(name), "{later}");
    }
    d.stop();
}

#[test]
fn periodic_threads_stop_at_once_at_shutdown() {
    let file = TempPath::with_contents(
        "prompt.xml",
        b"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"843\"/></cross-domain-policy>",
    );
    // Hour-long intervals: a thread sleeping through its interval would hold the stop.
    let mut d = Daemon::start_local(&[
        "-f",
        file.as_str(),
        "--reload-interval",
        "3600",
        "--stats-interval",
        "3600",
    ]);
    d.expect_line("for changes every 3600s", READY);
    fetch_policy(d.addr());
    let start = Instant::now();
    d.signal("TERM");
    d.expect_exit(0, EXIT);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "stop took {took:?}; stderr:\n{}",
        d.stderr()
    );
}

/// Counts the lines of the log at `path` that report a served connection.
/// What the one debug line of a served connection holds ("PEER served N bytes in T"),
/// and no start-up warning does.
const SERVED: &str = " bytes in ";

fn served_lines(path: &std::path::Path) -> usize {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(SERVED))
        .count()
}

#[test]
fn a_moved_log_file_is_reopened_at_its_path() {
    let log = TempPath::new("rotate.log");
    let rotated = PathBuf::from(format!("{}.1", log.as_str()));
    let _cleanup = Rotated(rotated.clone());
    let mut d = Daemon::spawn(command(&[
        "-p",
        "0",
        "-b",
        "127.0.0.1",
        "-a",
        "*",
        "-v",
        "--log-file",
        log.as_str(),
    ]));
    // With --log-file the readiness line is in the file, not on stderr.
    let text = wait_file_contains(log.path(), "listening on ", READY).expect("listening line");
    let addr = text.lines().find_map(parse_listening).expect("an address");
    fetch_policy(addr);
    wait_file_contains(log.path(), SERVED, SHOW_UP).expect("first served line");

    // logrotate's default: rename, then (without copytruncate) expect a new file.
    fs::rename(log.path(), &rotated).unwrap();
    fetch_policy(addr);
    let fresh = wait_file_contains(log.path(), SERVED, SHOW_UP)
        .unwrap_or_else(|| panic!("no new {} after the move", log.as_str()));
    assert!(fresh.starts_with("20"), "{fresh}");
    assert_eq!(
        served_lines(&rotated),
        1,
        "the moved file keeps the old line"
    );
    assert_eq!(
        served_lines(log.path()),
        1,
        "the new file gets the new line"
    );

    // Removed outright: recreated too.
    fs::remove_file(log.path()).unwrap();
    fetch_policy(addr);
    wait_file_contains(log.path(), SERVED, SHOW_UP).expect("recreated after rm");

    d.signal("TERM");
    d.expect_exit(0, EXIT);
    wait_file_contains(log.path(), "stopped: served=3", SHOW_UP).expect("stop line");
}

#[test]
fn copytruncate_works_too() {
    let log = TempPath::new("truncate.log");
    let mut d = Daemon::spawn(command(&[
        "-p",
        "0",
        "-b",
        "127.0.0.1",
        "-a",
        "*",
        "-v",
        "--log-file",
        log.as_str(),
    ]));
    let text = wait_file_contains(log.path(), "listening on ", READY).expect("listening line");
    let addr = text.lines().find_map(parse_listening).expect("an address");

    // What copytruncate does after copying: truncate in place.
    fs::OpenOptions::new()
        .write(true)
        .open(log.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    fetch_policy(addr);
    let after = wait_file_contains(log.path(), SERVED, SHOW_UP).expect("served line");
    // Append mode writes at the new end: no hole of NULs before the line.
    assert!(
        after.starts_with("20"),
        "{:?}",
        &after[..after.len().min(40)]
    );
    assert!(!after.contains('\0'));
    d.signal("TERM");
    d.expect_exit(0, EXIT);
}

/// Removes the rotated file at the end of the test.
struct Rotated(PathBuf);

impl Drop for Rotated {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
