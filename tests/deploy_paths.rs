//! Paths are bytes (issue 22): `--file`, `--pid-file`, `--log-file` and `--stats-file`
//! whose names are not UTF-8 are opened under exactly those names, by the daemon and
//! (`--file`) by the checker. Beside each file lies a decoy under its lossy name
//! (U+FFFD for the bad byte): a program that converted the name would use the decoy.

#![cfg(unix)]

mod support;

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::check::CHECK_DEADLINE;
use support::*;

/// `dir/` followed by `name`'s bytes (not UTF-8).
fn raw_path(dir: &TempDir, name: &[u8]) -> PathBuf {
    let mut bytes = dir.0.as_os_str().as_bytes().to_vec();
    bytes.push(b'/');
    bytes.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(bytes))
}

/// The name a lossy conversion would give `path`.
fn lossy(path: &Path) -> PathBuf {
    PathBuf::from(path.to_string_lossy().into_owned())
}

/// `--NAME=` followed by `path`'s bytes, as one argument.
fn joined(flag: &str, path: &Path) -> OsString {
    let mut bytes = format!("{flag}=").into_bytes();
    bytes.extend_from_slice(path.as_os_str().as_bytes());
    OsString::from_vec(bytes)
}

/// Makes a file with a non-UTF-8 name, or says why this file system cannot.
fn can_make(path: &Path, test: &str) -> bool {
    match fs::write(path, b"") {
        Ok(()) => {
            let _ = fs::remove_file(path);
            true
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot create a non-UTF-8 file name: {e}"
            );
            skip(
                test,
                &format!("this file system refuses non-UTF-8 names: {e}"),
            );
            false
        }
    }
}

#[test]
fn the_daemon_opens_non_utf8_paths_under_their_exact_names() {
    let dir = TempDir::new("paths-bytes");
    let policy = raw_path(&dir, b"policy-\xff.xml");
    if !can_make(
        &policy,
        "the_daemon_opens_non_utf8_paths_under_their_exact_names",
    ) {
        return;
    }
    let pid = raw_path(&dir, b"run-\xfe.pid");
    let log = raw_path(&dir, b"log-\xfd.log");
    let stats = raw_path(&dir, b"stats-\xfc.prom");
    fs::write(&policy, POLICY_FILE).unwrap();
    // The decoy policy does not validate: opening it would exit 2.
    fs::write(lossy(&policy), b"not a policy").unwrap();

    let mut cmd = command(&["-p", "0", "-b", "127.0.0.1"]);
    cmd.arg("--file")
        .arg(&policy)
        .arg("--pid-file")
        .arg(&pid)
        // The `--name=VALUE` form too.
        .arg(joined("--log-file", &log))
        .arg("--stats-file")
        .arg(&stats);
    let mut d = Daemon::spawn(cmd);
    // With --log-file the readiness line is in the log file, not on stderr.
    let addr = poll(READY, || {
        let text = fs::read_to_string(&log).ok()?;
        text.lines().find_map(parse_listening)
    })
    .unwrap_or_else(|| panic!("no listening line in the log; stderr:\n{}", d.stderr()));
    assert_eq!(fetch_policy(addr), fixture_reply());
    let written = poll(READY, || fs::read(&pid).ok().filter(|b| !b.is_empty()))
        .expect("pid file written under its exact name");
    assert_eq!(
        String::from_utf8_lossy(&written).trim(),
        d.pid().to_string()
    );
    d.signal("TERM");
    d.expect_exit(0, EXIT);
    let stats_text = fs::read_to_string(&stats).expect("stats file under its exact name");
    assert!(
        stats_text.contains("flashpolicyd_connections_total"),
        "{stats_text}"
    );
    assert!(!pid.exists(), "pid file removed at the stop");
    for name in [&pid, &log, &stats] {
        assert!(!lossy(name).exists(), "{} was used", lossy(name).display());
    }
}

#[test]
fn a_missing_non_utf8_file_is_named_lossily_in_the_error() {
    let dir = TempDir::new("paths-missing");
    let policy = raw_path(&dir, b"gone-\xff.xml");
    if !can_make(
        &policy,
        "a_missing_non_utf8_file_is_named_lossily_in_the_error",
    ) {
        return;
    }
    let mut cmd = command(&["--check-config"]);
    cmd.arg("--file").arg(&policy);
    let out = run_cmd(cmd, EXIT);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains(&*policy.to_string_lossy()),
        "{}",
        out.stderr
    );
}

#[test]
fn the_checker_reads_a_non_utf8_file_under_its_exact_name() {
    let dir = TempDir::new("paths-check");
    let policy = raw_path(&dir, b"policy-\xff.xml");
    if !can_make(
        &policy,
        "the_checker_reads_a_non_utf8_file_under_its_exact_name",
    ) {
        return;
    }
    fs::write(&policy, POLICY_FILE).unwrap();
    fs::write(lossy(&policy), b"not a policy").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashpolicy-check"));
    cmd.arg("--file").arg(&policy);
    let out = run_cmd(cmd, CHECK_DEADLINE);
    let stdout = out.stdout_text();
    assert_eq!(out.code(), 0, "{stdout}");
    assert!(stdout.starts_with("FLASHPOLICY OK"), "{stdout}");
    // Shown lossily in its messages.
    assert!(stdout.contains(&*policy.to_string_lossy()), "{stdout}");
}
