//! `--reload-interval`: watch the `--file` policy and serve a valid new version. Each
//! check compares the file's stamp (modification time, size, and on Unix device and
//! inode, so an atomic `mv` is seen); when it changed, the file is loaded and
//! validated like at start. A valid version replaces the served bytes in one swap (a
//! client gets the old bytes or the new, never a mix); an invalid or vanished file is
//! a warning and the old policy stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use log::{debug, info, warn};

use crate::error::describe_io;
use crate::policy::Policy;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl Stamp {
    /// The stamp of the file at `path` (following symlinks), or `None` when it cannot
    /// be looked up (vanished, no permission).
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Some(Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            dev,
            ino,
        })
    }
}

/// What one [`Reloader::check`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// The stamp is the same as last time: nothing read.
    Unchanged,
    /// A new valid version is served now.
    Reloaded,
    /// The file changed but its served bytes did not (touched, rewritten alike).
    SameBytes,
    /// The new version is invalid or unreadable: the old one stays (warning logged).
    Refused,
    /// The file is gone: the old policy stays (warning logged).
    Vanished,
}

/// Watches one policy file; [`Reloader::check`] is called periodically.
pub(crate) struct Reloader {
    path: PathBuf,
    last: Option<Stamp>,
    bytes: Arc<[u8]>,
    digest: String,
    /// The ports it is served on, for the per-port warnings of a new version.
    ports: Vec<u16>,
    apply: Box<dyn FnMut(Arc<[u8]>) + Send>,
}

impl Reloader {
    /// A watcher of `path`, whose version `stamp` (taken *before* it was read, so a
    /// change during the first read is seen) is being served as `policy`; `apply`
    /// installs new bytes (`Handle::set_policy`). A new version is checked, like the
    /// first, against the listening `ports`.
    pub(crate) fn new(
        path: &Path,
        stamp: Option<Stamp>,
        policy: &Policy,
        ports: &[u16],
        apply: impl FnMut(Arc<[u8]>) + Send + 'static,
    ) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            last: stamp,
            bytes: Arc::clone(policy.bytes()),
            digest: policy.digest().to_string(),
            ports: ports.to_vec(),
            apply: Box::new(apply),
        }
    }

    /// Looks at the file once and reloads it if it changed; logs what it did (info for
    /// a reload, with the size and digest; warn for a refused or vanished file, once
    /// per version).
    pub(crate) fn check(&mut self) -> Check {
        let now = Stamp::of(&self.path);
        if now == self.last {
            return Check::Unchanged;
        }
        self.last = now;
        if now.is_none() {
            let why = match std::fs::metadata(&self.path) {
                Err(e) => describe_io(&e),
                Ok(_) => "cannot be looked up".to_string(),
            };
            warn!(
                "policy file {} vanished ({why}): still serving the policy with sha256 {}",
                self.path.display(),
                self.digest
            );
            return Check::Vanished;
        }
        let policy = match Policy::from_file(&self.path) {
            Ok(p) => p,
            Err(e) => {
                warn!(
                    "policy reload refused: {e}; still serving the policy with sha256 {}",
                    self.digest
                );
                return Check::Refused;
            }
        };
        // Written while we read it? Load it again at the next check, once it is still.
        if Stamp::of(&self.path) != now {
            self.last = None;
            debug!(
                "policy file {} changed while being read: retrying",
                self.path.display()
            );
            return Check::Unchanged;
        }
        if policy.bytes()[..] == self.bytes[..] {
            debug!(
                "policy file {} changed on disk but serves the same bytes",
                self.path.display()
            );
            return Check::SameBytes;
        }
        for w in policy.warnings() {
            warn!("policy: {}", policy.locate(w));
        }
        for line in crate::policy::hazards::served_hazards(&policy, &self.ports) {
            warn!("policy: {line}");
        }
        (self.apply)(Arc::clone(policy.bytes()));
        self.bytes = Arc::clone(policy.bytes());
        self.digest = policy.digest().to_string();
        info!("policy reloaded {}", policy.describe());
        Check::Reloaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Mutex;

    const GOOD_A: &str = "<cross-domain-policy>\n<allow-access-from domain=\"a.example\" to-ports=\"80\"/>\n</cross-domain-policy>\n";
    const GOOD_B: &str = "<cross-domain-policy>\n<allow-access-from domain=\"b.example\" to-ports=\"80\"/>\n</cross-domain-policy>\n";
    const BAD: &str = "<cross-domain-policy>\n<allow-access-from domain=\"b.example\"/>\n</cross-domain-policy>\n";

    fn with_nul(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    /// Writes a new version by rename, as editors and deploy tools do (new inode).
    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn swaps_good_versions_and_keeps_the_old_one_on_errors() {
        let path = std::env::temp_dir().join(format!(
            "flashpolicyd-reload-unit-{}.xml",
            std::process::id()
        ));
        fs::write(&path, GOOD_A).unwrap();
        let stamp = Stamp::of(&path);
        let policy = Policy::from_file(&path).unwrap();
        let served = Arc::new(Mutex::new(policy.bytes().to_vec()));
        let sink = Arc::clone(&served);
        let mut r = Reloader::new(&path, stamp, &policy, &[], move |b| {
            *sink.lock().unwrap() = b.to_vec();
        });
        assert_eq!(r.check(), Check::Unchanged);

        replace(&path, GOOD_B);
        assert_eq!(r.check(), Check::Reloaded);
        assert_eq!(*served.lock().unwrap(), with_nul(GOOD_B));
        assert_eq!(r.check(), Check::Unchanged);

        replace(&path, BAD);
        assert_eq!(r.check(), Check::Refused);
        assert_eq!(*served.lock().unwrap(), with_nul(GOOD_B));
        assert_eq!(
            r.check(),
            Check::Unchanged,
            "a refused version is not retried"
        );

        fs::remove_file(&path).unwrap();
        assert_eq!(r.check(), Check::Vanished);
        assert_eq!(r.check(), Check::Unchanged);
        assert_eq!(*served.lock().unwrap(), with_nul(GOOD_B));

        replace(&path, GOOD_B);
        assert_eq!(r.check(), Check::SameBytes);
        replace(&path, GOOD_A);
        assert_eq!(r.check(), Check::Reloaded);
        assert_eq!(*served.lock().unwrap(), with_nul(GOOD_A));
        fs::remove_file(&path).unwrap();
    }
}
