//! The option parsers the three command lines share (`flashpolicyd`, `flashpolicy-check`,
//! `flashpolicy-bench`): ports, addresses, counts and seconds become typed values. Each
//! fails with one [`Error::Usage`] line naming the flag and the bad value. One addition
//! to getopts: [`Args`], the arguments as the OS gives them (getopts takes only UTF-8;
//! a path keeps its bytes).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

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

/// Parses a TCP port for `flag`; `allow_zero` admits 0 ("any free port"). Fails with
/// [`Error::Usage`] such as `invalid --port "70000": must be 1-65535`.
pub(crate) fn parse_port(flag: &str, value: &str, allow_zero: bool) -> Result<u16> {
    parse_number(flag, value, u16::from(!allow_zero), u16::MAX)
}

/// Parses a number from `min` to `max`.
///
/// # Errors
///
/// [`Error::Usage`] such as `invalid --clients "x": must be 0-4096`.
pub fn parse_number<T>(flag: &str, value: &str, min: T, max: T) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match value.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be {min}-{max}"
        ))),
    }
}

/// Parses an IPv4 or IPv6 literal (brackets allowed around IPv6).
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
pub(crate) fn seconds_value(value: &str) -> Option<Duration> {
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
pub(crate) fn parse_seconds_or_zero(flag: &str, value: &str, max: Duration) -> Result<Duration> {
    match seconds_value(value) {
        Some(d) if d <= max => Ok(d),
        _ => Err(Error::Usage(format!(
            "invalid {flag} \"{value}\": must be seconds like 3 or 0.5, from 0 to {}",
            max.as_secs()
        ))),
    }
}
