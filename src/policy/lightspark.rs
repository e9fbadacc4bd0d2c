//! A socket policy as Lightspark reads it (protocol.md §7; its
//! src/parsing/crossdomainpolicy.cpp and src/backends/security.cpp): the same XML,
//! a different grammar. One invalid element voids the whole file; values are taken
//! as written; every `to-ports` item grants only the number it starts with.
//!
//! Pure: the bytes in, an [`LsDocument`] out. The decision over master and
//! destination policies lives in `evaluate::lightspark`.

use std::fmt;

use super::encoding;
use super::reader::{Attr, Event, Reader};
use super::Diagnostic;

/// Lightspark's rules where it reads or fetches a policy unlike Flash Player, each
/// with a stable name used in messages (`[lightspark: site-control-not-master]`),
/// documentation and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Only what the first short read returns is kept (reads of exactly 4,096 bytes
    /// continue): a reply in two writes is cut.
    FirstRead,
    /// The reply must end in NUL, `>` or newline; bytes after the NUL void it.
    Framing,
    /// Not well-formed XML: the whole file is void.
    NotXml,
    /// The root element is not `cross-domain-policy`.
    RootName,
    /// Child elements are not looked at: an element with children is read as if
    /// they were not there (a note, not a fault; checked against the running player).
    NestedElement,
    /// `site-control` in a policy not served from port 843 voids the whole file.
    SiteControlNotMaster,
    /// A second `site-control` voids the whole file.
    SiteControlRepeated,
    /// `site-control` with other than exactly one attribute, or without a
    /// `permitted-cross-domain-policies` value, voids the whole file.
    SiteControlAttributes,
    /// An unknown meta-policy value acts as `none`: nothing is honoured.
    MetaUnknown,
    /// An `allow-access-from` with no attribute or more than three (unknown ones
    /// count) voids the whole file.
    AllowAttributes,
    /// An `allow-access-from` with an empty or missing `domain` or `to-ports` voids
    /// the whole file.
    AllowEmpty,
    /// `allow-http-request-headers-from` in a socket policy voids the whole file.
    HttpHeadersElement,
    /// Values are compared as written: surrounding spaces are not trimmed.
    Untrimmed,
    /// Each `to-ports` item grants only the number it starts with (`atoi`): a range
    /// grants its first port alone.
    RangeFirstPort,
    /// A `*` item followed later by an item with a dash is lost.
    StarLost,
    /// No low-port rule: a policy from a port >= 1024 may grant ports below 1024.
    NoLowPortRule,
    /// The destination port is asked only when the master's meta-policy is `all`
    /// (or absent); an unusable master lets it be asked.
    FetchOrder,
    /// A reply longer than one TCP segment (about 1,400 bytes) may arrive in pieces
    /// and be cut at the first (see [`Rule::FirstRead`]).
    ReplySize,
}

impl Rule {
    /// The stable name, as printed.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rule::FirstRead => "first-read",
            Rule::Framing => "framing",
            Rule::NotXml => "not-xml",
            Rule::RootName => "root-name",
            Rule::NestedElement => "nested-element",
            Rule::SiteControlNotMaster => "site-control-not-master",
            Rule::SiteControlRepeated => "site-control-repeated",
            Rule::SiteControlAttributes => "site-control-attributes",
            Rule::MetaUnknown => "meta-unknown",
            Rule::AllowAttributes => "allow-attributes",
            Rule::AllowEmpty => "allow-empty",
            Rule::HttpHeadersElement => "http-headers-element",
            Rule::Untrimmed => "untrimmed-value",
            Rule::RangeFirstPort => "range-first-port",
            Rule::StarLost => "star-lost",
            Rule::NoLowPortRule => "no-low-port-rule",
            Rule::FetchOrder => "fetch-order",
            Rule::ReplySize => "reply-size",
        }
    }
}

/// `[lightspark: NAME]`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[lightspark: {}]", self.name())
    }
}

/// A meta-policy as Lightspark reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsMeta {
    /// `all`.
    All,
    /// `master-only`.
    MasterOnly,
    /// `none`.
    None,
    /// `by-content-type` or `by-ftp-filename`: not `all`, so no destination policy.
    Http(String),
    /// Anything else: acts as `none`.
    Unknown(String),
}

impl LsMeta {
    fn parse(value: &str) -> LsMeta {
        match value {
            "all" => LsMeta::All,
            "master-only" => LsMeta::MasterOnly,
            "none" => LsMeta::None,
            "by-content-type" | "by-ftp-filename" => LsMeta::Http(value.to_string()),
            other => LsMeta::Unknown(other.to_string()),
        }
    }

    /// Whether nothing at all is honoured (`none`, or an unknown value).
    pub(crate) fn denies_all(&self) -> bool {
        matches!(self, LsMeta::None | LsMeta::Unknown(_))
    }
}

