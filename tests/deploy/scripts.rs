//! The deployment scripts, run the way an operator runs them: `scripts/flashpolicyd-cron`
//! (runs in a row and at once, with either lock; a daemon killed with SIGKILL, which
//! leaves its pid file behind, is replaced) and `scripts/init.d/flashpolicyd` (start,
//! status, stop, with and without start-stop-daemon).
//!
//! Each test works in its own temporary directory with a daemon on 127.0.0.1 port 0
//! (the port is read from the daemon's log). Daemons are found through /proc by their
//! command line, which names the test's own pid file, and killed when the sandbox is
//! dropped, even when the test fails.

#![cfg(unix)]

use crate::support;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use support::{fetch_policy, parse_listening, poll, run_cmd, skip, Output, BIN};

const CRON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/flashpolicyd-cron");
const INIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/init.d/flashpolicyd");

/// Bounds one script run (the scripts themselves wait at most START_WAIT for a start,
/// STOP_WAIT + 5 s for a stop).
const SCRIPT: Duration = Duration::from_secs(30);
/// START_WAIT given to the scripts: far above what a daemon on loopback needs.
const START_WAIT: &str = "10";

const POLICY: &[u8] = b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
    <allow-access-from domain=\"*.example.com\" to-ports=\"843,9000\"/>\n\
    </cross-domain-policy>\n";

/// Settings the scripts read from the environment; removed from every run so that the
/// caller's environment cannot leak in.
const SETTINGS: &[&str] = &[
    "FLASHPOLICYD",
    "FLASHPOLICYD_ARGS",
    "PIDFILE",
    "LOGFILE",
    "LOCKFILE",
    "LOCK_METHOD",
    "START_WAIT",
    "STOP_WAIT",
    "SYSLOG",
    "USE_START_STOP_DAEMON",
    "RUST_LOG",
];

/// A temporary directory holding a policy, the pid and log files, and every daemon
/// started with them.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "flashpolicyd-deploy-{}-{tag}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create the sandbox directory");
        fs::write(dir.join("policy.xml"), POLICY).expect("write the policy");
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn pid_file(&self) -> PathBuf {
        self.path("flashpolicyd.pid")
    }

    fn log_file(&self) -> PathBuf {
        self.path("flashpolicyd.log")
    }

    fn daemon_args(&self, policy: &Path) -> String {
        format!("-p 0 -b 127.0.0.1 --file {}", policy.display())
    }

    /// `sh SCRIPT ARGS` with the settings in the environment (no config file).
    fn script(&self, script: &str, args: &[&str]) -> Command {
        let mut cmd = self.bare_script(script, args);
        cmd.env("FLASHPOLICYD_CONFIG", "")
            .env("FLASHPOLICYD", BIN)
            .env(
                "FLASHPOLICYD_ARGS",
                self.daemon_args(&self.path("policy.xml")),
            )
            .env("PIDFILE", self.pid_file())
            .env("LOGFILE", self.log_file())
            .env("START_WAIT", START_WAIT);
        cmd
    }

    /// `sh SCRIPT ARGS` reading its settings from a config file in the sandbox.
    fn script_with_config(&self, script: &str, args: &[&str]) -> Command {
        let conf = self.path("flashpolicyd.conf");
        let text = format!(
            "# written by tests/deploy/scripts.rs\nFLASHPOLICYD='{BIN}'\n\
             FLASHPOLICYD_ARGS='{}'\nPIDFILE='{}'\nLOGFILE='{}'\nSTART_WAIT={START_WAIT}\n",
            self.daemon_args(&self.path("policy.xml")),
            self.pid_file().display(),
            self.log_file().display(),
        );
        // Atomically (temporary file, then rename): concurrent runs may be reading it.
        let tmp = self.path(&format!(
            "flashpolicyd.conf.{:?}",
            std::thread::current().id()
        ));
        fs::write(&tmp, text).expect("write the config file");
        fs::rename(&tmp, &conf).expect("rename the config file");
        let mut cmd = self.bare_script(script, args);
        cmd.env("FLASHPOLICYD_CONFIG", &conf);
        cmd
    }

    fn bare_script(&self, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg(script).args(args).stdin(Stdio::null());
        for v in SETTINGS {
            cmd.env_remove(v);
        }
        cmd
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// The pid recorded in the pid file.
    fn recorded_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every live (not zombie) process running the daemon binary with this sandbox's
    /// pid file on its command line.
    fn daemons(&self) -> Vec<u32> {
        let pid_file = self.pid_file().to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().map(String::as_str) == Some(BIN)
                && args.contains(&pid_file)
                && is_live(pid)
            {
                found.push(pid);
            }
        }
        found
    }

    /// Asserts that exactly one daemon runs and that the pid file names it; returns it.
    fn expect_one_daemon(&self, context: &str) -> u32 {
        let daemons = self.daemons();
        assert_eq!(
            daemons.len(),
            1,
            "{context}: expected exactly one daemon, found {daemons:?}; log:\n{}",
            self.log()
        );
        assert_eq!(
            self.recorded_pid(),
            Some(daemons[0]),
            "{context}: the pid file does not name the running daemon; log:\n{}",
            self.log()
        );
        daemons[0]
    }

    /// The address of the last `listening on` line of the log: the current daemon's,
    /// since the scripts return only once it has written its pid file (after binding).
    fn addr(&self) -> SocketAddr {
        self.log()
            .lines()
            .rev()
            .find_map(parse_listening)
            .unwrap_or_else(|| panic!("no `listening on` line in the log:\n{}", self.log()))
    }

    fn expect_serves_policy(&self) {
        let mut expected = POLICY.to_vec();
        expected.push(0);
        assert_eq!(fetch_policy(self.addr()), expected, "served policy");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.daemons() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// True if `pid` exists and is not a zombie (killed daemons whose parent is gone may
/// stay zombies where pid 1 does not reap).
fn is_live(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn run(cmd: Command) -> Output {
    run_cmd(cmd, SCRIPT)
}

fn expect_code(out: &Output, code: i32, what: &str, sb: &Sandbox) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status {:?}, expected {code}\nstdout: {}\nstderr: {}\nlog:\n{}",
        out.status,
        out.stdout_text(),
        out.stderr,
        sb.log()
    );
}

