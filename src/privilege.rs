//! `--user` and `--group`: the names are looked up at start (unknown: exit 2); once the
//! sockets are bound, the log file open and the pid file written, the process drops to
//! the user's uid, primary gid (or `--group`'s) and supplementary groups, then checks
//! that the drop took. Unix only: elsewhere the flags fail with a clear error.

use std::fmt;

#[cfg(not(unix))]
use crate::error::{Error, Result};

/// The identity to switch to, resolved from the names given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The user name as found in the user database.
    pub user: String,
    /// The `--group` name as given, when there is one.
    pub group: Option<String>,
    /// The user's uid.
    pub uid: u32,
    /// The primary gid: the user's, or `--group`'s.
    pub gid: u32,
    /// Every group to hold, the primary one included; sorted, without duplicates.
    pub groups: Vec<u32>,
}

/// The ids a process holds (what `getresuid`, `getresgid` and `getgroups` say).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))] // privileges are dropped on Unix only
pub(crate) struct Identity {
    /// Real, effective and saved uid.
    pub uids: [u32; 3],
    /// Real, effective and saved gid.
    pub gids: [u32; 3],
    /// Supplementary groups, sorted, without duplicates.
    pub groups: Vec<u32>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (uid {}, gid {}, groups {})",
            self.user,
            self.uid,
            self.gid,
            list(&self.groups)
        )
    }
}

fn list(ids: &[u32]) -> String {
    let v: Vec<String> = ids.iter().map(u32::to_string).collect();
    v.join(",")
}

/// Sorts and deduplicates a list of ids.
#[cfg_attr(not(unix), allow(dead_code))]
fn normalised(mut ids: Vec<u32>) -> Vec<u32> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Compares what the process holds with the target; the message says what differs.
///
/// # Errors
///
/// A lowercase description of the first id that did not take.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn verify(target: &Target, now: &Identity) -> std::result::Result<(), String> {
    let names = ["real", "effective", "saved"];
    for (i, name) in names.iter().enumerate() {
        if now.uids[i] != target.uid {
            return Err(format!("{name} uid is {}, not {}", now.uids[i], target.uid));
        }
        if now.gids[i] != target.gid {
            return Err(format!("{name} gid is {}, not {}", now.gids[i], target.gid));
        }
    }
    if normalised(now.groups.clone()) != target.groups {
        return Err(format!(
            "groups are {}, not {}",
            list(&now.groups),
            list(&target.groups)
        ));
    }
    Ok(())
}

#[cfg(unix)]
pub(crate) use unix::{check_can_switch, lookup, switch};

#[cfg(unix)]
mod unix {
    use log::info;
    use nix::unistd::{self, Gid, Group, Uid, User};

    use super::{normalised, verify, Identity, Target};
    use crate::error::{Error, Result};

    /// Looks up `user` (a name, or a uid with an entry in the user database) and
    /// `group`, and the user's supplementary groups.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] (exit 2) `unknown user "x"` or `unknown group "x"`;
    /// [`Error::Setup`] when the user database cannot be read.
    pub(crate) fn lookup(user: &str, group: Option<&str>) -> Result<Target> {
        let lookup_error = |e| Error::Setup(format!("cannot look up user \"{user}\": {e}"));
        let mut found = User::from_name(user).map_err(lookup_error)?;
        if found.is_none() {
            if let Ok(n) = user.parse::<u32>() {
                found = User::from_uid(Uid::from_raw(n)).map_err(lookup_error)?;
            }
        }
        let u = found.ok_or_else(|| Error::Usage(format!("unknown user \"{user}\"")))?;
        let gid = match group {
            None => u.gid,
            Some(name) => {
                let lookup_error =
                    |e| Error::Setup(format!("cannot look up group \"{name}\": {e}"));
                match Group::from_name(name).map_err(lookup_error)? {
                    Some(g) => g.gid,
                    None => match name.parse::<u32>() {
                        Ok(n) => Gid::from_raw(n),
                        Err(_) => return Err(Error::Usage(format!("unknown group \"{name}\""))),
                    },
                }
            }
        };
        let groups = supplementary(&u.name, gid).map_err(|e| {
            Error::Setup(format!(
                "cannot list the groups of user \"{}\": {e}",
                u.name
            ))
        })?;
        Ok(Target {
            user: u.name,
            group: group.map(str::to_string),
            uid: u.uid.as_raw(),
            gid: gid.as_raw(),
            groups: normalised(groups),
        })
    }

