//! Listening sockets handed over by systemd socket activation: when `LISTEN_PID` is
//! our pid, `LISTEN_FDS` sockets start at descriptor 3 and are served instead of
//! binding (so port 843 needs no root). The variables are removed at start, so that
//! they reach no child. (inetd's single connection on stdin is `sys::stdin_connection`.)

use std::net::TcpListener;

use crate::error::{describe_io, Error, Result};
use crate::sys;

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
pub(crate) const LISTEN_FDS_START: i32 = 3;
/// Most inherited sockets accepted: a sanity bound on `LISTEN_FDS`.
pub(crate) const MAX_LISTEN_FDS: usize = 64;

/// What the `LISTEN_*` environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activation {
    /// No socket activation (no `LISTEN_PID`, or `LISTEN_FDS=0`): bind as configured.
    Off,
    /// `LISTEN_PID` names another process (the variables leaked from a parent that
    /// did not `exec` us): they are ignored.
    NotOurs {
        /// The `LISTEN_PID` value, as found.
        listen_pid: String,
    },
    /// Serve the sockets at descriptors 3 to 3 + `count` - 1.
    Sockets {
        /// How many (`LISTEN_FDS`).
        count: usize,
    },
    /// `LISTEN_PID` is ours but `LISTEN_FDS` is not a usable number.
    Invalid {
        /// The `LISTEN_FDS` value, as found.
        listen_fds: String,
    },
}

/// Interprets `LISTEN_PID` and `LISTEN_FDS` for the process `our_pid` (pure).
pub(crate) fn interpret(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    our_pid: u32,
) -> Activation {
    let Some(pid) = listen_pid else {
        return Activation::Off;
    };
    if pid.trim().parse::<u32>().ok() != Some(our_pid) {
        return Activation::NotOurs {
            listen_pid: pid.to_string(),
        };
    }
    let fds = listen_fds.unwrap_or("");
    match fds.trim().parse::<usize>() {
        Ok(0) => Activation::Off,
        Ok(n) if n <= MAX_LISTEN_FDS => Activation::Sockets { count: n },
        _ => Activation::Invalid {
            listen_fds: fds.to_string(),
        },
    }
}

/// Reads and removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`. Call it before
/// any thread starts (the environment is not thread-safe). Outside Unix there is no
/// socket activation: always [`Activation::Off`], the environment untouched.
pub(crate) fn take_from_env() -> Activation {
    if !cfg!(unix) {
        return Activation::Off;
    }
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    interpret(pid.as_deref(), fds.as_deref(), std::process::id())
}

/// Claims the `count` inherited sockets, checking each is a listening TCP socket.
///
/// # Errors
///
/// [`Error::Setup`] (exit 1) naming the descriptor that is not usable and why.
pub(crate) fn listeners(count: usize) -> Result<Vec<TcpListener>> {
    sys::claim_inherited_listeners(LISTEN_FDS_START, count).map_err(|(fd, e)| {
        Error::Setup(format!(
            "socket activation: inherited descriptor {fd} {}",
            describe_io(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_pid_counts() {
        assert_eq!(interpret(None, Some("1"), 42), Activation::Off);
        assert_eq!(
            interpret(Some("42"), Some("2"), 42),
            Activation::Sockets { count: 2 }
        );
        assert_eq!(
            interpret(Some("41"), Some("2"), 42),
            Activation::NotOurs {
                listen_pid: "41".into()
            }
        );
        assert_eq!(
            interpret(Some("x"), Some("2"), 42),
            Activation::NotOurs {
                listen_pid: "x".into()
            }
        );
        assert_eq!(interpret(Some("42"), Some("0"), 42), Activation::Off);
    }

    #[test]
    fn bad_counts_are_invalid() {
        for bad in ["", "-1", "two", "65"] {
            assert_eq!(
                interpret(Some("42"), Some(bad), 42),
                Activation::Invalid {
                    listen_fds: bad.into()
                },
                "{bad}"
            );
        }
        assert_eq!(
            interpret(Some("42"), None, 42),
            Activation::Invalid {
                listen_fds: String::new()
            }
        );
    }
}
