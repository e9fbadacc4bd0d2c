//! The command line of `flashpolicyd`: getopts options, usage text, and
//! [`parse`], which turns arguments into a validated [`Config`]. Every error names the
//! flag and the bad value. One addition: [`Args`], the arguments as the OS gives them
//! (paths are bytes; getopts takes only UTF-8), shared with `flashpolicy-check`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use getopts::{Matches, Options};

use crate::config::{self, Config, PolicySource, Verbosity};
use crate::error::{Error, Result};
use crate::policy::AllowSpec;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
// Built once per process and matched at once: boxing the config would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve (or, with `--check-config`, validate) with this configuration.
    Run(Config),
    /// Print this usage text to stdout and exit 0.
    Help(String),
    /// Print the version to stdout and exit 0.
    Version(String),
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "p",
        "port",
        "port to listen on (default 843; 0 = any free port)",
        "PORT",
    );
    o.optmulti(
        "b",
        "bind",
        "address to listen on, IPv4 or IPv6 literal; repeatable (default: every IPv4 and IPv6 address)",
        "ADDR",
    );
    o.optopt(
        "f",
        "file",
        "serve this crossdomain.xml policy file",
        "PATH",
    );
    o.optopt(
        "",
        "file-if-exists",
        "like --file, but if PATH does not exist at start, serve the embedded allow-all \
         policy (a container's optional mount)",
        "PATH",
    );
    o.optmulti(
        "a",
        "allow",
        "generate the policy: allow DOMAIN to connect to PORTS (default *); repeatable",
        "DOMAIN[:PORTS]",
    );
    o.optopt(
        "t",
        "timeout",
        "deadline for a whole connection, in seconds, decimals allowed (default 3)",
        "SECS",
    );
    o.optopt("w", "workers", "worker threads (default 16)", "N");
    o.optopt(
        "",
        "max-pending",
        "connections that may wait for a worker before new ones are closed (default 1024)",
        "N",
    );
    o.optopt(
        "",
        "log-file",
        "append log lines to this file instead of stderr",
        "PATH",
    );
    o.optopt(
        "",
        "pid-file",
        "write the daemon's pid to this file while it runs",
        "PATH",
    );
    o.optopt(
        "",
        "user",
        "once the sockets are bound, run as this user (its uid, gid and groups); needs root",
        "USER",
    );
    o.optopt(
        "",
        "group",
        "with --user, use this group as the primary group",
        "GROUP",
    );
    o.optflag(
        "",
        "inetd",
        "serve the one connection on standard input and exit (inetd, xinetd); logs only to --log-file",
    );
    o.optopt(
        "",
        "reload-interval",
        "check the --file policy for changes this often, decimals allowed; 0 = never (default 5)",
        "SECS",
    );
    o.optopt(
        "",
        "stats-interval",
        "log the counters (and write --stats-file) this often, decimals allowed (default 0 = \
         only at stop; 15 with --stats-file)",
        "SECS",
    );
    o.optopt(
        "",
        "stats-file",
        "write the counters to this file in the Prometheus text format (node_exporter's \
         textfile collector), at start, every --stats-interval and at stop",
        "PATH",
    );
    o.optflag(
        "",
        "check-config",
        "validate the policy, print a summary (stderr) and the exact bytes served (stdout), exit",
    );
    o.optflagmulti(
        "v",
        "verbose",
        "log each connection (-vv: and its bytes); RUST_LOG wins",
    );
    o.optflag("q", "quiet", "log only warnings and errors; RUST_LOG wins");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

/// The usage text printed by `--help`.
pub(crate) fn usage() -> String {
    let brief = "Usage: flashpolicyd [options]\n\n\
        Serves a Flash socket policy to every client that sends <policy-file-request/>.\n\
        With neither --file nor --allow it serves an allow-all policy.";
    let mut text = options().usage(brief);
    text.push_str(
        "\nExit status: 0 clean stop, 1 run-time failure, 2 usage or configuration error.\n\
         Signals: SIGINT, SIGTERM and SIGHUP stop it cleanly (SIGHUP is ignored under nohup).\n\
         Socket activation: with LISTEN_PID and LISTEN_FDS (systemd), it serves the inherited\n\
         sockets instead of binding.\n",
    );
    text
}