    /// Checks, before anything is bound, that [`switch`] can succeed: we are root, or
    /// already the target user (and group, when `--group` was given).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] (exit 1) `cannot switch to user "x": not running as root`.
    pub(crate) fn check_can_switch(target: &Target) -> Result<()> {
        if unistd::geteuid().is_root() {
            return Ok(());
        }
        if unistd::getuid().as_raw() != target.uid || unistd::geteuid().as_raw() != target.uid {
            return Err(Error::Setup(format!(
                "cannot switch to user \"{}\": not running as root",
                target.user
            )));
        }
        if let Some(group) = &target.group {
            if unistd::getgid().as_raw() != target.gid || unistd::getegid().as_raw() != target.gid {
                return Err(Error::Setup(format!(
                    "cannot switch to group \"{group}\": not running as root"
                )));
            }
        }
        Ok(())
    }

    /// Drops to `target`: supplementary groups, then gid, then uid (the order in which
    /// each step is still permitted), then checks every id and that root cannot be
    /// regained. Already running as the target user without root: nothing to change.
    /// Logs the identity it runs as at info level.
    ///
    /// Call it before starting any thread.
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] (exit 1) naming the user and the step that failed or did not take.
    pub(crate) fn switch(target: &Target) -> Result<()> {
        let fail = |what: String| {
            Error::Setup(format!("cannot switch to user \"{}\": {what}", target.user))
        };
        if !unistd::geteuid().is_root() {
            check_can_switch(target)?;
            let now = current().map_err(|e| fail(format!("cannot read our ids: {e}")))?;
            info!(
                "already running as {} (uid {}, gid {}, groups {}): nothing to drop",
                target.user,
                now.uids[1],
                now.gids[1],
                super::list(&now.groups)
            );
            return Ok(());
        }
        let gids: Vec<Gid> = target.groups.iter().map(|&g| Gid::from_raw(g)).collect();
        set_groups(&gids).map_err(|e| fail(format!("setgroups: {e}")))?;
        unistd::setgid(Gid::from_raw(target.gid)).map_err(|e| fail(format!("setgid: {e}")))?;
        unistd::setuid(Uid::from_raw(target.uid)).map_err(|e| fail(format!("setuid: {e}")))?;
        let now = current().map_err(|e| fail(format!("cannot read our ids: {e}")))?;
        verify(target, &now).map_err(|why| fail(format!("the drop did not take: {why}")))?;
        if target.uid != 0 && unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(fail("the drop did not take: root can be regained".into()));
        }
        if target.gid != 0 && unistd::setgid(Gid::from_raw(0)).is_ok() {
            return Err(fail(
                "the drop did not take: group root can be regained".into(),
            ));
        }
        info!("running as {target}");
        Ok(())
    }

    /// The ids this process holds now.
    ///
    /// # Errors
    ///
    /// What the OS says.
    pub(crate) fn current() -> nix::Result<Identity> {
        let (uids, gids) = saved_ids()?;
        #[cfg(not(target_vendor = "apple"))]
        let groups = unistd::getgroups()?;
        // nix has no getgroups on Apple systems (whose answer may leave groups out):
        // the effective gid stands in.
        #[cfg(target_vendor = "apple")]
        let groups = vec![unistd::getegid()];
        Ok(Identity {
            uids,
            gids,
            groups: normalised(groups.into_iter().map(Gid::as_raw).collect()),
        })
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd"
    ))]
    fn saved_ids() -> nix::Result<([u32; 3], [u32; 3])> {
        let u = unistd::getresuid()?;
        let g = unistd::getresgid()?;
        Ok((
            [u.real.as_raw(), u.effective.as_raw(), u.saved.as_raw()],
            [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()],
        ))
    }

    /// Without `getresuid`, the saved ids cannot be read: as root, `setuid` and
    /// `setgid` set them with the real ones, so the real ids stand in.
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd"
    )))]
    fn saved_ids() -> nix::Result<([u32; 3], [u32; 3])> {
        let (ru, eu) = (unistd::getuid().as_raw(), unistd::geteuid().as_raw());
        let (rg, eg) = (unistd::getgid().as_raw(), unistd::getegid().as_raw());
        Ok(([ru, eu, ru], [rg, eg, rg]))
    }

    /// Supplementary groups, where the OS offers `getgrouplist` and `setgroups`.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    mod grouplist {
        use nix::unistd::{self, Gid};
        use std::ffi::CString;

        pub(super) fn supplementary(user: &str, gid: Gid) -> nix::Result<Vec<u32>> {
            let name = CString::new(user).map_err(|_| nix::errno::Errno::EINVAL)?;
            let groups = unistd::getgrouplist(&name, gid)?;
            Ok(groups.into_iter().map(Gid::as_raw).collect())
        }

        pub(super) fn set_groups(groups: &[Gid]) -> nix::Result<()> {
            unistd::setgroups(groups)
        }
    }

    /// Elsewhere, only the primary group is held (no portable `getgrouplist`).
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    )))]
    mod grouplist {
        use nix::unistd::Gid;

        pub(super) fn supplementary(_user: &str, gid: Gid) -> nix::Result<Vec<u32>> {
            Ok(vec![gid.as_raw()])
        }

        pub(super) fn set_groups(_groups: &[Gid]) -> nix::Result<()> {
            Err(nix::errno::Errno::ENOSYS)
        }
    }

    use grouplist::{set_groups, supplementary};
}

