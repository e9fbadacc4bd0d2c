//! The socket-policy grammar (protocol.md §4) on top of the XML reader, as Flash
//! Player reads it: what it would reject is an error; what a player would misread, or
//! what says something other than the operator likely meant, is a warning; what is
//! true and useful but needs no fix is a note. Lightspark's stricter reading, which
//! depends on the port a policy is served from, is `evaluate::lightspark::hazards`.
//!
//! Choices where the protocol is silent: elements nested inside `allow-access-from`
//! or `site-control` and non-whitespace text or CDATA inside the root are notes
//! (Flash Player ignores them); whatever sits inside an ignored element is not examined.

use super::allow::check_domain;
use super::encoding;
use super::reader::{Attr, Event, Reader};
use super::{
    quote, AllowAccessFrom, Diagnostic, Document, MetaPolicy, Report, Severity, SiteControl,
    ToPorts,
};

const ROOT: &str = "cross-domain-policy";
const SITE_CONTROL: &str = "site-control";
const ALLOW: &str = "allow-access-from";
const PERMITTED: &str = "permitted-cross-domain-policies";

/// Validates a policy document (without its terminating NUL).
///
/// Never panics, whatever the bytes. The report's `document` is `Some` only when
/// there is no error; its diagnostics are sorted by line, whole-document ones
/// (line 0) first. Size, encoding and XML well-formedness problems end the check
/// at the first one; grammar problems are all reported.
pub fn validate(bytes: &[u8]) -> Report {
    let mut v = Validator::default();
    if let Some(text) = encoding::decode(bytes, &mut v.diagnostics) {
        v.parse(text);
    }
    v.finish()
}