/// The arguments as the OS gives them, made parseable by getopts, which refuses an
/// argument that is not UTF-8: each such argument (or the value part of `--name=VALUE`
/// or `-xVALUE`) is replaced by its lossy text, made unique, and [`Args::path`] maps a
/// path value back to the original bytes. So a path is opened under exactly its name,
/// and shown lossily only in messages.
#[derive(Debug, Clone, Default)]
pub struct Args {
    texts: Vec<String>,
    /// Placeholder text -> the value it stands for.
    originals: BTreeMap<String, OsString>,
}

impl Args {
    /// Takes the arguments (without the program name), e.g. `std::env::args_os().skip(1)`.
    pub fn from_os(args: impl IntoIterator<Item = OsString>) -> Args {
        let args: Vec<OsString> = args.into_iter().collect();
        let utf8: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
        let mut out = Args::default();
        for (arg, text) in args.iter().zip(&utf8) {
            if let Some(text) = text {
                out.texts.push((*text).to_string());
                continue;
            }
            let (prefix, value) = split_value(arg);
            let mut placeholder = value.to_string_lossy().into_owned();
            // Unique: never equal to a real argument or to another placeholder.
            while utf8
                .iter()
                .flatten()
                .any(|t| t.ends_with(placeholder.as_str()))
                || out.originals.contains_key(&placeholder)
            {
                placeholder.push(char::REPLACEMENT_CHARACTER);
            }
            out.texts.push(format!("{prefix}{placeholder}"));
            out.originals.insert(placeholder, value);
        }
        out
    }

    /// Arguments that are all UTF-8 already (tests, and callers that have strings).
    pub fn utf8(args: &[String]) -> Args {
        Args {
            texts: args.to_vec(),
            originals: BTreeMap::new(),
        }
    }

    /// The arguments as text, for getopts.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The path an option value names: the original bytes if the value stands for an
    /// argument that was not UTF-8.
    pub(crate) fn path(&self, value: String) -> PathBuf {
        match self.originals.get(&value) {
            Some(original) => PathBuf::from(original),
            None => PathBuf::from(value),
        }
    }
}

/// Splits a non-UTF-8 argument into an option prefix kept as text (`--name=` or `-x`)
/// and its value; an argument that is not an option is all value.
fn split_value(arg: &std::ffi::OsStr) -> (String, OsString) {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = arg.as_bytes();
        let cut = if bytes.starts_with(b"--") {
            bytes.iter().position(|&b| b == b'=').map(|i| i + 1)
        } else if bytes.len() > 2 && bytes[0] == b'-' && bytes[1].is_ascii_alphanumeric() {
            Some(2)
        } else {
            None
        };
        if let Some(cut) = cut {
            if let Ok(prefix) = std::str::from_utf8(&bytes[..cut]) {
                let value = std::ffi::OsStr::from_bytes(&bytes[cut..]);
                return (prefix.to_string(), value.to_os_string());
            }
        }
    }
    (String::new(), arg.to_os_string())
}

/// Parses the arguments (without the program name) into a [`Command`].
///
/// # Errors
///
/// [`Error::Usage`] naming the flag and the value at fault.
pub fn parse(args: &[String]) -> Result<Command> {
    parse_args(&Args::utf8(args))
}

