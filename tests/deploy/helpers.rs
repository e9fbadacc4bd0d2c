//! Helpers only the deploy tests need: a port others can bind, files and programs
//! that another user (`nobody`) can reach, user and group ids.

use crate::served::*;
use crate::shared::*;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A loopback port that was free a moment ago. Private: its only user is
/// [`spawn_on_a_free_port`], which copes with the port being taken in between.
pub fn port_free_a_moment_ago() -> u16 {
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
