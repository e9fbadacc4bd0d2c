//! Shared helpers for the black-box tests: run the built `flashpolicyd`, watch its
//! log lines with deadlines, talk to it over loopback, and clean up (processes and temp
//! files) even when a test fails. `check` runs the checker, `fake` starts fake policy
//! servers with one known flaw each.
//!
//! Every wait here has a deadline; nothing sleeps in place of synchronisation. No port
//! is bound, closed and handed on: a test gets its port from a listener it keeps, from
//! the daemon's `listening on` line, or (for a tool that insists on being told a port)
//! from [`spawn_on_a_free_port`], which tries again when the port was taken meanwhile.

#![allow(dead_code)] // each test binary uses a different subset

pub mod check;
pub mod fake;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_flashpolicyd");

/// The request a player sends: 22 characters and a NUL (protocol.md §1).
pub const REQUEST: &[u8] = b"<policy-file-request/>\0";
/// The 22 characters that are enough for an answer.
pub const REQUEST_TEXT: &[u8] = b"<policy-file-request/>";

/// How long a daemon may take to announce its listeners.
pub const READY: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after a stop signal (its in-flight connections
/// are bounded by the `--timeout` the tests pass, at most 3 s).
pub const EXIT: Duration = Duration::from_secs(8);
/// Default client read/write timeout: far above anything a correct daemon needs.
pub const CLIENT: Duration = Duration::from_secs(6);

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

/// Like [`command`], but started through `wrapper` (for example `nohup`), which must
/// `exec` the daemon so that the child's pid is the daemon's pid.
pub fn command_via(wrapper: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(BIN).args(args);
    prepare(&mut cmd);
    cmd
}

/// The shell that starts the daemon the way systemd's socket activation does: the
/// listener arrives as stdin, `exec 3<&0 0</dev/null` moves it to descriptor 3 (Rust's
/// `Command` cannot place a descriptor at 3 without `unsafe`), and `exec` keeps the
/// pid, so `LISTEN_PID=$$` names the daemon.
#[cfg(unix)]
const ACTIVATE: &str =
    "exec 3<&0 0</dev/null; LISTEN_PID=$$; LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; \
     exec \"$0\" \"$@\"";

/// The daemon with `args`, started by "systemd" with `stdin_as_fd3` as descriptor 3.
#[cfg(unix)]
pub fn activated(stdin_as_fd3: Stdio, args: &[&str]) -> Command {
    let mut cmd = command_via(&["sh", "-c", ACTIVATE], args);
    cmd.stdin(stdin_as_fd3);
    cmd
}

/// A listener on 127.0.0.1 (port chosen by the OS), ready to hand to a child as a
/// descriptor, and its address: the test knows the port without asking the daemon.
#[cfg(unix)]
pub fn loopback_listener() -> (Stdio, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().unwrap();
    (Stdio::from(std::os::fd::OwnedFd::from(l)), addr)
}

fn prepare(cmd: &mut Command) {
    cmd.env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
}

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    eof: bool,
}

