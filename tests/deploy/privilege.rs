//! `--user` and `--group`, black-box: a daemon started as root drops to nobody's uid,
//! gid and groups (read back from /proc) and still serves; unknown names exit 2; a
//! non-root daemon cannot switch (exit 1) unless it already is that user; the pid
//! file written as root stays (with a warning) when the dropped daemon cannot remove it;
//! the `--stats-file` is written as the user dropped to.
//! The tests that start the binary as nobody start a copy nobody can reach
//! ([`SharedBin`]): the checkout may be in a directory only root can enter.

#![cfg(unix)]

use crate::support;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use support::*;

/// nobody's uid and gid, or a visible skip when the test cannot run here.
fn nobody_as_root(test: &str) -> Option<(u32, u32)> {
    if !is_root() {
        skip(test, "needs root to drop privileges");
        return None;
    }
    let ids = passwd_ids("nobody");
    if ids.is_none() {
        skip(test, "no user nobody in /etc/passwd");
    }
    ids
}

/// A copy of the binary nobody can execute (the checkout may be in a mode-700
/// directory), or a visible skip.
fn shared_bin(test: &str) -> Option<SharedBin> {
    SharedBin::new()
        .map_err(|why| {
            skip(
                test,
                &format!("no copy of the binary nobody can run: {why}"),
            )
        })
        .ok()
}

#[test]
fn drops_to_nobody_uid_gid_and_groups_and_still_serves() {
    let Some((uid, gid)) = nobody_as_root("drops_to_nobody") else {
        return;
    };
    let file = fixture("policy.xml");
    let mut d = Daemon::start_local(&["-f", &file, "--user", "nobody"]);
    let groups = expected_groups("nobody", gid);
    let groups_text: Vec<String> = groups.iter().map(u32::to_string).collect();
    d.expect_line(
        &format!(
            "INFO running as nobody (uid {uid}, gid {gid}, groups {})",
            groups_text.join(",")
        ),
        READY,
    );

    let (uids, gids, held) = proc_ids(d.pid());
    assert_eq!(uids, vec![uid; 4], "Uid: real, effective, saved, fs");
    assert_eq!(gids, vec![gid; 4], "Gid: real, effective, saved, fs");
    assert_eq!(held, groups, "Groups:");

    assert_eq!(fetch_policy(d.addr()), fixture_reply());
    d.stop();
}

#[test]
fn group_flag_sets_the_primary_group() {
    let Some((uid, _)) = nobody_as_root("group_flag") else {
        return;
    };
    let Some(daemon_gid) = group_gid("daemon") else {
        skip("group_flag", "no group daemon in /etc/group");
        return;
    };
    let mut d = Daemon::start_local(&["-a", "*:843", "--user", "nobody", "--group", "daemon"]);
    d.expect_line("running as nobody", READY);
    let (uids, gids, held) = proc_ids(d.pid());
    assert_eq!(uids, vec![uid; 4]);
    assert_eq!(gids, vec![daemon_gid; 4]);
    assert_eq!(held, expected_groups("nobody", daemon_gid));
    assert_eq!(fetch_policy(d.addr()).last(), Some(&0));
    d.stop();
}

