//! The one error type of the crate and its `Result` alias.
//!
//! Every variant carries the thing at fault (flag, path and line, address), so that
//! `main` can print a single line and choose the exit code with [`Error::exit_code`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can stop the daemon or the checker from doing its job.
///
/// Errors of a single client connection are never turned into an `Error`: they are
/// logged and counted by the server instead.
#[derive(Debug)]
pub enum Error {
    /// A command-line flag is missing, unknown or has a bad value.
    Usage(String),
    /// A policy file could not be read.
    PolicyRead {
        /// The file named by `--file`.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A policy document is not acceptable (not well-formed, wrong grammar, too large...).
    Policy {
        /// Where the policy came from: a path, `--allow`, or a `host:port`.
        origin: String,
        /// 1-based line of the problem; 0 when it concerns the whole document.
        line: usize,
        /// What is wrong, lower case, no final period.
        message: String,
    },
    /// A listening socket could not be created.
    Bind {
        /// The address and port we tried to bind.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// Any other I/O failure at run time, with what we were doing.
    Io {
        /// What we were doing, naming the object (`writing pid file /run/x.pid`).
        context: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The `--stats-file` cannot be written (checked at start by writing it).
    StatsFile {
        /// The path given to `--stats-file`.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A failure to set up the process (signal handler, logger, privileges...).
    Setup(String),
}

impl Error {
    /// Process exit code for this error: 2 for usage and configuration errors, 1 for
    /// run-time failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::PolicyRead { .. }
            | Error::Policy { .. }
            | Error::StatsFile { .. } => 2,
            Error::Bind { .. } | Error::Io { .. } | Error::Setup(_) => 1,
        }
    }

    /// Builds an [`Error::Io`] naming what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Renders an `io::Error` the way people read it: `permission denied`, not
/// `Permission denied (os error 13)`.
pub fn describe_io(err: &io::Error) -> String {
    let text = match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_string(),
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        _ => {
            let s = err.to_string();
            // Drop the " (os error N)" suffix and lower the first letter.
            let s = match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            let mut chars = s.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => s,
            }
        }
    };
    text
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => f.write_str(msg),
            Error::PolicyRead { path, source } => {
                write!(
                    f,
                    "cannot read policy file {}: {}",
                    path.display(),
                    describe_io(source)
                )
            }
            Error::Policy {
                origin,
                line,
                message,
            } => {
                if *line > 0 {
                    write!(f, "invalid policy {origin}:{line}: {message}")
                } else {
                    write!(f, "invalid policy {origin}: {message}")
                }
            }
            Error::Bind { addr, source } => {
                write!(f, "cannot bind {addr}: {}", describe_io(source))?;
                if source.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 {
                    write!(
                        f,
                        " (ports below 1024 need root, `setcap cap_net_bind_service=+ep` on the \
                         binary, or a redirect from {} to an unprivileged port; see docs/deploying.md)",
                        addr.port()
                    )?;
                }
                Ok(())
            }
            Error::Io { context, source } => write!(f, "{context}: {}", describe_io(source)),
            Error::StatsFile { path, source } => write!(
                f,
                "cannot write --stats-file {}: {}",
                path.display(),
                describe_io(source)
            ),
            Error::Setup(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::PolicyRead { source, .. }
            | Error::Bind { source, .. }
            | Error::Io { source, .. }
            | Error::StatsFile { source, .. } => Some(source),
            _ => None,
        }
    }
}