/// `site-control` as Lightspark keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsSiteControl {
    /// The value as written.
    pub value: String,
    /// Its meaning.
    pub meta: LsMeta,
    /// 1-based line.
    pub line: usize,
}

/// The ports one `to-ports` value grants in Lightspark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsPorts {
    /// A `*` item survived: every port.
    pub any: bool,
    /// The single ports granted (one per item; 0 grants nothing).
    pub ports: Vec<u16>,
}

impl LsPorts {
    /// Reads a `to-ports` value exactly as Lightspark's `PolicyAllowAccessFrom` does:
    /// empty or `*` is every port; otherwise for each comma-separated item, the text
    /// from the item's start up to the first dash *after the item's comma* (or to the
    /// comma) is either exactly `*` (every port, and the scan stops) or goes through
    /// C's `atoi` and is truncated to 16 bits.
    pub(crate) fn parse(text: &str) -> LsPorts {
        let mut out = LsPorts {
            any: false,
            ports: Vec::new(),
        };
        if text.is_empty() || text == "*" {
            out.any = true;
            return out;
        }
        let mut cursor = 0;
        loop {
            let comma = text[cursor..].find(',').map(|i| i + cursor);
            // Lightspark searches the dash from the comma on, not from the cursor.
            let dash = comma.and_then(|c| text[c..].find('-').map(|i| i + c));
            let item = match (dash, comma) {
                (Some(d), _) => &text[cursor..d],
                (None, Some(c)) => &text[cursor..c],
                (None, None) => &text[cursor..],
            };
            if item == "*" {
                out.any = true;
                return out;
            }
            out.ports.push(atoi(item) as u16);
            match comma {
                Some(c) => cursor = c + 1,
                None => return out,
            }
        }
    }

    /// Whether `port` is granted (port 0 never is).
    pub(crate) fn contains(&self, port: u16) -> bool {
        port != 0 && (self.any || self.ports.contains(&port))
    }
}

/// C's `atoi` as glibc does it (`(int) strtol(s, NULL, 10)`): leading white space, an
/// optional sign, digits; saturating like `strtol`, then truncated to `int`.
pub(crate) fn atoi(text: &str) -> i32 {
    let s = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    let mut overflow = false;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    let long = match (overflow, negative) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        (false, true) => -value,
        (false, false) => value,
    };
    long as i32
}

/// One `allow-access-from` as Lightspark keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsGrant {
    /// `domain`, as written.
    pub domain: String,
    /// `to-ports`, as written.
    pub to_ports_text: String,
    /// What `to-ports` grants.
    pub ports: LsPorts,
    /// `secure` is exactly `true`.
    pub secure: bool,
    /// 1-based line.
    pub line: usize,
}

/// Why a file is void: the first invalid element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Void {
    /// The rule.
    pub rule: Rule,
    /// 1-based line (0: the whole document).
    pub line: usize,
    /// What is wrong, in words.
    pub message: String,
}

/// Something Lightspark reads differently from what is written, without voiding the
/// file (a child element it does not look at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsNote {
    /// The rule.
    pub rule: Rule,
    /// 1-based line.
    pub line: usize,
    /// What Lightspark does, in words.
    pub message: String,
}

/// A policy document as Lightspark reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LsDocument {
    /// The meta-policy, if read.
    pub site_control: Option<LsSiteControl>,
    /// The grants read, in order (meaningless when `void`).
    pub grants: Vec<LsGrant>,
    /// `Some` when an invalid element voids the whole file: the first one.
    pub void: Option<Void>,
    /// Every invalid element, in order (Lightspark stops at the first; this goes on,
    /// so that an operator hears of all of them at once).
    pub invalid: Vec<Void>,
    /// What Lightspark reads as if it were not there, in order.
    pub notes: Vec<LsNote>,
}

/// Reads a policy document (after the reply's last byte was dropped) as Lightspark
/// does; `master` is true for the policy it fetched from port 843.
///
/// The first invalid element voids the file; reading goes on past it only to list
/// the others in [`LsDocument::invalid`] (a grant read after it counts for nothing).
/// In a master, reading stops right after a `site-control` that honours nothing
/// (`none` or an unknown value), as Lightspark's loop does.
pub fn read(bytes: &[u8], master: bool) -> LsDocument {
    let mut doc = read_all(bytes, master);
    doc.void = doc.invalid.first().cloned();
    doc
}

