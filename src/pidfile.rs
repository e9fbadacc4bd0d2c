//! The `--pid-file`: written atomically (temporary file, then rename) once the sockets
//! are bound, refused if it names a live process, taken over if stale, and removed on
//! a clean stop if it still names us.
//!
//! With `--user`, the file is written before the privileges are dropped and stays
//! owned by root (an unprivileged daemon must not be able to write a pid that root
//! scripts will `kill`). At stop, removing it needs write permission on its directory:
//! when the daemon no longer has it, a warning is logged and the file stays; the next
//! start takes it over as stale.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use log::{info, warn};

use crate::error::{Error, Result};
use crate::sys;

/// A pid file we wrote; [`PidFile::remove`] it on a clean stop.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// Reads the pid recorded in `path`, if the file exists and holds one.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    text.trim().parse().ok()
}

impl PidFile {
    /// Writes our pid to `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if the file names another live process; [`Error::Io`] naming
    /// the file if it cannot be written.
    pub(crate) fn create(path: &Path) -> Result<PidFile> {
        let pid = std::process::id();
        if path.exists() && read_pid(path).is_none() {
            warn!("pid file {} holds no pid: replacing it", path.display());
        }
        if let Some(old) = read_pid(path) {
            if old != pid && sys::process_alive(old) {
                return Err(Error::Setup(format!(
                    "pid file {} names process {old}, which is running: is flashpolicyd already running?",
                    path.display()
                )));
            }
            if old != pid {
                warn!(
                    "taking over stale pid file {} (process {old} is gone)",
                    path.display()
                );
            }
        }
        let tmp = temp_name(path, pid);
        let write = || -> std::io::Result<()> {
            // A temporary left by a crashed process with our pid is ours to replace;
            // create_new never follows a symlink planted at that name.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            writeln!(f, "{pid}")?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(
                format!("cannot write pid file {}", path.display()),
                e,
            ));
        }
        info!("wrote pid {pid} to {}", path.display());
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// Removes the file if it still names this process. A failure is logged as a
    /// warning, never an error: the file is then stale and the next start takes it over.
    pub(crate) fn remove(self) {
        // A file we cannot read (dropped privileges, a private directory) is still
        // ours unless it names another pid: say why it stays.
        if let Err(e) = fs::metadata(&self.path).and_then(|_| fs::read(&self.path)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(
                    "cannot remove pid file {}: cannot read it: {} (the next start takes \
                     the stale file over)",
                    self.path.display(),
                    crate::error::describe_io(&e)
                );
            }
            return;
        }
        if read_pid(&self.path) == Some(self.pid) {
            if let Err(e) = fs::remove_file(&self.path) {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (its directory is not writable after dropping privileges; the next \
                     start takes the stale file over)"
                } else {
                    ""
                };
                warn!(
                    "cannot remove pid file {}: {}{hint}",
                    self.path.display(),
                    crate::error::describe_io(&e)
                );
            }
        }
    }
}

fn temp_name(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "pid".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{pid}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("flashpolicyd-pidfile-{tag}-{}", std::process::id()))
    }

    #[test]
    fn writes_and_removes() {
        let p = temp("ok");
        let f = PidFile::create(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        f.remove();
        assert!(!p.exists());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_live_process_and_takes_over_a_dead_one() {
        let p = temp("live");
        // pid 1 always exists.
        fs::write(&p, "1\n").unwrap();
        let err = PidFile::create(&p).unwrap_err().to_string();
        assert!(err.contains("names process 1, which is running"), "{err}");
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "1\n",
            "must be left untouched"
        );
        // A pid far above pid_max cannot be alive.
        fs::write(&p, "2147483646\n").unwrap();
        PidFile::create(&p).unwrap().remove();
        assert!(!p.exists());
    }

    #[test]
    fn leaves_a_file_that_names_another_process() {
        let p = temp("other");
        let f = PidFile::create(&p).unwrap();
        fs::write(&p, "12345678\n").unwrap();
        f.remove();
        assert_eq!(fs::read_to_string(&p).unwrap(), "12345678\n");
        fs::remove_file(&p).unwrap();
    }
}