/// [`parse`] for arguments as the OS gives them: path values keep their exact bytes.
///
/// # Errors
///
/// [`Error::Usage`] naming the flag and the value at fault.
pub fn parse_args(args: &Args) -> Result<Command> {
    let m = options()
        .parse(args.texts())
        .map_err(|e| Error::Usage(getopts_message(&e)))?;
    if m.opt_present("h") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("V") {
        return Ok(Command::Version(format!(
            "flashpolicyd {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if let Some(extra) = m.free.first() {
        return Err(Error::Usage(format!(
            "unexpected argument \"{extra}\" (flashpolicyd takes only options; see --help)"
        )));
    }
    Ok(Command::Run(config_from(&m, args)?))
}

fn config_from(m: &Matches, args: &Args) -> Result<Config> {
    let mut c = Config::default();
    if let Some(v) = m.opt_str("p") {
        c.port = parse_port("--port", &v, true)?;
    }
    for v in m.opt_strs("b") {
        c.binds.push(parse_ip("--bind", &v)?);
    }
    c.binds.dedup();
    let allows = m.opt_strs("a");
    let file = match (m.opt_str("f"), m.opt_str("file-if-exists")) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--file and --file-if-exists cannot be used together: give one policy source"
                    .into(),
            ))
        }
        (Some(path), None) => Some(("--file", path)),
        (None, Some(path)) => Some(("--file-if-exists", path)),
        (None, None) => None,
    };
    c.policy = match (file, allows.is_empty()) {
        (Some((flag, _)), false) => {
            return Err(Error::Usage(format!(
                "{flag} and --allow cannot be used together: give one policy source"
            )))
        }
        (Some((flag, path)), true) if path.is_empty() => {
            return Err(Error::Usage(format!("invalid {flag} \"\": must be a path")))
        }
        // Only "does not exist" falls back (the container image's default command names
        // the path a policy may be mounted at); anything else, a dangling symlink
        // included, is the --file error it would be.
        (Some(("--file-if-exists", path)), true)
            if std::fs::symlink_metadata(args.path(path.clone()))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            PolicySource::Default
        }
        (Some((_, path)), true) => PolicySource::File(args.path(path)),
        (None, false) => {
            let mut specs = Vec::with_capacity(allows.len());
            for v in &allows {
                specs.push(
                    AllowSpec::parse(v)
                        .map_err(|why| Error::Usage(format!("invalid --allow \"{v}\": {why}")))?,
                );
            }
            // Refused like an oversized --file: validate would reject what we served.
            let size = crate::policy::render_document(&specs).len();
            if size > crate::policy::MAX_POLICY_BYTES {
                return Err(Error::Usage(format!(
                    "too many --allow values: the generated policy is {size} bytes, more than \
                     the {} a policy may have",
                    crate::policy::MAX_POLICY_BYTES
                )));
            }
            PolicySource::Allow(specs, allows)
        }
        (None, true) => PolicySource::Default,
    };
    if let Some(v) = m.opt_str("t") {
        c.timeout = parse_seconds("--timeout", &v, config::MAX_TIMEOUT)?;
    }
    if let Some(v) = m.opt_str("w") {
        c.workers = parse_count("--workers", &v, config::MAX_WORKERS)?;
    }
    if let Some(v) = m.opt_str("max-pending") {
        c.max_pending = parse_count("--max-pending", &v, config::MAX_MAX_PENDING)?;
    }
    c.log_file = path_opt(m, args, "log-file")?;
    c.pid_file = path_opt(m, args, "pid-file")?;
    c.check_config = m.opt_present("check-config");
    c.user = name_opt(m, "user")?;
    c.group = name_opt(m, "group")?;
    if cfg!(not(unix)) && c.group.is_some() {
        return Err(Error::Usage("--group is not available on Windows".into()));
    }
    if c.group.is_some() && c.user.is_none() {
        return Err(Error::Usage(
            "--group needs --user: the group is set when dropping root for that user".into(),
        ));
    }
    c.inetd = m.opt_present("inetd");
    if c.inetd && c.check_config {
        return Err(Error::Usage(
            "--inetd and --check-config cannot be used together".into(),
        ));
    }
    if c.inetd && c.pid_file.is_some() {
        return Err(Error::Usage(
            "--inetd and --pid-file cannot be used together: under inetd every connection is \
             its own short-lived process"
                .into(),
        ));
    }
    if let Some(v) = m.opt_str("reload-interval") {
        c.reload_interval = parse_interval("--reload-interval", &v)?;
    }
    c.stats_file = path_opt(m, args, "stats-file")?;
    if let Some(path) = &c.stats_file {
        if path.file_name().is_none() {
            return Err(Error::Usage(format!(
                "invalid --stats-file \"{}\": must name a file, not a directory",
                path.display()
            )));
        }
        if c.inetd {
            return Err(Error::Usage(
                "--inetd and --stats-file cannot be used together: under inetd every \
                 connection is its own short-lived process"
                    .into(),
            ));
        }
        c.stats_interval = Some(config::DEFAULT_STATS_FILE_INTERVAL);
    }
    if let Some(v) = m.opt_str("stats-interval") {
        c.stats_interval = parse_interval("--stats-interval", &v)?;
    }
    c.verbosity = match (m.opt_count("v"), m.opt_present("q")) {
        (0, false) => Verbosity::Normal,
        (0, true) => Verbosity::Quiet,
        (_, true) => return Err(Error::Usage("-v and -q cannot be used together".into())),
        (1, false) => Verbosity::Debug,
        (_, false) => Verbosity::Trace,
    };
    Ok(c)
}