/// Runs `make` copies of the command at once; returns their outputs.
fn run_at_once(make: impl Fn() -> Command, copies: usize) -> Vec<Output> {
    let handles: Vec<_> = (0..copies)
        .map(|_| {
            let cmd = make();
            thread::spawn(move || run(cmd))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("script runner thread"))
        .collect()
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// flashpolicyd-cron

#[test]
fn cron_starts_once_keeps_one_and_replaces_a_killed_daemon() {
    let sb = Sandbox::new("cron");

    let out = run(sb.script_with_config(CRON, &[]));
    expect_code(&out, 0, "first run", &sb);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "a successful run must be silent for cron (which mails any output): {out:?}"
    );
    let first = sb.expect_one_daemon("after the first run");
    assert!(
        sb.log()
            .contains(&format!("started flashpolicyd (pid {first})")),
        "the run logs what it did:\n{}",
        sb.log()
    );
    sb.expect_serves_policy();

    for n in 2..=3 {
        let out = run(sb.script_with_config(CRON, &[]));
        expect_code(&out, 0, &format!("run {n}"), &sb);
        assert_eq!(sb.expect_one_daemon(&format!("after run {n}")), first);
    }
    for out in run_at_once(|| sb.script_with_config(CRON, &[]), 2) {
        expect_code(&out, 0, "concurrent run", &sb);
    }
    assert_eq!(sb.expect_one_daemon("after two concurrent runs"), first);

    let out = run(sb.script_with_config(CRON, &["-v"]));
    expect_code(&out, 0, "run with -v", &sb);
    assert!(
        out.stdout_text()
            .contains(&format!("running (pid {first})")),
        "-v says it is running: {out:?}"
    );

    // SIGKILL: no clean stop, so the pid file stays behind, naming a dead process.
    support::send_signal(first, "KILL");
    assert!(
        poll(Duration::from_secs(5), || (!is_live(first)).then_some(())).is_some(),
        "process {first} still alive after SIGKILL"
    );
    assert_eq!(sb.recorded_pid(), Some(first), "a stale pid file is left");

    let out = run(sb.script_with_config(CRON, &[]));
    expect_code(&out, 0, "run after SIGKILL", &sb);
    let second = sb.expect_one_daemon("after the run that followed SIGKILL");
    assert_ne!(second, first, "a new daemon was started");
    let log = sb.log();
    assert!(
        log.contains("removed stale pid file") && log.contains(&format!("(pid {second})")),
        "the replacement is logged:\n{log}"
    );
    sb.expect_serves_policy();
}

fn concurrent_first_start(lock: &str) {
    let sb = Sandbox::new(&format!("cron-{lock}"));
    let outs = run_at_once(
        || {
            let mut c = sb.script(CRON, &[]);
            c.env("LOCK_METHOD", lock);
            c
        },
        3,
    );
    for out in &outs {
        expect_code(out, 0, &format!("concurrent first run ({lock} lock)"), &sb);
    }
    sb.expect_one_daemon(&format!("after three concurrent first runs ({lock} lock)"));
    let starts = sb.log().matches("flashpolicyd-cron[").count();
    assert_eq!(
        starts,
        1,
        "exactly one run starts (and logs):\n{}",
        sb.log()
    );
    sb.expect_serves_policy();
    if lock == "mkdir" {
        assert!(
            !sb.path("flashpolicyd.pid.lock.d").exists(),
            "the lock directory is removed after each run"
        );
    }
}

#[test]
fn cron_concurrent_first_runs_start_one_daemon_with_flock() {
    if !has("flock") {
        return skip("cron flock", "flock(1) is not installed");
    }
    concurrent_first_start("flock");
}

#[test]
fn cron_concurrent_first_runs_start_one_daemon_with_a_lock_directory() {
    concurrent_first_start("mkdir");
}

#[test]
fn cron_takes_over_a_stale_lock_directory() {
    let sb = Sandbox::new("cron-stale-lock");
    let lock = sb.path("flashpolicyd.pid.lock.d");
    fs::create_dir(&lock).unwrap();
    fs::write(lock.join("pid"), format!("{}\n", support::dead_pid())).unwrap();
    let mut cmd = sb.script(CRON, &[]);
    cmd.env("LOCK_METHOD", "mkdir");
    let out = run(cmd);
    expect_code(&out, 0, "run with a stale lock directory", &sb);
    sb.expect_one_daemon("after taking over the stale lock");
    assert!(sb.log().contains("removed stale lock"), "{}", sb.log());
}

#[test]
fn cron_reports_a_daemon_that_cannot_start() {
    let sb = Sandbox::new("cron-bad");
    fs::write(sb.path("bad.xml"), b"<cross-domain-policy>").unwrap();
    let mut cmd = sb.script(CRON, &[]);
    cmd.env("FLASHPOLICYD_ARGS", sb.daemon_args(&sb.path("bad.xml")));
    let out = run(cmd);
    expect_code(&out, 1, "run with an invalid policy", &sb);
    assert!(
        out.stderr.contains("exited with status 2"),
        "the failure is on stderr, which cron mails: {out:?}"
    );
    assert!(sb.daemons().is_empty(), "no daemon: {:?}", sb.daemons());
    assert!(
        sb.log().contains("exited with status 2"),
        "and in the log:\n{}",
        sb.log()
    );
}

// ---------------------------------------------------------------------------------------
// SysV init script

fn init_lifecycle(use_ssd: &str) {
    let sb = Sandbox::new(&format!("init-{use_ssd}"));
    let init = |action: &str| {
        let mut c = sb.script(INIT, &[action]);
        c.env("USE_START_STOP_DAEMON", use_ssd);
        run(c)
    };

    let out = init("status");
    expect_code(&out, 3, "status before start", &sb);
    assert!(out.stdout_text().contains("not running"), "{out:?}");

    let out = init("start");
    expect_code(&out, 0, "start", &sb);
    let pid = sb.expect_one_daemon("after start");
    assert!(
        out.stdout_text().contains(&format!("(pid {pid})")),
        "{out:?}"
    );
    sb.expect_serves_policy();

    let out = init("start");
    expect_code(&out, 0, "start while running", &sb);
    assert!(out.stdout_text().contains("already running"), "{out:?}");
    assert_eq!(sb.expect_one_daemon("after a second start"), pid);

    let out = init("status");
    expect_code(&out, 0, "status while running", &sb);
    assert!(
        out.stdout_text().contains(&format!("running (pid {pid})")),
        "{out:?}"
    );

    let out = init("stop");
    expect_code(&out, 0, "stop", &sb);
    assert!(sb.daemons().is_empty(), "still running: {:?}", sb.daemons());
    assert!(!is_live(pid), "process {pid} still alive after stop");
    assert!(!sb.pid_file().exists(), "the pid file is removed");
    assert!(
        sb.log().contains("stopped: served=1"),
        "a clean stop, with its counters:\n{}",
        sb.log()
    );

    let out = init("status");
    expect_code(&out, 3, "status after stop", &sb);
    let out = init("stop");
    expect_code(&out, 0, "stop while stopped", &sb);
}

#[test]
fn init_script_start_status_stop_with_start_stop_daemon() {
    if !has("start-stop-daemon") {
        return skip(
            "init with start-stop-daemon",
            "start-stop-daemon is not installed",
        );
    }
    init_lifecycle("yes");
}

#[test]
fn init_script_start_status_stop_in_plain_sh() {
    init_lifecycle("no");
}

#[test]
fn init_script_refuses_an_invalid_policy() {
    let sb = Sandbox::new("init-bad");
    fs::write(sb.path("bad.xml"), b"<cross-domain-policy>").unwrap();
    let mut cmd = sb.script(INIT, &["start"]);
    cmd.env("FLASHPOLICYD_ARGS", sb.daemon_args(&sb.path("bad.xml")));
    let out = run(cmd);
    expect_code(&out, 6, "start with an invalid policy", &sb);
    assert!(
        out.stderr.contains("bad.xml") && out.stderr.contains("configuration is invalid"),
        "the daemon's own message, on the terminal: {out:?}"
    );
    assert!(sb.daemons().is_empty(), "no daemon: {:?}", sb.daemons());
}
