//! The load client's command line: getopts options, usage text, and the typed
//! [`Config`] the rest of the load client reads. Every error names the flag and the
//! bad value; nothing here touches the network (the host is resolved by the runner).

use std::time::Duration;

use getopts::Options;

use flashpolicyd::options::{getopts_message, parse_number, parse_seconds};
use flashpolicyd::protocol::POLICY_PORT;
use flashpolicyd::{Error, Result};

/// Concurrent measuring clients when `-c` is not given.
pub const DEFAULT_CLIENTS: usize = 16;
/// Measured duration when `-d` is not given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);
/// Held connections of the idle and trickle modes when `-k` is not given (the
/// flood of issue 5: 2,000 slowloris connections beside the real clients).
pub const DEFAULT_HELD: usize = 2000;
/// Deadline of one whole transaction, connect included. Above the 3 s a policy
/// server gives a client, so a slow answer is measured rather than cut short.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Loopback source addresses 127.0.0.2.. used by default for a 127/8 target.
pub const DEFAULT_SRC_IPS: u8 = 8;
/// Most source addresses `--src-ips` accepts (127.0.0.2 to 127.0.0.251).
pub const MAX_SRC_IPS: u8 = 250;
/// Share of junk transactions in `mix` mode when `--junk-percent` is not given.
pub const DEFAULT_JUNK_PERCENT: u8 = 25;
/// Share of the good requests sent in two writes in `mix` mode when `--split-percent`
/// is not given.
pub const DEFAULT_SPLIT_PERCENT: u8 = 20;
/// Time allowed to open the held connections before the measured phase.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Most measuring client threads.
pub const MAX_CLIENTS: usize = 4096;
/// Most held connections.
pub const MAX_HELD: usize = 200_000;
/// Longest `--duration` (a soak of a million connections fits well within it).
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);
/// Longest `--timeout` and `--setup-timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// What the measuring clients do, and which connections are held beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Connect, send the request, read to EOF, close; back to back.
    Rate,
    /// As `Rate`, while K connections that send nothing are held open.
    Idle,
    /// As `Rate`, while K connections send the request one byte per second.
    Trickle,
    /// The clients send junk (not the request); the server should close at once.
    Junk,
    /// Soak traffic: clients send good requests and junk (`--junk-percent`); half
    /// the held connections are idle, half trickle.
    Mix,
}

impl Mode {
    /// The name used on the command line and in the `RESULT` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Rate => "rate",
            Mode::Idle => "idle",
            Mode::Trickle => "trickle",
            Mode::Junk => "junk",
            Mode::Mix => "mix",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        [Mode::Rate, Mode::Idle, Mode::Trickle, Mode::Junk, Mode::Mix]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// True for the modes that hold connections beside the measuring clients.
    pub fn holds(self) -> bool {
        matches!(self, Mode::Idle | Mode::Trickle | Mode::Mix)
    }
}

/// One benchmark run, as asked on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// What to do.
    pub mode: Mode,
    /// Server name or address (`-H`), resolved when the run starts.
    pub host: String,
    /// Server port (`-p`).
    pub port: u16,
    /// Concurrent measuring client threads (`-c`).
    pub clients: usize,
    /// How long the clients start new transactions (`-d`).
    pub duration: Duration,
    /// Connections held beside the clients (`-k`), idle and/or trickling.
    pub held: usize,
    /// Deadline of one whole transaction, connect included (`-t`).
    pub timeout: Duration,
    /// Spread sources over 127.0.0.2..=127.0.0.(N+1) for a 127/8 target (`--src-ips`).
    pub src_ips: u8,
    /// Stop after this many client transactions in total (`-n`).
    pub max_conns: Option<u64>,
    /// Share of junk transactions in `mix` mode, in percent.
    pub junk_percent: u8,
    /// Share of the good requests of `mix` mode sent in two writes, in percent.
    pub split_percent: u8,
    /// Time allowed to open the held connections (`--setup-timeout`).
    pub setup_timeout: Duration,
    /// Free-form tag echoed in the output (`--label`).
    pub label: String,
}

