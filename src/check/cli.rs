//! The checker's command line: getopts options, usage text, and the typed [`Config`]
//! the rest of the checker reads. Every error names the flag and the bad value.

use std::path::PathBuf;
use std::time::Duration;

use getopts::Options;

use crate::error::{Error, Result};
use crate::evaluate::{Question, SwfDomain};

/// Port where the player looks for the master policy first.
pub(crate) const DEFAULT_PORT: u16 = 843;

/// How long the player waits for a policy, and so the default `--timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest `--timeout`, `--warning` or `--critical` accepted, in seconds.
pub(crate) const MAX_SECS: f64 = 3600.0;

/// Where the policy to check comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Fetch it from `host` on `port` (the master port).
    Network {
        /// Name or address as given by `-H`.
        host: String,
        /// The `-p` port.
        port: u16,
    },
    /// Read it from a file, as if served from `port`.
    File {
        /// The `--file` path.
        path: PathBuf,
        /// The `-p` port the file stands for.
        port: u16,
    },
}

impl Source {
    /// The master port (`-p`).
    pub(crate) fn port(&self) -> u16 {
        match self {
            Source::Network { port, .. } | Source::File { port, .. } => *port,
        }
    }
}

/// Which player's rules the check follows (`--player`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Player {
    /// Adobe Flash Player (the default).
    Flash,
    /// Lightspark (protocol.md §7).
    Lightspark,
    /// Both, one verdict line each.
    All,
}