/// A running daemon. Its stderr is drained on a thread (so it never blocks on a full
/// pipe) and kept line by line. Dropping it kills the process.
pub struct Daemon {
    child: Child,
    log: Arc<(Mutex<Log>, Condvar)>,
    status: Option<ExitStatus>,
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

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Waits until a stderr line contains `needle` (plain substring); returns it, or
    /// `None` when the deadline passes or stderr closes first.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_for_any_line(&[needle], timeout)
    }

    /// Like [`Daemon::wait_for_line`], for the first line containing any of `needles`.
    pub fn wait_for_any_line(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            let lines = self.lines();
            let hit = lines[checked..]
                .iter()
                .find(|l| needles.iter().any(|n| l.contains(n)));
            if let Some(l) = hit {
                return Some(l.clone());
            }
            checked = lines.len();
            if !self.wait_for_more(checked, deadline) {
                return None;
            }
        }
    }

    /// Like [`Daemon::wait_for_line`] but panics with the log when the line never comes.
    pub fn expect_line(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_line(needle, timeout).unwrap_or_else(|| {
            panic!(
                "no stderr line containing {needle:?} within {timeout:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Blocks until there are more than `seen` lines; false at the deadline or at EOF.
    fn wait_for_more(&self, seen: usize, deadline: Instant) -> bool {
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

    /// Waits (bounded) until stderr has been closed, so that every line is in.
    pub fn wait_stderr_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        while !log.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = cv.wait_timeout(log, deadline - now).unwrap().0;
        }
        true
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`) with `kill -s`.
    pub fn signal(&self, name: &str) {
        send_signal(self.pid(), name);
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the process to exit; `None` if it is still running at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                // Let the drain thread collect the last lines (at once, unless the
                // machine is very busy).
                self.wait_stderr_closed(Duration::from_secs(5));
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for exit and panics (with the log) unless it exits with `code` in time.
    pub fn expect_exit(&mut self, code: i32, timeout: Duration) {
        match self.wait_exit(timeout) {
            Some(s) => assert_eq!(
                s.code(),
                Some(code),
                "exit status {s:?}, expected code {code}; stderr:\n{}",
                self.stderr()
            ),
            None => panic!(
                "daemon still running {timeout:?} later (expected exit {code}); stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Asserts that the process stays alive for `period` (a bounded negative check).
    pub fn expect_alive_for(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        while Instant::now() < deadline {
            if let Some(s) = self.try_status() {
                self.wait_stderr_closed(Duration::from_secs(2));
                panic!(
                    "daemon exited ({s:?}) but should be running; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and expects a clean exit (0); returns the `stopped:` line.
    pub fn stop(&mut self) -> String {
        self.signal("TERM");
        self.expect_exit(0, EXIT);
        self.expect_line("stopped:", Duration::from_secs(5))
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

fn drain(stderr: ChildStderr, log: Arc<(Mutex<Log>, Condvar)>) {
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

/// Sends a signal by name to `pid` with `kill -s NAME PID`.
pub fn send_signal(pid: u32, name: &str) {
    let st = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -s {name} {pid} failed: {st:?}");
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

    /// Non-empty stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// stdout, lossily decoded, for messages.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs the binary with `args` (RUST_LOG removed) and collects its output; panics if it
/// has not exited within `timeout` (after killing it).
pub fn run(args: &[&str], timeout: Duration) -> Output {
    run_cmd(command(args), timeout)
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

// ---------------------------------------------------------------------------------------
// Clients

/// How a client's read-until-EOF ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `read` returned `Ok(0)`: a clean close (FIN).
    Eof,
    /// The connection was reset (RST).
    Reset,
    /// The client's own read timeout expired: the server did not close.
    Timeout,
    /// Any other error.
    Error(io::ErrorKind),
}

/// Everything a client received until the connection ended.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub end: End,
    /// From the call that started reading (or from connect, for [`fetch`]) to the end.
    pub elapsed: Duration,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Reply {{ bytes: {}, end: {:?}, elapsed: {:?} }}",
            show(&self.bytes),
            self.end,
            self.elapsed
        )
    }
}

/// Connects with read and write timeouts of [`CLIENT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    connect_timeout(addr, CLIENT)
}

/// Connects with the given read and write timeouts.
pub fn connect_timeout(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until EOF, error or the stream's read timeout; classifies the end.
pub fn read_to_end(s: &mut TcpStream) -> Reply {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break End::Eof,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break match e.kind() {
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => End::Reset,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::Timeout,
                    k => End::Error(k),
                }
            }
        }
    };
    Reply {
        bytes,
        end,
        elapsed: start.elapsed(),
    }
}

/// Reads exactly `n` bytes (or fails the test).
pub fn read_exact_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    v
}

/// Connects, sends `request` in one write, reads until the server closes.
pub fn fetch(addr: SocketAddr, request: &[u8]) -> Reply {
    let start = Instant::now();
    let mut s = connect(addr);
    s.write_all(request).expect("send request");
    let mut r = read_to_end(&mut s);
    r.elapsed = start.elapsed();
    r
}

/// Like [`fetch`], but `None` when the connection cannot be made (daemon not up yet).
pub fn try_fetch(addr: SocketAddr, request: &[u8]) -> Option<Reply> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(CLIENT)).unwrap();
    s.set_write_timeout(Some(CLIENT)).unwrap();
    s.write_all(request).ok()?;
    let mut r = read_to_end(&mut s);
    r.elapsed = start.elapsed();
    Some(r)
}