fn path_opt(m: &Matches, args: &Args, name: &str) -> Result<Option<PathBuf>> {
    match m.opt_str(name) {
        Some(v) if v.is_empty() => Err(Error::Usage(format!(
            "invalid --{name} \"\": must be a path"
        ))),
        Some(v) => Ok(Some(args.path(v))),
        None => Ok(None),
    }
}

fn name_opt(m: &Matches, name: &str) -> Result<Option<String>> {
    match m.opt_str(name) {
        Some(v) if v.trim().is_empty() => Err(Error::Usage(format!(
            "invalid --{name} \"{v}\": must be a {name} name or number"
        ))),
        Some(v) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// True when the arguments ask for `--inetd`, even if they do not parse: under inetd,
/// stderr is the client's socket, so even a usage error must not be printed there.
/// Scanning stops at `--`.
pub fn inetd_requested(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| a == "--inetd")
}

/// The `--log-file` value in the arguments, even if they do not parse (`--log-file PATH`
/// or `--log-file=PATH`; the last one wins, as with getopts). Used to report a usage
/// error under `--inetd`, where the log file is the only place it may go.
pub(crate) fn log_file_requested(args: &Args) -> Option<PathBuf> {
    let mut found = None;
    let mut it = args.texts().iter().take_while(|a| a.as_str() != "--");
    while let Some(a) = it.next() {
        if a == "--log-file" {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--log-file=") {
            found = Some(v.to_string());
        }
    }
    found.filter(|v| !v.is_empty()).map(|v| args.path(v))
}

/// A getopts failure as one line naming the flag: `-p needs a value (see --help)`.
pub fn getopts_message(e: &getopts::Fail) -> String {
    use getopts::Fail;
    match e {
        Fail::ArgumentMissing(f) => format!("{} needs a value (see --help)", dashed(f)),
        Fail::UnrecognizedOption(f) => format!("unknown option {} (see --help)", dashed(f)),
        Fail::OptionMissing(f) => format!("{} is required", dashed(f)),
        Fail::OptionDuplicated(f) => format!("{} given more than once", dashed(f)),
        Fail::UnexpectedArgument(f) => format!("{} takes no value", dashed(f)),
    }
}

fn dashed(flag: &str) -> String {
    if flag.starts_with('-') {
        flag.to_string()
    } else if flag.chars().count() == 1 {
        format!("-{flag}")
    } else {
        format!("--{flag}")
    }
}

/// Parses a TCP port for `flag`; `allow_zero` admits 0 ("any free port").
///
/// # Errors
///
/// [`Error::Usage`] such as `invalid --port "70000": must be 1-65535`.
pub(crate) fn parse_port(flag: &str, value: &str, allow_zero: bool) -> Result<u16> {
    let low = if allow_zero { 0 } else { 1 };
    match value.trim().parse::<u32>() {
        Ok(p) if p >= low && p <= 65535 => Ok(p as u16),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be {low}-65535"
        ))),
    }
}