/// `--user` is Unix only.
///
/// # Errors
///
/// Always [`Error::Usage`] (exit 2) `--user is not available on Windows`.
#[cfg(not(unix))]
pub(crate) fn lookup(_user: &str, _group: Option<&str>) -> Result<Target> {
    Err(not_here())
}

/// `--user` is Unix only.
///
/// # Errors
///
/// Always [`Error::Usage`].
#[cfg(not(unix))]
pub(crate) fn check_can_switch(_target: &Target) -> Result<()> {
    Err(not_here())
}

/// `--user` is Unix only.
///
/// # Errors
///
/// Always [`Error::Usage`].
#[cfg(not(unix))]
pub(crate) fn switch(_target: &Target) -> Result<()> {
    Err(not_here())
}

#[cfg(not(unix))]
fn not_here() -> Error {
    Error::Usage("--user is not available on Windows".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nobody() -> Target {
        Target {
            user: "nobody".into(),
            group: None,
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
        }
    }

    #[test]
    fn describes_like_the_log_line() {
        assert_eq!(
            nobody().to_string(),
            "nobody (uid 65534, gid 65534, groups 65534)"
        );
        let mut t = nobody();
        t.groups = vec![4, 65534];
        assert_eq!(
            t.to_string(),
            "nobody (uid 65534, gid 65534, groups 4,65534)"
        );
    }

    #[test]
    fn verify_names_what_did_not_take() {
        let t = nobody();
        let mut id = Identity {
            uids: [65534; 3],
            gids: [65534; 3],
            groups: vec![65534],
        };
        assert_eq!(verify(&t, &id), Ok(()));
        id.uids[2] = 0;
        assert_eq!(verify(&t, &id), Err("saved uid is 0, not 65534".into()));
        id.uids[2] = 65534;
        id.gids[1] = 0;
        assert_eq!(verify(&t, &id), Err("effective gid is 0, not 65534".into()));
        id.gids[1] = 65534;
        id.groups = vec![0, 65534];
        assert_eq!(verify(&t, &id), Err("groups are 0,65534, not 65534".into()));
        id.groups = vec![65534, 65534];
        assert_eq!(verify(&t, &id), Ok(()), "duplicates do not matter");
    }

    #[cfg(unix)]
    #[test]
    fn unknown_names_are_usage_errors() {
        let e = lookup("no-such-user-flashpolicyd", None).unwrap_err();
        assert_eq!(e.to_string(), "unknown user \"no-such-user-flashpolicyd\"");
        assert_eq!(e.exit_code(), 2);
        let e = lookup("root", Some("no-such-group-flashpolicyd")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown group \"no-such-group-flashpolicyd\""
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn root_resolves_to_uid_0() {
        let t = lookup("root", None).unwrap();
        assert_eq!((t.uid, t.gid), (0, 0));
        assert!(t.groups.contains(&0));
        assert_eq!(lookup("0", None).unwrap().user, "root");
    }
}
