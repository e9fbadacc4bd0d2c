//! Running the checker, `flashpolicy-check`, and judging its plugin output.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any run of the checker may take.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(20);

/// A policy that validates without warnings, granting `*.example.com` ports 9000-9100.
pub const GOOD: &str = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
     <allow-access-from domain=\"*.example.com\" to-ports=\"9000-9100\"/>\n\
     </cross-domain-policy>";

/// What a run of the checker gave.
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

/// Runs `flashpolicy-check` with `args` (stdin null), killing it after
/// [`CHECK_DEADLINE`].
pub fn check(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashpolicy-check"));
    cmd.args(args).stdin(Stdio::null());
    let start = Instant::now();
    let out = crate::support::run_cmd(cmd, CHECK_DEADLINE);
    let elapsed = start.elapsed();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout_text(),
        stderr: out.stderr,
        elapsed,
    }
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
