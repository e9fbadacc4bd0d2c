//! The rules for one grant: does its `domain` match the SWF's, do its `to-ports`
//! cover the destination, does `secure` exclude the SWF, does the low-port rule let
//! the serving port grant it (docs/protocol.md §4–5).

use std::fmt;
use std::net::IpAddr;

use crate::policy::{AllowAccessFrom, ToPorts};

use crate::protocol::LOW_PORT_LIMIT;

/// The domain a SWF was loaded from, as the player compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwfDomain {
    /// Loaded by IP address: only `*` and that exact address match it.
    Ip(IpAddr),
    /// Loaded by host name, stored in lower case.
    Name(String),
}

impl SwfDomain {
    /// Parses `-d/--domain`: an IPv4 or IPv6 address (brackets allowed) or a host name.
    ///
    /// # Errors
    ///
    /// Returns what is wrong, in words, when the text is neither an address nor a
    /// syntactically valid host name (empty, a `*`, spaces, empty labels...).
    pub fn parse(text: &str) -> Result<SwfDomain, String> {
        if let Some(ip) = parse_ip(text) {
            return Ok(SwfDomain::Ip(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty()
            || name.len() > 253
            || !name.split('.').all(valid_label)
            || ends_in_number(name)
        {
            return Err("must be a host name or an IP address".to_string());
        }
        Ok(SwfDomain::Name(name.to_ascii_lowercase()))
    }
}

impl fmt::Display for SwfDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwfDomain::Ip(ip) => write!(f, "{ip}"),
            SwfDomain::Name(name) => f.write_str(name),
        }
    }
}

/// The question the player answers: may a SWF from `domain` connect to `to_port`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    /// Where the SWF was loaded from.
    pub domain: SwfDomain,
    /// The port the SWF wants to connect to.
    pub to_port: u16,
    /// The SWF was served over HTTPS.
    pub secure: bool,
}

/// Parses an IP address, with or without the brackets of a URL (`-d` only: in a
/// policy the validator calls a bracketed value a pattern that never matches).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok().map(canonical)
}

/// Maps IPv4-mapped IPv6 addresses to IPv4, so that `::ffff:10.0.0.1` and `10.0.0.1`
/// compare equal.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A last label of digits only: a broken address, not a host name.
fn ends_in_number(host: &str) -> bool {
    host.rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

/// Host-name syntax as the validator checks it: labels of letters, digits and inner
/// hyphens. A pattern that fails it is reported by the validator as never matching,
/// and so it matches nothing here.
fn is_host_pattern(host: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.len() <= 253 && host.split('.').all(label_ok) && !ends_in_number(host)
}

/// Whether a `domain` attribute matches the SWF's domain.
///
/// `*` matches everything, IP addresses included; `*.example.com` matches
/// `example.com` and all its subdomains (only the leftmost label may be a wildcard: any
/// other `*` matches nothing); an IP pattern matches only that address; any other
/// pattern is a host name compared case-insensitively, and matches nothing unless it
/// has host-name syntax (the validator warns about such patterns). Host-name patterns never match
/// an IP and IP patterns never match a host name: no DNS is done.
pub fn domain_matches(pattern: &str, swf: &SwfDomain) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return matches!(swf, SwfDomain::Ip(s) if *s == canonical(ip));
    }
    let name = match swf {
        SwfDomain::Name(name) => name,
        SwfDomain::Ip(_) => return false,
    };
    if let Some(suffix) = pattern.strip_prefix("*.") {
        if !is_host_pattern(suffix) {
            return false;
        }
        let suffix = suffix.to_ascii_lowercase();
        return *name == suffix
            || (name.len() > suffix.len()
                && name.ends_with(&suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.');
    }
    is_host_pattern(pattern) && pattern.eq_ignore_ascii_case(name)
}

/// Whether `to-ports` covers `port`.
pub fn ports_match(to_ports: &ToPorts, port: u16) -> bool {
    match to_ports {
        ToPorts::Any => true,
        ToPorts::Ranges(ranges) => ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi),
    }
}

/// The low-port rule: may a policy served from `served_from` grant `to_port`?
pub(crate) fn low_port_allows(served_from: u16, to_port: u16) -> bool {
    served_from < LOW_PORT_LIMIT || to_port >= LOW_PORT_LIMIT
}

/// The verdict on one `allow-access-from`, checks in this order: domain, port,
/// secure, low-port rule. The first that fails is the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Domain, port, secure and the low-port rule all agree: access is granted.
    Grants,
    /// `domain` does not match the SWF's domain.
    OtherDomain,
    /// The domain matches, `to-ports` does not cover the port.
    OtherPort,
    /// Domain and port match, but `secure="true"` and the SWF is not served over HTTPS.
    NeedsSecure,
    /// Everything matches, but the policy is served from a port >= 1024 and the
    /// destination is below 1024.
    LowPort,
}

impl Grant {
    /// A few words for `-v`: `grants access`, `domain does not match`...
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Grant::Grants => "grants access",
            Grant::OtherDomain => "domain does not match",
            Grant::OtherPort => "domain matches, port not in to-ports",
            Grant::NeedsSecure => "requires secure (HTTPS) SWFs",
            Grant::LowPort => "blocked by the low-port rule",
        }
    }
}

/// Judges one grant of a policy served from port `served_from`.
pub(crate) fn judge(element: &AllowAccessFrom, question: &Question, served_from: u16) -> Grant {
    if !domain_matches(&element.domain, &question.domain) {
        Grant::OtherDomain
    } else if !ports_match(&element.to_ports, question.to_port) {
        Grant::OtherPort
    } else if element.secure && !question.secure {
        Grant::NeedsSecure
    } else if !low_port_allows(served_from, question.to_port) {
        Grant::LowPort
    } else {
        Grant::Grants
    }
}
