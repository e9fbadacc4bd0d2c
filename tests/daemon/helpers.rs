//! Helpers only the daemon tests need.

use crate::served::*;
use crate::shared::*;
use std::fs;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

impl Daemon {
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
}

/// Reads exactly `n` bytes (or fails the test).
pub fn read_exact_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    v
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

/// The counter `name` of a `stopped:` line (panics with the line when it is missing).
pub fn counter(line: &str, name: &str) -> u64 {
    parse_counters(line)
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
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

/// What the daemon tests also ask of a [`TempDir`].
impl TempDir {
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