#[test]
fn unknown_user_exits_2_naming_it() {
    let out = run(
        &["-p", "0", "-b", "127.0.0.1", "--user", "nosuchuser"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(
        out.stderr_lines(),
        vec!["flashpolicyd: unknown user \"nosuchuser\""]
    );
    assert_no_panic(&out);
}

#[test]
fn unknown_group_exits_2_naming_it() {
    let out = run(
        &["-p", "0", "--user", "root", "--group", "nosuchgroup"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(
        out.stderr_lines(),
        vec!["flashpolicyd: unknown group \"nosuchgroup\""]
    );
}

#[test]
fn group_without_user_is_a_usage_error() {
    let out = run(&["--group", "daemon"], Duration::from_secs(10));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("--group needs --user"), "{out:?}");
}

#[test]
fn check_config_shows_the_user_it_would_run_as() {
    let Some((uid, gid)) = passwd_ids("nobody") else {
        skip("check_config_user", "no user nobody");
        return;
    };
    let out = run(
        &["--check-config", "-a", "*:843", "--user", "nobody"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("would run as nobody (uid {uid}, gid {gid}")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_non_root_daemon_cannot_switch_to_another_user() {
    let Some((uid, gid)) = nobody_as_root("non_root_switch") else {
        return;
    };
    let Some(bin) = shared_bin("non_root_switch") else {
        return;
    };
    let mut cmd = bin.command(&["-p", "0", "-b", "127.0.0.1", "-a", "*", "--user", "root"]);
    cmd.uid(uid).gid(gid);
    let out = run_cmd(cmd, Duration::from_secs(10));
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        out.stderr_lines(),
        vec!["flashpolicyd: cannot switch to user \"root\": not running as root"]
    );
}

#[test]
fn a_non_root_daemon_already_that_user_runs() {
    let Some((uid, gid)) = nobody_as_root("already_that_user") else {
        return;
    };
    let Some(bin) = shared_bin("already_that_user") else {
        return;
    };
    let mut cmd = bin.command(&["-p", "0", "-b", "127.0.0.1", "-a", "*", "--user", "nobody"]);
    cmd.uid(uid).gid(gid);
    let mut d = Daemon::start_cmd(cmd, 1);
    d.expect_line("already running as nobody", READY);
    assert_eq!(fetch_policy(d.addr()).last(), Some(&0));
    d.stop();
}

/// Decision: the pid file is written as root before the drop and stays root's; the
/// dropped daemon cannot remove it from a directory it cannot write (here root's
/// mode-755 directory): a warning, exit 0, and the next start takes the stale file over.
#[test]
fn pid_file_written_before_the_drop_stays_with_a_warning() {
    if nobody_as_root("pid_file_after_drop").is_none() {
        return;
    }
    // nobody must be able to read the file (to see it is still its own) and not to
    // delete it; a private temp directory would hide it from nobody altogether.
    let dir = match SharedDir::new() {
        Ok(dir) => dir,
        Err(why) => {
            return skip(
                "pid_file_after_drop",
                &format!("no directory nobody can enter: {why}"),
            )
        }
    };
    let pid_path = dir.join("dropped.pid");
    let pid_file = pid_path.to_str().expect("temp path is UTF-8");
    let read = || std::fs::read(&pid_path).ok();
    let mut d = Daemon::start_local(&["-a", "*", "--user", "nobody", "--pid-file", pid_file]);
    d.expect_line("running as nobody", READY);
    assert_eq!(read(), Some(format!("{}\n", d.pid()).into_bytes()));
    let first_pid = d.pid();
    // A reply means the accept threads run, so the stop handler is in place.
    assert_eq!(fetch_policy(d.addr()).last(), Some(&0));
    d.stop();
    d.expect_line("WARN cannot remove pid file", Duration::from_secs(2));
    assert_eq!(read(), Some(format!("{first_pid}\n").into_bytes()));

    let mut again = Daemon::start_local(&["-a", "*", "--pid-file", pid_file]);
    again.expect_line(
        &format!(
            "taking over stale pid file {} (process {first_pid} is gone)",
            pid_file
        ),
        READY,
    );
    assert_eq!(fetch_policy(again.addr()).last(), Some(&0));
    again.stop();
    assert!(!pid_path.exists());
}

#[test]
fn the_stats_file_is_written_as_the_user_dropped_to() {
    let Some((uid, gid)) = nobody_as_root("stats_file_as_nobody") else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    // Inside a directory nobody can enter: a private temp directory would hide it.
    let shared = match SharedDir::new() {
        Ok(shared) => shared,
        Err(why) => {
            return skip(
                "stats_file_as_nobody",
                &format!("no directory nobody can enter: {why}"),
            )
        }
    };
    let dir = shared.join("stats-nobody");
    std::fs::create_dir(&dir).expect("create the stats directory");
    let prom = dir.join("flashpolicyd.prom");
    let prom = prom.to_str().expect("temp path is UTF-8").to_string();
    // A directory only root may write in: root could, nobody cannot.
    let out = run(
        &[
            "-p",
            "0",
            "-b",
            "127.0.0.1",
            "--user",
            "nobody",
            "--stats-file",
            &prom,
        ],
        Duration::from_secs(10),
    );
    assert_stats_file_refused(&out, &prom);
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);

    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the directory");
    let mut d = Daemon::start_local(&["--user", "nobody", "--stats-file", &prom]);
    let meta = std::fs::metadata(&prom).expect("the stats file exists once listening");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid, gid),
        "written after the drop"
    );
    d.stop();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("flashpolicyd_connections_total{outcome=\"served\"} 0\n"),
        "{text}"
    );
}