/// Fetches with the full 23-byte request and asserts a clean reply; returns the bytes.
pub fn fetch_policy(addr: SocketAddr) -> Vec<u8> {
    let r = fetch(addr, REQUEST);
    assert_eq!(
        r.end,
        End::Eof,
        "connection to {addr} did not end with a clean EOF: {r:?}"
    );
    assert!(!r.bytes.is_empty(), "no policy from {addr}");
    r.bytes
}

/// Shows bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    format!(
        "{:?} ({} bytes)",
        String::from_utf8_lossy(bytes),
        bytes.len()
    )
}

/// Asserts `r` is a served policy (see [`assert_one_trailing_nul`]) followed by a clean
/// close.
pub fn assert_served_then_eof(r: &Reply) {
    assert_eq!(r.end, End::Eof, "{r:?}");
    assert_one_trailing_nul(&r.bytes);
}

/// Asserts `bytes` is a served policy: non-empty, exactly one NUL, and that NUL last.
pub fn assert_one_trailing_nul(bytes: &[u8]) {
    assert!(bytes.len() > 1, "reply too short: {}", show(bytes));
    assert_eq!(
        bytes.last(),
        Some(&0),
        "reply does not end in NUL: {}",
        show(bytes)
    );
    let nuls = bytes.iter().filter(|&&b| b == 0).count();
    assert_eq!(
        nuls,
        1,
        "reply has {nuls} NULs, expected exactly one: {}",
        show(bytes)
    );
}

/// Half-closes our side after writing (some tests use it to signal "nothing more").
pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------------------------------
// Environment

/// True when the host can bind the IPv6 loopback.
pub fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// True when the tests run as root (`id -u` prints 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// True when this (test) process ignores SIGHUP, which its children then inherit.
pub fn sighup_ignored_here() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .map(|mask| mask & 1 != 0) // SIGHUP is signal 1, bit 0
        .unwrap_or(false)
}

/// Prints a visible skip notice. Written to the process's stderr directly, which the
/// test harness does not capture (it captures only `print!`/`eprint!`), so the line
/// shows in a plain `make test` run, not only with `--nocapture`.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A port where nothing listens, and where nothing can start listening while this
/// lives: the local port of a connected client socket we keep open (a listener on that
/// port would need to bind it, which conflicts with our socket; the kernel never hands
/// it out for port 0 either). A connection to it is refused.
pub struct ClosedPort {
    port: u16,
    _client: TcpStream,
    _listener: TcpListener,
}

impl ClosedPort {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A [`ClosedPort`] on 127.0.0.1.
pub fn closed_port() -> ClosedPort {
    closed_port_on("127.0.0.1".parse().unwrap()).expect("a closed port on 127.0.0.1")
}

/// A [`ClosedPort`] on `ip`; `None` when `ip` cannot be bound here (no IPv6 loopback).
pub fn closed_port_on(ip: std::net::IpAddr) -> Option<ClosedPort> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).ok()?;
    let client = TcpStream::connect(listener.local_addr().ok()?).ok()?;
    Some(ClosedPort {
        port: client.local_addr().ok()?.port(),
        _client: client,
        _listener: listener,
    })
}

/// A loopback port that was free a moment ago. Private: its only user is
/// [`spawn_on_a_free_port`], which copes with the port being taken in between.
fn port_free_a_moment_ago() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// For a tool that must be told which port to bind and cannot take port 0 (such as
/// `systemd-socket-activate -l`): picks a loopback port that was free a moment ago,
/// spawns `make(addr)` (see [`Daemon::spawn`]) and waits until its stderr says
/// `ready` (it has bound the port; no race is left) or `busy` (someone took the port
/// in between, so try another). Panics with the log after 10 tries or when neither
/// line comes within [`READY`].
pub fn spawn_on_a_free_port(
    make: impl Fn(SocketAddr) -> Command,
    ready: &str,
    busy: &str,
) -> (Daemon, SocketAddr) {
    let mut log = String::new();
    for _ in 0..10 {
        let addr = SocketAddr::from(([127, 0, 0, 1], port_free_a_moment_ago()));
        let d = Daemon::spawn(make(addr));
        match d.wait_for_any_line(&[ready, busy], READY) {
            Some(line) if line.contains(ready) => return (d, addr),
            Some(_) => log = d.stderr(),
            None => panic!(
                "neither {ready:?} nor {busy:?} within {READY:?}; stderr:\n{}",
                d.stderr()
            ),
        }
    }
    panic!("10 free ports were all taken before the tool could bind them; last stderr:\n{log}");
}