/// What the checker was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// Where the (master) policy comes from.
    pub source: Source,
    /// Deadline of each policy fetch.
    pub timeout: Duration,
    /// Reply time above which the result is WARNING.
    pub warning: Option<Duration>,
    /// Reply time above which the result is CRITICAL.
    pub critical: Option<Duration>,
    /// The allow/deny question, when `-d` and `-P` are given.
    pub question: Option<Question>,
    /// `-v`: print the policies, a verdict per element, and the notes.
    pub verbose: bool,
    /// `--player`: whose rules to follow.
    pub player: Player,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// `-h`: print this text.
    Help(String),
    /// `-V`: print this text.
    Version(String),
    /// Run a check.
    Check(Config),
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt("H", "host", "host to probe (name or IP address)", "HOST");
    o.optopt(
        "p",
        "port",
        "port of the master policy (default 843)",
        "PORT",
    );
    o.optopt(
        "t",
        "timeout",
        "seconds to wait for each policy (default 3)",
        "SECS",
    );
    o.optopt("d", "domain", "host the SWF was loaded from", "HOST");
    o.optopt("P", "to-port", "port the SWF wants to connect to", "PORT");
    o.optflag("", "secure", "the SWF was served over HTTPS");
    o.optopt(
        "",
        "file",
        "evaluate a local policy file (no network)",
        "PATH",
    );
    o.optopt("w", "warning", "reply time for WARNING", "SECS");
    o.optopt("c", "critical", "reply time for CRITICAL", "SECS");
    o.optopt(
        "",
        "player",
        "whose rules: flash (default), lightspark or all",
        "NAME",
    );
    o.optflag(
        "v",
        "verbose",
        "print the policy, a verdict per element and the notes",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

/// The `-h` text.
pub(crate) fn usage() -> String {
    let brief =
        "Usage: flashpolicy-check -H HOST [-p PORT] [-t SECS] [-d DOMAIN -P PORT [--secure]]\n\
                 \x20                        [-w SECS] [-c SECS] [--player NAME] [-v]\n\
       \x20      flashpolicy-check --file PATH [-p PORT] [-d DOMAIN -P PORT [--secure]]\n\
                 \x20                        [--player NAME] [-v]\n\n\
       Fetches a Flash socket policy the way Flash Player (or Lightspark) does, validates\n\
       it, and with -d and -P says whether the player would let the SWF connect, and why.\n\
       Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios plugin conventions).";
    options().usage(brief)
}

fn usage_err(msg: String) -> Error {
    Error::Usage(msg)
}

fn port(flag: &str, value: &str) -> Result<u16> {
    crate::cli::parse_port(flag, value, false)
}

fn seconds(flag: &str, value: &str, allow_zero: bool) -> Result<Duration> {
    let max = Duration::from_secs_f64(MAX_SECS);
    if allow_zero {
        crate::cli::parse_seconds_or_zero(flag, value, max)
    } else {
        crate::cli::parse_seconds(flag, value, max)
    }
}

/// Parses the arguments (without the program name).
///
/// # Errors
///
/// [`Error::Usage`] naming the flag and value at fault: unknown options, bad numbers,
/// `-d` without `-P` (or the reverse), `--secure` without a question, `--file` with
/// `-H`, neither `-H` nor `--file`, `-w` above `-c`.
#[cfg(test)]
pub(crate) fn parse(args: &[String]) -> Result<Command> {
    parse_args(&crate::cli::Args::utf8(args))
}

/// [`parse`] for arguments as the OS gives them: `--file` keeps its exact bytes.
///
/// # Errors
///
/// As [`parse`].
pub(crate) fn parse_args(args: &crate::cli::Args) -> Result<Command> {
    let m = options()
        .parse(args.texts())
        .map_err(|f| usage_err(crate::cli::getopts_message(&f)))?;
    if m.opt_present("h") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("V") {
        return Ok(Command::Version(format!(
            "flashpolicy-check (flashpolicyd) {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if let Some(extra) = m.free.first() {
        return Err(usage_err(format!("unexpected argument \"{extra}\"")));
    }
    let master_port = match m.opt_str("p") {
        Some(v) => port("--port", &v)?,
        None => DEFAULT_PORT,
    };
    let source = match (m.opt_str("H"), m.opt_str("file")) {
        (Some(_), Some(_)) => {
            return Err(usage_err(
                "--file and --host cannot be combined (--file is offline)".into(),
            ))
        }
        (None, None) => return Err(usage_err("missing --host (or --file)".into())),
        (Some(host), None) => {
            if host.trim().is_empty() || host.contains(char::is_whitespace) {
                return Err(usage_err(format!(
                    "invalid --host \"{host}\": must be a host name or an IP address"
                )));
            }
            Source::Network {
                host,
                port: master_port,
            }
        }
        (None, Some(path)) => {
            if path.is_empty() {
                return Err(usage_err("invalid --file \"\": must be a path".into()));
            }
            Source::File {
                path: args.path(path),
                port: master_port,
            }
        }
    };
    let timeout = match m.opt_str("t") {
        Some(v) => seconds("--timeout", &v, false)?,
        None => DEFAULT_TIMEOUT,
    };
    let warning = m
        .opt_str("w")
        .map(|v| seconds("--warning", &v, true))
        .transpose()?;
    let critical = m
        .opt_str("c")
        .map(|v| seconds("--critical", &v, true))
        .transpose()?;
    if let (Some(w), Some(c)) = (warning, critical) {
        if w > c {
            return Err(usage_err(format!(
                "invalid --warning \"{}\": must not exceed --critical \"{}\"",
                m.opt_str("w").unwrap_or_default(),
                m.opt_str("c").unwrap_or_default()
            )));
        }
    }
    let player = match m.opt_str("player").as_deref() {
        None | Some("flash") => Player::Flash,
        Some("lightspark") => Player::Lightspark,
        Some("all") => Player::All,
        Some(other) => {
            return Err(usage_err(format!(
                "invalid --player \"{other}\": must be flash, lightspark or all"
            )))
        }
    };
    let secure = m.opt_present("secure");
    let question = match (m.opt_str("d"), m.opt_str("P")) {
        (Some(d), Some(p)) => Some(Question {
            domain: SwfDomain::parse(&d)
                .map_err(|why| usage_err(format!("invalid --domain \"{d}\": {why}")))?,
            to_port: port("--to-port", &p)?,
            secure,
        }),
        (Some(_), None) => {
            return Err(usage_err(
                "--domain needs --to-port (the port the SWF connects to)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(usage_err(
                "--to-port needs --domain (the host the SWF came from)".into(),
            ))
        }
        (None, None) if secure => {
            return Err(usage_err("--secure needs --domain and --to-port".into()))
        }
        (None, None) => None,
    };
    Ok(Command::Check(Config {
        source,
        timeout,
        warning,
        critical,
        question,
        verbose: m.opt_present("v"),
        player,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn err(args: &[&str]) -> String {
        match p(args) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("accepted {args:?}: {c:?}"),
        }
    }

    fn config(args: &[&str]) -> Config {
        match p(args) {
            Ok(Command::Check(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&["-H", "example.com"]);
        assert_eq!(
            c.source,
            Source::Network {
                host: "example.com".into(),
                port: 843
            }
        );
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(
            (c.warning, c.critical, c.question, c.verbose),
            (None, None, None, false)
        );
        assert_eq!(c.player, Player::Flash);
    }

    #[test]
    fn full_question() {
        let c = config(&[
            "-H",
            "::1",
            "-p",
            "9843",
            "-t",
            "0.5",
            "-d",
            "A.example.com",
            "-P",
            "9000",
            "--secure",
            "-w",
            "1",
            "-c",
            "2.5",
            "-v",
        ]);
        assert_eq!(c.source.port(), 9843);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.critical, Some(Duration::from_millis(2500)));
        let q = c.question.unwrap();
        assert_eq!((q.to_port, q.secure), (9000, true));
        assert_eq!(q.domain, SwfDomain::Name("a.example.com".into()));
        assert!(c.verbose);
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert_eq!(
            err(&["-H", "h", "-p", "70000"]),
            "invalid --port \"70000\": must be 1-65535"
        );
        assert_eq!(
            err(&["-H", "h", "-p", "0"]),
            "invalid --port \"0\": must be 1-65535"
        );
        assert_eq!(
            err(&["-H", "h", "-d", "a", "-P", "x"]),
            "invalid --to-port \"x\": must be 1-65535"
        );
        assert!(err(&["-H", "h", "-t", "0"]).starts_with("invalid --timeout \"0\""));
        assert!(err(&["-H", "h", "-t", "nan"]).starts_with("invalid --timeout \"nan\""));
        assert!(err(&["-H", "h", "-w", "-1"]).starts_with("invalid --warning \"-1\""));
        assert!(err(&["-H", "h", "-w", "3", "-c", "2"]).starts_with("invalid --warning \"3\""));
        assert!(err(&["-H", "h", "-d", "a b", "-P", "1"]).starts_with("invalid --domain \"a b\""));
        assert_eq!(
            err(&["-H", "h", "--player", "gnash"]),
            "invalid --player \"gnash\": must be flash, lightspark or all"
        );
        for (name, player) in [
            ("flash", Player::Flash),
            ("lightspark", Player::Lightspark),
            ("all", Player::All),
        ] {
            assert_eq!(config(&["-H", "h", "--player", name]).player, player);
        }
    }

    #[test]
    fn combinations() {
        assert_eq!(err(&[]), "missing --host (or --file)");
        assert!(err(&["-H", "h", "-d", "a"]).starts_with("--domain needs --to-port"));
        assert!(err(&["-H", "h", "-P", "1"]).starts_with("--to-port needs --domain"));
        assert!(err(&["-H", "h", "--secure"]).starts_with("--secure needs"));
        assert!(err(&["-H", "h", "--file", "x"]).starts_with("--file and --host"));
        assert_eq!(err(&["-H", "h", "extra"]), "unexpected argument \"extra\"");
        assert_eq!(err(&["-x"]), "unknown option -x (see --help)");
        assert_eq!(err(&["-H"]), "-H needs a value (see --help)");
        assert_eq!(err(&["-H", "a", "-H", "b"]), "--host given more than once");
    }

    #[test]
    fn file_mode_and_help() {
        let c = config(&["--file", "p.xml", "-p", "9000"]);
        assert_eq!(
            c.source,
            Source::File {
                path: "p.xml".into(),
                port: 9000
            }
        );
        assert!(matches!(p(&["-h"]), Ok(Command::Help(t)) if t.contains("--to-port")));
        assert!(
            matches!(p(&["-V"]), Ok(Command::Version(t)) if t.contains(env!("CARGO_PKG_VERSION")))
        );
    }
}
