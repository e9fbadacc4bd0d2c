//! Helpers the daemon and deploy tests share and the checker's do not: starting the
//! daemon in special ways (a wrapper, socket activation), waiting on its log lines and
//! its exit, talking the protocol to it, and reading its counters.

use crate::shared::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The request a player sends: 22 characters and a NUL (docs/protocol.md §1).
pub const REQUEST: &[u8] = b"<policy-file-request/>\0";

/// The 22 characters that are enough for an answer.
pub const REQUEST_TEXT: &[u8] = b"<policy-file-request/>";

/// How long a daemon may take to exit after a stop signal (its in-flight connections
/// are bounded by the `--timeout` the tests pass, at most 3 s).
pub const EXIT: Duration = Duration::from_secs(8);

/// Default client read/write timeout: far above anything a correct daemon needs.
pub const CLIENT: Duration = Duration::from_secs(6);

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
pub const ACTIVATE: &str =
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

impl Daemon {
    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Sends SIGTERM and expects a clean exit (0); returns the `stopped:` line.
    pub fn stop(&mut self) -> String {
        self.signal("TERM");
        self.expect_exit(0, EXIT);
        self.expect_line("stopped:", Duration::from_secs(5))
    }
}

/// Sends a signal by name to `pid` with `kill -s NAME PID`.
pub fn send_signal(pid: u32, name: &str) {
    let st = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -s {name} {pid} failed: {st:?}");
}

impl Output {
    /// Non-empty stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Runs the binary with `args` (RUST_LOG removed) and collects its output; panics if it
/// has not exited within `timeout` (after killing it).
pub fn run(args: &[&str], timeout: Duration) -> Output {
    run_cmd(command(args), timeout)
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

/// True when the tests run as root (`id -u` prints 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
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

impl TempPath {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's contents, if it exists.
    pub fn read(&self) -> Option<Vec<u8>> {
        fs::read(&self.path).ok()
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }
}

/// `tests/fixtures/policy.xml`, the policy most daemon tests serve, exactly as on disk.
pub const POLICY_FILE: &[u8] = include_bytes!("../fixtures/policy.xml");

/// What the daemon must send for [`POLICY_FILE`]: the file plus exactly one NUL
/// (docs/protocol.md §2).
pub fn fixture_reply() -> Vec<u8> {
    let mut v = POLICY_FILE.to_vec();
    v.push(0);
    v
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

/// Replaces the file at `path` the way deploy tools do: write a temporary file beside
/// it, then rename over it (readers see the old file or the new one, never a mix).
pub fn replace_file(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("swap-tmp");
    fs::write(&tmp, contents).expect("write temporary file");
    fs::rename(&tmp, path).expect("rename over the file");
}

/// Asserts `r` is a served policy (see [`assert_one_trailing_nul`]) followed by a clean
/// close.
pub fn assert_served_then_eof(r: &Reply) {
    assert_eq!(r.end, End::Eof, "{r:?}");
    assert_one_trailing_nul(&r.bytes);
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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