/// Polls `f` every 10 ms until it returns `Some`, or the deadline passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Files

/// A unique path in the temp directory, removed (if it exists) on drop.
pub struct TempPath {
    path: PathBuf,
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as `&str` (temp paths are ASCII here).
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("temp path is UTF-8")
    }

    /// The file's contents, if it exists.
    pub fn read(&self) -> Option<Vec<u8>> {
        fs::read(&self.path).ok()
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A fresh directory, removed with its contents on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh empty directory whose name ends with `name`.
    pub fn new(name: &str) -> TempDir {
        let t = TempPath::new(name);
        fs::create_dir(t.path()).expect("create temp dir");
        TempDir(t.path().to_path_buf())
    }

    /// The path of `name` inside it, as a string.
    pub fn join(&self, name: &str) -> String {
        self.0
            .join(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }

    /// The names in the directory, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .expect("read temp dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `tests/fixtures/policy.xml`, the policy most daemon tests serve, exactly as on disk.
pub const POLICY_FILE: &[u8] = include_bytes!("../fixtures/policy.xml");

/// What the daemon must send for [`POLICY_FILE`]: the file plus exactly one NUL
/// (protocol.md §2).
pub fn fixture_reply() -> Vec<u8> {
    let mut v = POLICY_FILE.to_vec();
    v.push(0);
    v
}

/// A fresh directory of mode 755 in the temp directory, which other users (the daemon
/// after `--user nobody`) can enter but not write; removed with its contents on drop.
#[cfg(unix)]
pub struct SharedDir {
    dir: PathBuf,
}

#[cfg(unix)]
impl SharedDir {
    /// Creates the directory, or says why other users could not enter it (a directory
    /// on the way to the temp directory they cannot enter, as with a private TMPDIR).
    pub fn new() -> Result<SharedDir, String> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = TempPath::new("shared").path().to_path_buf();
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let shared = SharedDir { dir };
        // The umask may have narrowed the mode given to mkdir.
        fs::set_permissions(&shared.dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", shared.dir.display()))?;
        for ancestor in shared.dir.ancestors().skip(1) {
            let mode = fs::metadata(ancestor).map(|m| m.permissions().mode());
            if !matches!(mode, Ok(m) if m & 0o001 != 0) {
                return Err(format!(
                    "other users cannot enter {} (on the way to the temp directory; set TMPDIR)",
                    ancestor.display()
                ));
            }
        }
        Ok(shared)
    }

    /// A path in the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

#[cfg(unix)]
impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A copy of the daemon binary that another user can execute, for the tests that start
/// it as `nobody`: the checkout may sit in a directory other users cannot enter (a
/// fresh clone under /root or `mktemp -d`, mode 700). The copy is in a [`SharedDir`].
#[cfg(unix)]
pub struct SharedBin {
    _dir: SharedDir,
    bin: PathBuf,
}

#[cfg(unix)]
impl SharedBin {
    /// Copies the binary, or says why other users could not execute a copy either.
    pub fn new() -> Result<SharedBin, String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = SharedDir::new()?;
        let bin = dir.join("flashpolicyd");
        // Copied by a child process: a file this process held open for writing would
        // be inherited by the children other tests fork meanwhile, and exec'ing the
        // copy would fail with ETXTBSY until they exec.
        let copied = Command::new("cp")
            .arg(BIN)
            .arg(&bin)
            .status()
            .map_err(|e| format!("cannot run cp: {e}"))?;
        if !copied.success() {
            return Err(format!("cp {BIN} {} failed", bin.display()));
        }
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", bin.display()))?;
        Ok(SharedBin { _dir: dir, bin })
    }

    /// Like [`command`], running the copy.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        prepare(&mut cmd);
        cmd
    }
}

/// Absolute path of a file under `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// Log lines

/// Parses `stopped: served=N rejected=N ...` into a map of counter name to value.
pub fn parse_counters(line: &str) -> BTreeMap<String, u64> {
    let rest = &line[line.find("stopped:").expect("a stopped: line") + "stopped:".len()..];
    rest.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.trim_end_matches(',').parse().ok()?))
        })
        .collect()
}