/// What the element being read is, for its children.
#[derive(Clone, Copy)]
enum Frame {
    Root,
    /// `site-control` or `allow-access-from`: children and text get a warning.
    Known(&'static str),
    /// Ignored by players, and so are its contents.
    Silent,
}

#[derive(Default)]
struct Validator {
    diagnostics: Vec<Diagnostic>,
    document: Document,
    stack: Vec<Frame>,
    root_ok: bool,
    site_control_line: Option<usize>,
    grants: usize,
    /// Line of a `site-control none`, judged at the end (with or without grants).
    none_line: Option<usize>,
}

impl Validator {
    fn push(&mut self, severity: Severity, line: usize, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            line,
            message,
        });
    }

    fn error(&mut self, line: usize, message: String) {
        self.push(Severity::Error, line, message);
    }

    fn warn(&mut self, line: usize, message: String) {
        self.push(Severity::Warning, line, message);
    }

    fn note(&mut self, line: usize, message: String) {
        self.push(Severity::Note, line, message);
    }

    fn parse(&mut self, text: &str) {
        let mut reader = Reader::new(text);
        loop {
            match reader.next_event() {
                Ok(None) => break,
                Ok(Some(event)) => self.event(event),
                Err(e) => {
                    self.error(e.line, format!("not well-formed: {}", e.message));
                    break;
                }
            }
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Doctype { name, line } => {
                if name != ROOT {
                    let msg = format!("DOCTYPE names <{name}>, not <{ROOT}> (players ignore it)");
                    self.note(line, msg);
                }
            }
            Event::Start { name, attrs, line } => {
                let frame = match self.stack.last().copied() {
                    None => self.root(name, &attrs, line),
                    Some(Frame::Root) => self.child(name, &attrs, line),
                    Some(Frame::Known(parent)) => {
                        self.note(
                            line,
                            format!(
                                "{parent}: child element <{name}> is ignored by Flash Player \
                                 (and by Lightspark)"
                            ),
                        );
                        Frame::Silent
                    }
                    Some(Frame::Silent) => Frame::Silent,
                };
                self.stack.push(frame);
            }
            Event::End => {
                self.stack.pop();
            }
            Event::Text { text, line } => {
                let text = quote(&text);
                match self.stack.last() {
                    Some(Frame::Root) => {
                        self.note(line, format!("{ROOT}: text {text} is ignored by players"))
                    }
                    Some(Frame::Known(parent)) => {
                        self.note(line, format!("{parent}: text {text} is ignored by players"));
                    }
                    _ => {}
                }
            }
        }
    }

    fn root(&mut self, name: &str, attrs: &[Attr<'_>], line: usize) -> Frame {
        if name != ROOT {
            self.error(line, format!("root element is <{name}>, not <{ROOT}>"));
            return Frame::Silent;
        }
        self.root_ok = true;
        for attr in attrs {
            self.error(
                attr.line,
                format!("{ROOT}: attribute \"{}\" is not allowed", attr.name),
            );
        }
        Frame::Root
    }

    fn child(&mut self, name: &str, attrs: &[Attr<'_>], line: usize) -> Frame {
        match name {
            SITE_CONTROL => {
                self.site_control(attrs, line);
                Frame::Known(SITE_CONTROL)
            }
            ALLOW => {
                self.allow_access_from(attrs, line);
                Frame::Known(ALLOW)
            }
            "allow-http-request-headers-from" => {
                let msg = format!(
                    "{name}: an HTTP policy element, ignored by Flash Player in a socket policy \
                     (Lightspark voids a socket policy that has one)"
                );
                self.note(line, msg);
                Frame::Silent
            }
            "allow-access-from-identity" => {
                self.note(
                    line,
                    format!("{name}: an HTTP policy element, ignored by players"),
                );
                Frame::Silent
            }
            _ => {
                let hint = [SITE_CONTROL, ALLOW]
                    .into_iter()
                    .find(|known| known.eq_ignore_ascii_case(name))
                    .map(|known| format!(" (names are case-sensitive: <{known}>)"))
                    .unwrap_or_default();
                self.warn(
                    line,
                    format!("unknown element <{name}> is ignored by players{hint}"),
                );
                Frame::Silent
            }
        }
    }

    /// Reports surrounding whitespace (Lightspark rejects the file); true if clean.
    fn trimmed(&mut self, element: &str, attr: &Attr<'_>) -> bool {
        let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        if attr.value.starts_with(ws) || attr.value.ends_with(ws) {
            let msg = format!(
                "{element}: {} {} has leading or trailing whitespace",
                attr.name,
                quote(&attr.value)
            );
            self.error(attr.line, msg);
            return false;
        }
        true
    }

    fn site_control(&mut self, attrs: &[Attr<'_>], line: usize) {
        if let Some(first) = self.site_control_line {
            self.error(
                line,
                format!("{SITE_CONTROL}: repeated (first on line {first})"),
            );
        }
        let mut permitted = None;
        let mut present = false;
        for attr in attrs {
            if attr.name != PERMITTED {
                self.error(
                    attr.line,
                    format!("{SITE_CONTROL}: unknown attribute \"{}\"", attr.name),
                );
                continue;
            }
            present = true;
            if !self.trimmed(SITE_CONTROL, attr) {
                continue;
            }
            let value = quote(&attr.value);
            permitted = match attr.value.as_str() {
                "none" => Some(MetaPolicy::None),
                "master-only" => Some(MetaPolicy::MasterOnly),
                "by-content-type" => Some(MetaPolicy::ByContentType),
                "by-ftp-filename" => Some(MetaPolicy::ByFtpFilename),
                "all" => Some(MetaPolicy::All),
                _ => {
                    let msg = format!(
                        "{SITE_CONTROL}: {PERMITTED} {value} is not one of none, master-only, \
                         by-content-type, by-ftp-filename, all"
                    );
                    self.error(attr.line, msg);
                    None
                }
            };
            match permitted {
                Some(MetaPolicy::None) if self.none_line.is_none() => {
                    self.none_line = Some(attr.line);
                }
                Some(MetaPolicy::ByContentType | MetaPolicy::ByFtpFilename) => self.warn(
                    attr.line,
                    format!("{SITE_CONTROL}: {PERMITTED} {value} is for HTTP/FTP policies and means nothing for sockets (players then ask no other port, as with master-only)"),
                ),
                _ => {}
            }
        }
        if !present {
            self.error(line, format!("{SITE_CONTROL}: missing {PERMITTED}"));
        }
        if self.site_control_line.is_none() {
            self.site_control_line = Some(line);
            self.document.site_control = permitted.map(|permitted| SiteControl { permitted, line });
        }
    }

    fn allow_access_from(&mut self, attrs: &[Attr<'_>], line: usize) {
        self.grants += 1;
        let (mut has_domain, mut has_ports) = (false, false);
        let mut domain = None;
        let mut ports = None;
        let mut secure = false;
        for attr in attrs {
            match attr.name {
                "domain" => has_domain = true,
                "to-ports" => has_ports = true,
                "secure" => {}
                other => {
                    self.error(attr.line, format!("{ALLOW}: unknown attribute \"{other}\""));
                    continue;
                }
            }
            if !self.trimmed(ALLOW, attr) {
                continue;
            }
            let value = &attr.value;
            match attr.name {
                "domain" => {
                    if let Err(reason) = check_domain(value) {
                        let msg = format!(
                            "{ALLOW}: domain {} {reason}, so it never matches",
                            quote(value)
                        );
                        self.warn(attr.line, msg);
                    }
                    domain = Some(value.clone());
                }
                "to-ports" => match ToPorts::parse(value) {
                    Ok(parsed) => {
                        if value.contains(' ') {
                            let msg = format!(
                                "{ALLOW}: to-ports {} has spaces, which players may not accept",
                                quote(value)
                            );
                            self.warn(attr.line, msg);
                        }
                        ports = Some((parsed, value.clone()));
                    }
                    Err(reason) => self.error(attr.line, format!("{ALLOW}: to-ports {reason}")),
                },
                _ => match value.as_str() {
                    "false" => {}
                    "true" => {
                        let msg =
                            format!("{ALLOW}: secure=\"true\" grants only SWFs served over HTTPS");
                        self.note(attr.line, msg);
                        secure = true;
                    }
                    _ => self.error(
                        attr.line,
                        format!("{ALLOW}: secure {} is not true or false", quote(value)),
                    ),
                },
            }
        }
        if !has_domain {
            self.error(line, format!("{ALLOW}: missing domain"));
        }
        if !has_ports {
            self.error(
                line,
                format!("{ALLOW}: missing to-ports, which a socket policy requires"),
            );
        }
        // With any error the document is dropped anyway; this only needs the values.
        if let (Some(domain), Some((to_ports, to_ports_text))) = (domain, ports) {
            self.document.allow_access_from.push(AllowAccessFrom {
                domain,
                to_ports,
                to_ports_text,
                secure,
                line,
            });
        }
    }

    fn finish(mut self) -> Report {
        let failed = self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        if let Some(line) = self.none_line.filter(|_| !failed) {
            let value = "\"none\"";
            if self.grants > 0 {
                self.warn(line, format!("{SITE_CONTROL}: {PERMITTED} {value} means no policy is honoured, not even this one: its {ALLOW} grants never apply"));
            } else {
                self.note(line, format!("{SITE_CONTROL}: {PERMITTED} {value}: no SWF may open a socket to this host"));
            }
        }
        if !failed && self.root_ok && self.grants == 0 {
            match self.document.site_control.as_ref().map(|s| s.permitted) {
                Some(MetaPolicy::None) => {}
                Some(MetaPolicy::All) | None => self.note(
                    0,
                    format!("no {ALLOW}: this policy grants nothing itself (a master lets players ask each destination port)"),
                ),
                Some(_) => self.warn(
                    0,
                    format!("no {ALLOW}: this policy grants nothing, and its {SITE_CONTROL} lets players ask no other port"),
                ),
            }
        }
        // Stable: diagnostics of one line keep the order they were found in.
        self.diagnostics.sort_by_key(|d| d.line);
        Report {
            document: if failed { None } else { Some(self.document) },
            diagnostics: self.diagnostics,
        }
    }
}