/// Parses an IPv4 or IPv6 literal (brackets allowed around IPv6).
///
/// # Errors
///
/// [`Error::Usage`] naming the flag.
pub(crate) fn parse_ip(flag: &str, value: &str) -> Result<IpAddr> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>().map_err(|_| {
        Error::Usage(format!(
            "invalid {flag} \"{value}\": must be an IPv4 or IPv6 address such as 0.0.0.0 or ::"
        ))
    })
}

/// Parses a whole number from 1 to `max`.
///
/// # Errors
///
/// [`Error::Usage`] naming the flag and the range.
pub(crate) fn parse_count(flag: &str, value: &str, max: usize) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be a whole number from 1 to {max}"
        ))),
    }
}

/// Reads seconds written as digits with an optional decimal part (`3`, `0.5`, `.5`);
/// digits finer than a nanosecond are ignored. No sign, exponent, `inf` or `NaN`.
fn seconds_value(value: &str) -> Option<Duration> {
    let v = value.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || int.len() > 9 {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Duration::new(whole, nanos))
}

/// Parses seconds written as digits with an optional decimal part (`3`, `0.5`); must be
/// more than zero and at most `max`.
///
/// # Errors
///
/// [`Error::Usage`] naming the flag.
pub fn parse_seconds(flag: &str, value: &str, max: Duration) -> Result<Duration> {
    match seconds_value(value) {
        Some(d) if !d.is_zero() && d <= max => Ok(d),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be seconds like 3 or 0.5, more than 0 and at most {}",
            max.as_secs()
        ))),
    }
}

/// Like [`parse_seconds`], but 0 is accepted.
///
/// # Errors
///
/// [`Error::Usage`] naming the flag.
pub(crate) fn parse_seconds_or_zero(flag: &str, value: &str, max: Duration) -> Result<Duration> {
    match seconds_value(value) {
        Some(d) if d <= max => Ok(d),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be seconds like 3 or 0.5, from 0 to {}",
            max.as_secs()
        ))),
    }
}