/// The counter `name` of a `stopped:` line (panics with the line when it is missing).
pub fn counter(line: &str, name: &str) -> u64 {
    parse_counters(line)
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

/// The counters of the stats and `stopped:` lines, in their order: the six outcomes of
/// a connection (each connection lands in exactly one), then `fd_exhausted` (failed
/// `accept` calls, not connections).
pub const COUNTERS: [&str; 7] = [
    "served",
    "rejected",
    "empty",
    "timed_out",
    "io_errors",
    "overflow",
    "fd_exhausted",
];

/// Asserts a start refused for a `--stats-file` PATH the daemon may not write: exit 2
/// and a line naming the flag, the path and why.
pub fn assert_stats_file_refused(out: &Output, path: &str) {
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot write --stats-file {path}: permission denied"
        )),
        "{}",
        out.stderr
    );
}

/// Asserts the counters of a `stopped:` line, each of the seven named in the contract.
pub fn assert_counters(line: &str, expected: &[(&str, u64)]) {
    let got = parse_counters(line);
    for name in COUNTERS {
        assert!(
            got.contains_key(name),
            "counter {name} missing from {line:?}"
        );
    }
    for (name, value) in expected {
        assert_eq!(
            got.get(*name),
            Some(value),
            "counter {name} in {line:?}, expected {value}"
        );
    }
}

/// True for a warning line saying the embedded default is permissive (allows everything).
pub fn is_permissive_warning(line: &str) -> bool {
    let l = line.to_lowercase();
    l.contains("warn")
        && ["permissive", "allow-all", "allow all"]
            .iter()
            .any(|w| l.contains(w))
}

/// A valid policy of exactly `size` bytes: a real policy padded with a comment.
pub fn policy_of_size(size: usize) -> Vec<u8> {
    let head = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
                <allow-access-from domain=\"*.example.com\" to-ports=\"843\"/>\n  <!-- ";
    let tail = " -->\n</cross-domain-policy>\n";
    assert!(size >= head.len() + tail.len());
    let pad = "x".repeat(size - head.len() - tail.len());
    let doc = format!("{head}{pad}{tail}");
    assert_eq!(doc.len(), size);
    doc.into_bytes()
}

// ---------------------------------------------------------------------------------------
// Deployment (privileges, /proc, files that change under a running daemon)

/// The uid and primary gid of `user` in /etc/passwd, read by hand.
pub fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == user {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// The gid of `group` in /etc/group.
pub fn group_gid(group: &str) -> Option<u32> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == group).then(|| f[2].parse().ok())?
    })
}

/// The groups `user` should hold with `primary` as its primary gid: `primary` plus
/// every /etc/group entry listing the user as a member; sorted, no duplicates.
pub fn expected_groups(user: &str, primary: u32) -> Vec<u32> {
    let mut v = vec![primary];
    let text = fs::read_to_string("/etc/group").unwrap_or_default();
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[3].split(',').any(|m| m.trim() == user) {
            if let Ok(g) = f[2].parse() {
                v.push(g);
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The ids of a running process from /proc/PID/status: the four `Uid:` fields (real,
/// effective, saved, filesystem), the four `Gid:` fields, and `Groups:` sorted.
pub fn proc_ids(pid: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> Vec<u32> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line in /proc/{pid}/status:\n{status}"));
        let mut v: Vec<u32> = line
            .split_whitespace()
            .map(|n| n.parse().expect("a number"))
            .collect();
        if name == "Groups:" {
            v.sort_unstable();
        }
        v
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

/// Replaces the file at `path` the way deploy tools do: write a temporary file beside
/// it, then rename over it (readers see the old file or the new one, never a mix).
pub fn replace_file(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("swap-tmp");
    fs::write(&tmp, contents).expect("write temporary file");
    fs::rename(&tmp, path).expect("rename over the file");
}

/// Polls until the file at `path` exists and contains `needle`; returns its text.
pub fn wait_file_contains(path: &Path, needle: &str, timeout: Duration) -> Option<String> {
    poll(timeout, || {
        fs::read_to_string(path)
            .ok()
            .filter(|text| text.contains(needle))
    })
}

/// `sha256sum FILE`'s digest (lower-case hex), computed by coreutils, not by us.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {path:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// A pid that named a process a moment ago and names none now: a child that has
/// exited and been reaped (pids are reused only after the counter wraps).
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}
