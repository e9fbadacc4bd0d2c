//! Shared helpers for the black-box tests: run the built `flashpolicyd`, watch its
//! log lines with deadlines, talk to it over loopback, and clean up (processes and temp
//! files) even when a test fails. Shared by the three test binaries (tests/daemon/,
//! tests/check/, tests/deploy/); each main.rs includes it and reaches it, with its own
//! helpers, as `support::`.
//!
//! Every wait here has a deadline; nothing sleeps in place of synchronisation. No port
//! is bound, closed and handed on: a test gets its port from a listener it keeps, from
//! the daemon's `listening on` line, or (for a tool that insists on being told a port)
//! from `spawn_on_a_free_port` (tests/deploy/helpers.rs), which tries again when the
//! port was taken meanwhile.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_flashpolicyd");

/// How long a daemon may take to announce its listeners.
pub const READY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Processes

/// A `Command` running the daemon with `args`: stdin and stdout null, stderr piped,
/// RUST_LOG removed so the tests control the level with `-v`/`-q`.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    prepare(&mut cmd);
    cmd
}

pub fn prepare(cmd: &mut Command) {
    cmd.env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
}

#[derive(Default)]
pub struct Log {
    pub lines: Vec<String>,
    pub eof: bool,
}

/// A running daemon. Its stderr is drained on a thread (so it never blocks on a full
/// pipe) and kept line by line. Dropping it kills the process.
pub struct Daemon {
    pub child: Child,
    pub log: Arc<(Mutex<Log>, Condvar)>,
    pub status: Option<ExitStatus>,
}

impl Daemon {
    /// Spawns `cmd` (see [`command`]); does not wait for readiness.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd.spawn().expect("spawn flashpolicyd");
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            thread::spawn(move || drain(stderr, log));
        } else {
            log.0.lock().unwrap().eof = true;
        }
        Daemon {
            child,
            log,
            status: None,
        }
    }

    /// Spawns the daemon with `args` and waits until it logs `listening on` once.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_cmd(command(args), 1)
    }

    /// Spawns `cmd` and waits until it has logged `listeners` distinct `listening on` lines.
    pub fn start_cmd(cmd: Command, listeners: usize) -> Daemon {
        let mut d = Daemon::spawn(cmd);
        d.wait_listening(listeners);
        d
    }

    /// Spawns with `-p 0 -b 127.0.0.1` followed by `extra`, and waits for readiness.
    pub fn start_local(extra: &[&str]) -> Daemon {
        let mut args = vec!["-p", "0", "-b", "127.0.0.1"];
        args.extend_from_slice(extra);
        Daemon::start(&args)
    }

    /// Waits until `n` `listening on` lines have been logged; panics with the log otherwise.
    pub fn wait_listening(&mut self, n: usize) -> Vec<SocketAddr> {
        let deadline = Instant::now() + READY;
        loop {
            // One snapshot for both the check and the count, so no line slips between.
            let lines = self.lines();
            let addrs: Vec<SocketAddr> = lines.iter().filter_map(|l| parse_listening(l)).collect();
            if addrs.len() >= n {
                return addrs;
            }
            let seen = lines.len();
            if !self.wait_for_more(seen, deadline) {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "daemon did not log {n} `listening on` line(s) within {READY:?} \
                     (exit status {status:?}); stderr so far:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Every address announced by a `listening on ADDR:PORT` line, in log order.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.lines()
            .iter()
            .filter_map(|l| parse_listening(l))
            .collect()
    }

    /// The first announced address.
    pub fn addr(&self) -> SocketAddr {
        *self
            .listen_addrs()
            .first()
            .unwrap_or_else(|| panic!("no `listening on` line yet; stderr:\n{}", self.stderr()))
    }

    /// The port of the first announced address.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// A snapshot of the stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// The stderr so far, as one string (for failure messages and assertions).
    pub fn stderr(&self) -> String {
        let mut s = self.lines().join("\n");
        s.push('\n');
        s
    }

    /// Blocks until there are more than `seen` lines; false at the deadline or at EOF.
    pub fn wait_for_more(&self, seen: usize, deadline: Instant) -> bool {
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            if log.lines.len() > seen {
                return true;
            }
            if log.eof {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = cv.wait_timeout(log, deadline - now).unwrap().0;
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn drain(stderr: ChildStderr, log: Arc<(Mutex<Log>, Condvar)>) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                let (lock, cv) = &*log;
                lock.lock().unwrap().lines.push(line);
                cv.notify_all();
            }
        }
    }
    let (lock, cv) = &*log;
    lock.lock().unwrap().eof = true;
    cv.notify_all();
}

/// Parses the address of a `... listening on ADDR:PORT` log line.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let token = rest.split_whitespace().next()?;
    let token = token.trim_end_matches(|c: char| !(c.is_ascii_digit()));
    token.parse().ok()
}

/// What a short-lived run of the binary produced.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// The exit code (panics with the output if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// stdout, lossily decoded, for messages.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` with stdout and stderr piped, with a deadline.
pub fn run_cmd(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = t_err.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {timeout:?} (killed); stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
    }
}

/// Asserts the output carries no panic message or Rust backtrace.
pub fn assert_no_panic(out: &Output) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !out.stderr.contains(bad),
            "stderr contains {bad:?}:\n{}",
            out.stderr
        );
    }
    assert_ne!(
        out.status.code(),
        Some(101),
        "exit code 101 is a Rust panic"
    );
}

/// Prints a visible skip notice. Written to the process's stderr directly, which the
/// test harness does not capture (it captures only `print!`/`eprint!`), so the line
/// shows in a plain `make test` run, not only with `--nocapture`.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(io::stderr().lock(), "SKIPPED {test}: {why}");
}

// ---------------------------------------------------------------------------------------
// Files

/// A unique path in the temp directory, removed (if it exists) on drop.
pub struct TempPath {
    pub path: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempPath {
    /// A fresh unique path whose file name ends with `suffix`; nothing is created.
    pub fn new(suffix: &str) -> TempPath {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "flashpolicyd-test-{}-{n}-{nanos}-{suffix}",
            std::process::id()
        ));
        TempPath { path }
    }

    /// A fresh unique file holding `contents`.
    pub fn with_contents(suffix: &str, contents: &[u8]) -> TempPath {
        let t = TempPath::new(suffix);
        fs::write(&t.path, contents).expect("write temp file");
        t
    }

    /// The path as `&str` (temp paths are ASCII here).
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("temp path is UTF-8")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
