//! The plain `Config` that every other module reads, and the defaults as named
//! constants. Built by `cli.rs`; the core never sees getopts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::policy::AllowSpec;
use crate::protocol::{DEFAULT_TIMEOUT, POLICY_PORT};

/// Longest `--timeout` accepted.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Worker threads in the pool.
pub(crate) const DEFAULT_WORKERS: usize = 16;
/// Most workers accepted by `--workers`.
pub(crate) const MAX_WORKERS: usize = 4096;
/// Connections that may wait for a free worker before new ones are shed.
pub(crate) const DEFAULT_MAX_PENDING: usize = 1024;
/// Most `--max-pending` accepted.
pub(crate) const MAX_MAX_PENDING: usize = 1_000_000;
/// How often the `--file` policy is checked for changes (`--reload-interval`).
pub(crate) const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// How often the `--stats-file` is written when `--stats-interval` is not given: as
/// often as Prometheus scrapes by default.
pub(crate) const DEFAULT_STATS_FILE_INTERVAL: Duration = Duration::from_secs(15);
/// Longest `--reload-interval` and `--stats-interval` accepted: one day.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// Where the served policy comes from: exactly one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// `-f, --file PATH`.
    File(PathBuf),
    /// `--file-if-exists PATH`: the daemon takes it for `File` at start if PATH exists
    /// (a symlink counts, even a dangling one), for `Default` otherwise.
    FileIfExists(PathBuf),
    /// `-a, --allow`, repeatable: the parsed specs and the values as typed.
    Allow(Vec<AllowSpec>, Vec<String>),
    /// Neither: the embedded allow-all default.
    Default,
}

/// How much to log when `RUST_LOG` is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: warnings and errors.
    Quiet,
    /// Default: info and above.
    Normal,
    /// `-v`: one line per connection.
    Debug,
    /// `-vv`: bytes too.
    Trace,
}

/// Everything the daemon needs to run, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Addresses to listen on (`-b`); empty means every IPv4 and IPv6 address.
    pub binds: Vec<IpAddr>,
    /// Port for every listener (`-p`); 0 lets the OS choose.
    pub port: u16,
    /// The policy source.
    pub policy: PolicySource,
    /// Deadline for a whole connection (`-t`).
    pub timeout: Duration,
    /// Worker threads (`-w`).
    pub workers: usize,
    /// Accepted connections allowed to wait for a worker (`--max-pending`).
    pub max_pending: usize,
    /// Append log lines here instead of stderr (`--log-file`).
    pub log_file: Option<PathBuf>,
    /// Write our pid here while running (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// Validate, print a summary and the served bytes, and exit (`--check-config`).
    pub check_config: bool,
    /// Log level when `RUST_LOG` is not set (`-v`, `-q`).
    pub verbosity: Verbosity,
    /// Once bound, run as this user (`--user`): its uid, primary gid and groups.
    pub user: Option<String>,
    /// With `user`, use this group as the primary group instead (`--group`).
    pub group: Option<String>,
    /// Serve the one connection on standard input and exit (`--inetd`).
    pub inetd: bool,
    /// How often to check the `--file` policy for changes; `None` = never
    /// (`--reload-interval`, 0 = off).
    pub reload_interval: Option<Duration>,
    /// How often to log the counters and write the `stats_file`; `None` = only at stop
    /// (`--stats-interval`; with `--stats-file` it defaults to
    /// [`DEFAULT_STATS_FILE_INTERVAL`]).
    pub stats_interval: Option<Duration>,
    /// Write the counters here in the Prometheus text format (`--stats-file`).
    pub stats_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            binds: Vec::new(),
            port: POLICY_PORT,
            policy: PolicySource::Default,
            timeout: DEFAULT_TIMEOUT,
            workers: DEFAULT_WORKERS,
            max_pending: DEFAULT_MAX_PENDING,
            log_file: None,
            pid_file: None,
            check_config: false,
            verbosity: Verbosity::Normal,
            user: None,
            group: None,
            inetd: false,
            reload_interval: Some(DEFAULT_RELOAD_INTERVAL),
            stats_interval: None,
            stats_file: None,
        }
    }
}