fn read_all(bytes: &[u8], master: bool) -> LsDocument {
    let mut doc = LsDocument::default();
    let void = |rule, line, message: String| Void {
        rule,
        line,
        message,
    };
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let text = match encoding::decode(bytes, &mut diagnostics) {
        Some(text) => text,
        None => {
            let d = diagnostics
                .into_iter()
                .find(|d| d.severity == super::Severity::Error);
            let (line, message) =
                d.map_or((0, "not a policy".to_string()), |d| (d.line, d.message));
            doc.invalid.push(void(Rule::NotXml, line, message));
            return doc;
        }
    };
    let mut reader = Reader::new(text);
    let mut depth = 0usize;
    let mut parents: Vec<String> = Vec::new();
    loop {
        let event = match reader.next_event() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => {
                let msg = format!("not well-formed: {}", e.message);
                doc.invalid.push(void(Rule::NotXml, e.line, msg));
                break;
            }
        };
        let (name, attrs, line) = match event {
            Event::Start { name, attrs, line } => (name, attrs, line),
            Event::End => {
                depth = depth.saturating_sub(1);
                parents.pop();
                continue;
            }
            Event::Doctype { .. } | Event::Text { .. } => continue,
        };
        let at = depth;
        depth += 1;
        parents.push(name.to_string());
        if at == 0 {
            if name != "cross-domain-policy" {
                let msg = format!("root element is <{name}>, not <cross-domain-policy>");
                doc.invalid.push(void(Rule::RootName, line, msg));
                break;
            }
            continue;
        }
        if at > 1 {
            let parent = parents.get(at - 1).cloned().unwrap_or_default();
            // Not looked at: the parent counts as if this child were not there.
            doc.notes.push(LsNote {
                rule: Rule::NestedElement,
                line,
                message: format!(
                    "<{name}> inside <{parent}>: Lightspark does not look at child elements \
                     and reads <{parent}> as if it were not there"
                ),
            });
            continue;
        }
        let result = match name {
            "site-control" => site_control(&mut doc, &attrs, line, master),
            "allow-access-from" => allow_access_from(&mut doc, &attrs, line),
            "allow-http-request-headers-from" => Err(void(
                Rule::HttpHeadersElement,
                line,
                "allow-http-request-headers-from is an HTTP policy element".to_string(),
            )),
            _ => Ok(()),
        };
        if let Err(v) = result {
            doc.invalid.push(v);
        }
        if master
            && doc
                .site_control
                .as_ref()
                .is_some_and(|s| s.meta.denies_all())
        {
            break;
        }
    }
    doc
}

fn value(attrs: &[Attr<'_>], name: &str) -> String {
    attrs
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.clone())
        .unwrap_or_default()
}

fn site_control(
    doc: &mut LsDocument,
    attrs: &[Attr<'_>],
    line: usize,
    master: bool,
) -> Result<(), Void> {
    let fail = |rule, message: String| {
        Err(Void {
            rule,
            line,
            message,
        })
    };
    if !master {
        return fail(
            Rule::SiteControlNotMaster,
            "site-control in a policy not served from port 843".to_string(),
        );
    }
    if let Some(first) = &doc.site_control {
        return fail(
            Rule::SiteControlRepeated,
            format!("site-control repeated (first on line {})", first.line),
        );
    }
    if attrs.len() != 1 {
        return fail(
            Rule::SiteControlAttributes,
            format!(
                "site-control has {} attributes, not exactly one",
                attrs.len()
            ),
        );
    }
    let value = value(attrs, "permitted-cross-domain-policies");
    if value.is_empty() {
        return fail(
            Rule::SiteControlAttributes,
            "site-control without a permitted-cross-domain-policies value".to_string(),
        );
    }
    doc.site_control = Some(LsSiteControl {
        meta: LsMeta::parse(&value),
        value,
        line,
    });
    Ok(())
}

fn allow_access_from(doc: &mut LsDocument, attrs: &[Attr<'_>], line: usize) -> Result<(), Void> {
    if attrs.is_empty() || attrs.len() > 3 {
        return Err(Void {
            rule: Rule::AllowAttributes,
            line,
            message: format!(
                "allow-access-from has {} attributes (1 to 3 are read)",
                attrs.len()
            ),
        });
    }
    let domain = value(attrs, "domain");
    let to_ports = value(attrs, "to-ports");
    for (name, v) in [("domain", &domain), ("to-ports", &to_ports)] {
        if v.is_empty() {
            return Err(Void {
                rule: Rule::AllowEmpty,
                line,
                message: format!("allow-access-from with an empty or missing {name}"),
            });
        }
    }
    doc.grants.push(LsGrant {
        ports: LsPorts::parse(&to_ports),
        secure: value(attrs, "secure") == "true",
        domain,
        to_ports_text: to_ports,
        line,
    });
    Ok(())
}

/// Lightspark's domain match (`URLInfo::matchesDomain`): both sides lower-cased,
/// then `*`, the exact string, or `*.x` matching `x` and anything ending in `.x`.
/// No trimming, no DNS, no address parsing.
pub(crate) fn domain_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(base) => host == base || host.ends_with(&pattern[1..]),
        None => false,
    }
}

#[cfg(test)]
mod tests;