/// Parses an interval in seconds like [`parse_seconds`], where `0` means "off" (`None`);
/// at most [`config::MAX_INTERVAL`].
///
/// # Errors
///
/// [`Error::Usage`] naming the flag.
pub(crate) fn parse_interval(flag: &str, value: &str) -> Result<Option<Duration>> {
    match seconds_value(value) {
        Some(d) if d.is_zero() => Ok(None),
        Some(d) if d <= config::MAX_INTERVAL => Ok(Some(d)),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be seconds like 5 or 0.5, at most {}, or 0 for never",
            config::MAX_INTERVAL.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<Config> {
        match parse(&args(list))? {
            Command::Run(c) => Ok(c),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn usage_err(list: &[&str]) -> String {
        match parse(&args(list)) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error for {list:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.port, 843);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert!(c.binds.is_empty());
        assert_eq!(c.policy, PolicySource::Default);
        assert_eq!(c.verbosity, Verbosity::Normal);
        assert_eq!(c.reload_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.stats_interval, None);
        assert_eq!((c.user, c.group, c.inetd), (None, None, false));
    }

    #[test]
    fn deploy_flags() {
        let c = run(&[
            "--user",
            "nobody",
            "--group",
            "daemon",
            "--reload-interval",
            "0.2",
            "--stats-interval",
            "60",
        ])
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.group.as_deref(), Some("daemon"));
        assert_eq!(c.reload_interval, Some(Duration::from_millis(200)));
        assert_eq!(c.stats_interval, Some(Duration::from_secs(60)));
        for off in ["0", "0.0", "00", ".0", "0."] {
            assert_eq!(
                run(&["--reload-interval", off]).unwrap().reload_interval,
                None,
                "{off}"
            );
        }
        assert_eq!(
            run(&["--stats-interval", "0"]).unwrap().stats_interval,
            None
        );
        assert!(run(&["--inetd", "-f", "/x"]).unwrap().inetd);
        assert_eq!(
            run(&["--reload-interval", "86400"])
                .unwrap()
                .reload_interval,
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn bad_deploy_flags() {
        for v in ["", ".", "-1", "abc", "86401", "1e3", "0.0.0"] {
            assert!(
                usage_err(&["--reload-interval", v])
                    .starts_with(&format!("invalid --reload-interval \"{v}\"")),
                "{v}"
            );
        }
        assert!(usage_err(&["--stats-interval", "x"]).starts_with("invalid --stats-interval \"x\""));
        assert!(usage_err(&["--group", "daemon"]).starts_with("--group needs --user"));
        assert!(usage_err(&["--user", ""]).starts_with("invalid --user \"\""));
        assert!(usage_err(&["--inetd", "--check-config"]).contains("cannot be used together"));
        assert!(usage_err(&["--inetd", "--pid-file", "/x"]).contains("cannot be used together"));
        assert_eq!(usage_err(&["--user"]), "--user needs a value (see --help)");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_path_values_keep_their_bytes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let raw = |b: &[u8]| OsStr::from_bytes(b).to_os_string();
        let list = [
            raw(b"-p"),
            raw(b"0"),
            raw(b"-f/x\xff"),
            raw(b"--pid-file=/x\xfe"),
            raw(b"--log-file"),
            raw(b"/x\xfd"),
            // A real U+FFFD: the lossy text of the values above, never mistaken for them.
            raw("--stats-file=/x\u{FFFD}".as_bytes()),
        ];
        let c = match parse_args(&Args::from_os(list)).unwrap() {
            Command::Run(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(c.policy, PolicySource::File(PathBuf::from(raw(b"/x\xff"))));
        assert_eq!(c.pid_file, Some(PathBuf::from(raw(b"/x\xfe"))));
        assert_eq!(c.log_file, Some(PathBuf::from(raw(b"/x\xfd"))));
        assert_eq!(c.stats_file, Some(PathBuf::from("/x\u{FFFD}")));
        // A non-UTF-8 value of another flag is refused, shown lossily.
        let bad = Args::from_os([raw(b"-p"), raw(b"8\xff")]);
        match parse_args(&bad) {
            Err(Error::Usage(m)) => assert!(m.contains("\"8\u{FFFD}"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inetd_prescan() {
        assert!(inetd_requested(&args(&["-p", "1", "--inetd", "--bogus"])));
        assert!(!inetd_requested(&args(&["-p", "1"])));
        assert!(!inetd_requested(&args(&["--", "--inetd"])));
        assert_eq!(
            log_file_requested(&Args::utf8(&args(&[
                "--inetd",
                "--log-file",
                "/a",
                "--bogus"
            ]))),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            log_file_requested(&Args::utf8(&args(&["--log-file=/b", "--log-file=/c"]))),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            log_file_requested(&Args::utf8(&args(&["--log-file"]))),
            None
        );
        assert_eq!(
            log_file_requested(&Args::utf8(&args(&["--", "--log-file", "/a"]))),
            None
        );
    }

    #[test]
    fn every_flag() {
        let c = run(&[
            "-p",
            "8843",
            "-b",
            "127.0.0.1",
            "--bind",
            "::1",
            "-t",
            "0.5",
            "-w",
            "4",
            "--max-pending",
            "10",
            "--log-file",
            "/tmp/x.log",
            "--pid-file",
            "/tmp/x.pid",
            "--check-config",
            "-vv",
        ])
        .unwrap();
        assert_eq!(c.port, 8843);
        assert_eq!(
            c.binds,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.workers, 4);
        assert_eq!(c.max_pending, 10);
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/x.log")));
        assert_eq!(c.pid_file, Some(PathBuf::from("/tmp/x.pid")));
        assert!(c.check_config);
        assert_eq!(c.verbosity, Verbosity::Trace);
        assert_eq!(run(&["-q"]).unwrap().verbosity, Verbosity::Quiet);
        assert_eq!(run(&["-v"]).unwrap().verbosity, Verbosity::Debug);
        assert_eq!(run(&["-p", "0"]).unwrap().port, 0);
        assert_eq!(
            run(&["-b", "[::]"]).unwrap().binds,
            vec!["::".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn policy_sources() {
        match run(&["-f", "/etc/crossdomain.xml"]).unwrap().policy {
            PolicySource::File(p) => assert_eq!(p, PathBuf::from("/etc/crossdomain.xml")),
            other => panic!("{other:?}"),
        }
        match run(&["-a", "*.example.com:80", "--allow", "*"])
            .unwrap()
            .policy
        {
            PolicySource::Allow(specs, given) => {
                assert_eq!(specs.len(), 2);
                assert_eq!(given, vec!["*.example.com:80", "*"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(usage_err(&["-f", "x", "-a", "*"]).contains("--file and --allow"));
        assert!(usage_err(&["-a", "bad domain!:80"])
            .starts_with("invalid --allow \"bad domain!:80\": "));
    }

    /// Found by fuzzing (tests/fuzz/corpus/allow_spec/regression-too-many-specs): enough
    /// --allow values made a policy over MAX_POLICY_BYTES, served with the size error
    /// logged as a mere warning.
    #[test]
    fn too_many_allows_are_refused() {
        let many = |n: usize| {
            let mut list = Vec::new();
            for _ in 0..n {
                list.extend(["-a", "*"]);
            }
            list
        };
        assert!(parse(&args(&many(150))).is_ok());
        let err = usage_err(&many(250));
        assert!(err.starts_with("too many --allow values: the generated policy is "));
        assert!(
            err.ends_with("more than the 10000 a policy may have"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert_eq!(
            usage_err(&["-p", "70000"]),
            "invalid --port \"70000\": must be 0-65535"
        );
        assert!(usage_err(&["-p", "abc"]).starts_with("invalid --port \"abc\""));
        assert!(usage_err(&["-p", "-1"]).starts_with("invalid --port \"-1\""));
        for t in [
            "0", "-1", "abc", "", ".", "1.2.3", "1e3", "inf", "NaN", "3601",
        ] {
            assert!(
                usage_err(&["-t", t]).starts_with(&format!("invalid --timeout \"{t}\"")),
                "{t}"
            );
        }
        assert!(usage_err(&["-w", "0"]).starts_with("invalid --workers \"0\""));
        assert!(usage_err(&["-w", "4097"]).starts_with("invalid --workers"));
        assert!(usage_err(&["--max-pending", "x"]).starts_with("invalid --max-pending"));
        assert!(usage_err(&["-b", "not-an-ip"]).starts_with("invalid --bind \"not-an-ip\""));
        assert!(usage_err(&["--log-file", ""]).starts_with("invalid --log-file"));
        assert_eq!(usage_err(&["-p"]), "-p needs a value (see --help)");
        assert_eq!(usage_err(&["--port"]), "--port needs a value (see --help)");
        assert!(usage_err(&["--bogus"]).contains("unknown option --bogus"));
        assert!(usage_err(&["-p", "1", "-p", "2"]).contains("more than once"));
        assert!(usage_err(&["stray"]).contains("unexpected argument \"stray\""));
        assert!(usage_err(&["-v", "-q"]).contains("-v and -q"));
    }

    #[test]
    fn stats_file_defaults_the_interval_to_15_seconds() {
        let c = run(&["--stats-file", "/var/lib/prom/flashpolicyd.prom"]).unwrap();
        assert_eq!(
            c.stats_file,
            Some(PathBuf::from("/var/lib/prom/flashpolicyd.prom"))
        );
        assert_eq!(c.stats_interval, Some(Duration::from_secs(15)));
        // An explicit --stats-interval wins, in either order; 0 = only at start and stop.
        for list in [
            ["--stats-file", "x.prom", "--stats-interval", "2.5"],
            ["--stats-interval", "2.5", "--stats-file", "x.prom"],
        ] {
            assert_eq!(
                run(&list).unwrap().stats_interval,
                Some(Duration::from_millis(2500))
            );
        }
        let c = run(&["--stats-file", "x.prom", "--stats-interval", "0"]).unwrap();
        assert_eq!(c.stats_interval, None);
        assert_eq!(run(&[]).unwrap().stats_file, None);
    }

    #[test]
    fn stats_file_errors_name_the_flag() {
        assert!(usage_err(&["--stats-file", ""]).starts_with("invalid --stats-file \"\""));
        assert!(usage_err(&["--stats-file", "/"])
            .starts_with("invalid --stats-file \"/\": must name a file"));
        assert!(usage_err(&["--inetd", "--stats-file", "/tmp/x.prom"])
            .contains("--inetd and --stats-file cannot be used together"));
    }

    #[test]
    fn file_if_exists_falls_back_only_when_the_path_does_not_exist() {
        let dir = std::env::temp_dir().join(format!("fpd-cli-fie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let present = dir.join("policy.xml");
        std::fs::write(&present, "x").unwrap();
        let missing = dir.join("absent.xml");
        let dangling = dir.join("dangling.xml");
        let _ = std::fs::remove_file(&dangling);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&missing, &dangling).unwrap();
        let arg = |p: &std::path::Path| p.to_str().unwrap().to_string();
        assert_eq!(
            run(&["--file-if-exists", &arg(&present)]).unwrap().policy,
            PolicySource::File(present.clone())
        );
        assert_eq!(
            run(&["--file-if-exists", &arg(&missing)]).unwrap().policy,
            PolicySource::Default
        );
        // A dangling symlink is a mistake to report, not an absent mount.
        #[cfg(unix)]
        assert_eq!(
            run(&["--file-if-exists", &arg(&dangling)]).unwrap().policy,
            PolicySource::File(dangling.clone())
        );
        assert!(usage_err(&["--file-if-exists", "", "-p", "1"])
            .starts_with("invalid --file-if-exists \"\""));
        assert!(usage_err(&["--file-if-exists", "/x", "-f", "/y"])
            .contains("--file and --file-if-exists cannot be used together"));
        assert!(usage_err(&["--file-if-exists", "/x", "-a", "*"])
            .contains("--file-if-exists and --allow cannot be used together"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn seconds() {
        let max = Duration::from_secs(3600);
        assert_eq!(
            parse_seconds("-t", "3", max).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            parse_seconds("-t", "0.25", max).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_seconds("-t", ".5", max).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_seconds("-t", "2.", max).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(parse_seconds("-t", "3600", max).unwrap(), max);
        assert_eq!(
            parse_seconds("-t", "0.0000000019", max).unwrap(),
            Duration::from_nanos(1)
        );
        assert!(parse_seconds("-t", "0.0000000001", max).is_err());
        assert!(parse_seconds("-t", "99999999999999999999", max).is_err());
    }

    #[test]
    fn help_and_version() {
        match parse(&args(&["-h"])).unwrap() {
            Command::Help(t) => {
                for flag in [
                    "--port",
                    "--bind",
                    "--file",
                    "--allow",
                    "--timeout",
                    "--workers",
                    "--max-pending",
                    "--log-file",
                    "--pid-file",
                    "--check-config",
                    "--user",
                    "--group",
                    "--inetd",
                    "--reload-interval",
                    "--stats-interval",
                    "--stats-file",
                    "--verbose",
                    "--quiet",
                    "--help",
                    "--version",
                ] {
                    assert!(t.contains(flag), "help lacks {flag}");
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse(&args(&["-V"])).unwrap(), Command::Version(v) if v.starts_with("flashpolicyd "))
        );
    }
}