impl Config {
    /// A `rate` run against `host:port` with every other setting at its default.
    pub fn new(mode: Mode, host: &str, port: u16) -> Config {
        Config {
            mode,
            host: host.to_string(),
            port,
            clients: DEFAULT_CLIENTS,
            duration: DEFAULT_DURATION,
            held: if matches!(mode, Mode::Idle | Mode::Trickle) {
                DEFAULT_HELD
            } else {
                0
            },
            timeout: DEFAULT_TIMEOUT,
            src_ips: DEFAULT_SRC_IPS,
            max_conns: None,
            junk_percent: DEFAULT_JUNK_PERCENT,
            split_percent: DEFAULT_SPLIT_PERCENT,
            setup_timeout: DEFAULT_SETUP_TIMEOUT,
            label: "-".to_string(),
        }
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h`: print this text.
    Help(String),
    /// `-V`: print this text.
    Version(String),
    /// Run a benchmark.
    Run(Config),
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "H",
        "host",
        "server name or address (default 127.0.0.1)",
        "HOST",
    );
    o.optopt("p", "port", "server port (default 843)", "PORT");
    o.optopt(
        "c",
        "clients",
        "concurrent measuring clients (default 16)",
        "C",
    );
    o.optopt(
        "d",
        "duration",
        "seconds the clients run (default 5)",
        "SECS",
    );
    o.optopt(
        "k",
        "held",
        "connections held open beside the clients (idle, trickle: default 2000; mix: 0)",
        "K",
    );
    o.optopt(
        "t",
        "timeout",
        "deadline of one transaction, connect included (default 5)",
        "SECS",
    );
    o.optopt(
        "n",
        "max-conns",
        "stop after N client transactions in total (default: no limit)",
        "N",
    );
    o.optopt(
        "",
        "src-ips",
        "127/8 targets: spread sources over 127.0.0.2..N+1, 0 = off (default 8)",
        "N",
    );
    o.optopt(
        "",
        "junk-percent",
        "mix: percentage of client transactions that send junk (default 25)",
        "P",
    );
    o.optopt(
        "",
        "split-percent",
        "mix: percentage of the good requests sent in two writes 2 ms apart (default 20)",
        "P",
    );
    o.optopt(
        "",
        "setup-timeout",
        "seconds allowed to open the held connections (default 15)",
        "SECS",
    );
    o.optopt("", "label", "tag echoed in the RESULT line", "TAG");
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

/// The `-h` text.
pub fn usage() -> String {
    let brief =
        "Usage: flashpolicy-bench [MODE] [-H HOST] [-p PORT] [-c C] [-d SECS] [-k K] [options]\n\n\
        Load client for Flash socket policy servers. Each client thread connects, sends\n\
        <policy-file-request/> and a NUL, reads to EOF and closes, back to back, and the\n\
        run reports connections/s, latency (connect included), errors by kind and replies\n\
        that ended in a TCP reset; the last line is `RESULT key=value ...`.\n\n\
        Modes:\n\
        \x20 rate      C clients (the default mode)\n\
        \x20 idle      C clients while K connections that send nothing are held open\n\
        \x20 trickle   C clients while K connections send the request one byte per second\n\
        \x20 junk      C clients that send junk; the server should close without a policy\n\
        \x20 mix       soak traffic: good requests (some split in two writes) and junk, K\n\
        \x20           held half idle, half trickling\n\n\
        Held connections the server closes are reopened at most once per second each.\n\
        Only point it at servers you run: it is a load generator.\n\
        Exit status: 0 the run completed, 1 nothing succeeded or the run failed, 2 usage.";
    options().usage(brief)
}

/// Parses the arguments (without the program name).
///
/// # Errors
///
/// [`Error::Usage`] naming the flag and value at fault: unknown options or modes, bad
/// numbers, `-k` with a mode that holds nothing, no client and nothing held.
pub fn parse(args: &[String]) -> Result<Command> {
    let m = options()
        .parse(args)
        .map_err(|f| Error::Usage(getopts_message(&f)))?;
    if m.opt_present("h") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("V") {
        return Ok(Command::Version(format!(
            "flashpolicy-bench (flashpolicyd) {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mode = match m.free.as_slice() {
        [] => Mode::Rate,
        [one] => Mode::parse(one).ok_or_else(|| {
            Error::Usage(format!(
                "unknown mode \"{one}\": must be rate, idle, trickle, junk or mix"
            ))
        })?,
        [_, extra, ..] => return Err(Error::Usage(format!("unexpected argument \"{extra}\""))),
    };
    let host = m.opt_str("H").unwrap_or_else(|| "127.0.0.1".to_string());
    if host.trim().is_empty() || host.contains(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "invalid --host \"{host}\": must be a host name or an IP address"
        )));
    }
    let port = match m.opt_str("p") {
        Some(v) => parse_number("--port", &v, 1u16, u16::MAX)?,
        None => POLICY_PORT,
    };
    let mut c = Config::new(mode, &host, port);
    if let Some(v) = m.opt_str("c") {
        c.clients = parse_number("--clients", &v, 0, MAX_CLIENTS)?;
    }
    if let Some(v) = m.opt_str("d") {
        c.duration = parse_seconds("--duration", &v, MAX_DURATION)?;
    }
    if let Some(v) = m.opt_str("k") {
        if !mode.holds() {
            return Err(Error::Usage(format!(
                "--held needs the idle, trickle or mix mode, not {}",
                mode.as_str()
            )));
        }
        c.held = parse_number("--held", &v, 0, MAX_HELD)?;
    }
    if let Some(v) = m.opt_str("t") {
        c.timeout = parse_seconds("--timeout", &v, MAX_TIMEOUT)?;
    }
    if let Some(v) = m.opt_str("n") {
        c.max_conns = Some(parse_number("--max-conns", &v, 1, u64::MAX)?);
    }
    if let Some(v) = m.opt_str("src-ips") {
        c.src_ips = parse_number("--src-ips", &v, 0, MAX_SRC_IPS)?;
    }
    if let Some(v) = m.opt_str("junk-percent") {
        c.junk_percent = parse_number("--junk-percent", &v, 0, 100)?;
    }
    if let Some(v) = m.opt_str("split-percent") {
        c.split_percent = parse_number("--split-percent", &v, 0, 100)?;
    }
    if let Some(v) = m.opt_str("setup-timeout") {
        c.setup_timeout = parse_seconds("--setup-timeout", &v, MAX_TIMEOUT)?;
    }
    if let Some(v) = m.opt_str("label") {
        c.label = v.replace(|ch: char| ch.is_whitespace() || ch == '=', "_");
    }
    if c.clients == 0 && !(mode.holds() && c.held > 0) {
        return Err(Error::Usage(
            "invalid --clients \"0\": only allowed with held connections (-k)".into(),
        ));
    }
    Ok(Command::Run(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn config(args: &[&str]) -> Config {
        match p(args) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match p(args) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("accepted {args:?}: {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&[]);
        assert_eq!(c, Config::new(Mode::Rate, "127.0.0.1", 843));
        assert_eq!((c.clients, c.held, c.max_conns), (16, 0, None));
        assert_eq!(config(&["idle"]).held, 2000);
        assert_eq!(config(&["mix"]).held, 0);
    }

    #[test]
    fn every_option() {
        let c = config(&[
            "trickle",
            "-H",
            "::1",
            "-p",
            "8843",
            "-c",
            "4",
            "-d",
            "1.5",
            "-k",
            "10",
            "-t",
            "2",
            "-n",
            "100",
            "--src-ips",
            "0",
            "--setup-timeout",
            "3",
            "--label",
            "a b",
        ]);
        assert_eq!(c.mode, Mode::Trickle);
        assert_eq!(
            (c.host.as_str(), c.port, c.clients, c.held),
            ("::1", 8843, 4, 10)
        );
        assert_eq!(c.duration, Duration::from_millis(1500));
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!((c.max_conns, c.src_ips), (Some(100), 0));
        assert_eq!(c.label, "a_b");
        assert_eq!(config(&["mix", "--junk-percent", "40"]).junk_percent, 40);
        assert_eq!(config(&["mix", "--split-percent", "0"]).split_percent, 0);
        assert_eq!(config(&["mix"]).split_percent, DEFAULT_SPLIT_PERCENT);
        assert_eq!(config(&["idle", "-c", "0"]).clients, 0);
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert_eq!(
            err(&["-p", "70000"]),
            "invalid --port \"70000\": must be 1-65535"
        );
        assert!(err(&["-c", "5000"]).starts_with("invalid --clients \"5000\""));
        assert!(err(&["-d", "0"]).starts_with("invalid --duration \"0\""));
        assert!(err(&["-t", "nan"]).starts_with("invalid --timeout \"nan\""));
        assert!(err(&["mix", "--junk-percent", "101"]).starts_with("invalid --junk-percent"));
        assert!(err(&["mix", "--split-percent", "x"]).starts_with("invalid --split-percent"));
        assert!(err(&["--src-ips", "251"]).starts_with("invalid --src-ips"));
        assert!(err(&["-n", "0"]).starts_with("invalid --max-conns \"0\""));
        assert!(err(&["-H", "a b"]).starts_with("invalid --host \"a b\""));
    }

    #[test]
    fn combinations() {
        assert!(err(&["flood"]).starts_with("unknown mode \"flood\""));
        assert_eq!(err(&["rate", "x"]), "unexpected argument \"x\"");
        assert!(err(&["rate", "-k", "5"]).starts_with("--held needs"));
        assert!(err(&["-c", "0"]).starts_with("invalid --clients \"0\""));
        assert!(err(&["idle", "-c", "0", "-k", "0"]).starts_with("invalid --clients"));
        assert_eq!(err(&["-x"]), "unknown option -x (see --help)");
        assert_eq!(err(&["-p"]), "-p needs a value (see --help)");
        assert!(matches!(p(&["-h"]), Ok(Command::Help(t)) if t.contains("trickle")));
        assert!(matches!(p(&["-V"]), Ok(Command::Version(t)) if t.contains("bench")));
    }
}
