//! Helpers for the checker's integration tests: fake policy servers on 127.0.0.1:0
//! with deliberately broken behaviours, and a runner for the built binary. Every wait
//! has a deadline.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest any fake server waits for the client, and any test for the binary.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A policy that validates without warnings, granting `*.example.com` ports 9000-9100.
pub const GOOD: &str = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
     <allow-access-from domain=\"*.example.com\" to-ports=\"9000-9100\"/>\n\
     </cross-domain-policy>";

/// A fake server: its port and how many connections it accepted.
pub struct Fake {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Fake {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Listens on 127.0.0.1:0 and runs `behaviour` on every connection, one at a time.
pub fn serve<F>(behaviour: F) -> Fake
where
    F: Fn(TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(DEADLINE));
            let _ = stream.set_write_timeout(Some(DEADLINE));
            behaviour(stream);
        }
    });
    Fake { port, accepted }
}

/// Reads the 23-byte request (or until EOF or the deadline).
pub fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 23 && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// A server that reads the request, then sends `reply` in one write and closes.
pub fn replying(reply: Vec<u8>) -> Fake {
    serve(move |mut s| {
        read_request(&mut s);
        let _ = s.write_all(&reply);
    })
}

/// A server that serves `policy` followed by one NUL.
pub fn policy_server(policy: &str) -> Fake {
    let mut bytes = policy.as_bytes().to_vec();
    bytes.push(0);
    replying(bytes)
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// The first line of stdout (the plugin line).
    pub fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }
}

/// Runs `flashpolicy-check` with `args`, killing it after [`DEADLINE`].
pub fn check(args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashpolicy-check"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flashpolicy-check");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flashpolicy-check {args:?} still running after {DEADLINE:?}");
        }
        // Polling interval of a bounded wait, not synchronisation.
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

/// Writes `contents` to a fresh file under the target's temporary directory.
pub fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check-tests");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join(format!(
        "{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

/// Asserts the exit code and that the first line starts with `FLASHPOLICY <label> - `.
pub fn expect(run: &Run, code: i32) {
    let label = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code as usize];
    assert_eq!(
        run.code, code,
        "exit code; output:\n{}{}",
        run.stdout, run.stderr
    );
    let prefix = format!("FLASHPOLICY {label} - ");
    assert!(
        run.first_line().starts_with(&prefix),
        "first line should start with {prefix:?}:\n{}",
        run.stdout
    );
}
