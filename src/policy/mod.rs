//! The policy: load it (file, `--allow` specs or the embedded default), validate it
//! against the socket-policy grammar (protocol.md §4), and render the exact bytes that
//! are served: the document followed by exactly one NUL.
//!
//! [`validate`] is also what the checker runs on documents it receives: read
//! [`Report::document`] when [`Report::is_valid`]. The XML reader is our own, strict
//! and small (`reader`); no XML or hash crate is used.
//!
//! Choices where protocol.md is silent:
//! - text or CDATA that is not whitespace inside the root, and elements nested in
//!   `allow-access-from` or `site-control`, are warnings (players ignore them); the
//!   contents of unknown elements are not examined;
//! - CDATA is accepted inside the root (as text), not outside it (not well-formed);
//! - only the five predefined entities and numeric references exist: an entity
//!   declared in a DOCTYPE internal subset is an "unknown entity" error;
//! - characters XML forbids (controls other than tab, LF, CR; U+FFFE, U+FFFF) are errors;
//! - a DOCTYPE naming another root element is a warning;
//! - `to-ports` lists keep their order: canonical rendering drops spaces, writes `80`
//!   and `8000-8100`, and neither sorts nor merges.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

mod allow;
mod encoding;
mod lexical;
pub mod lightspark;
mod ports;
mod reader;
mod sha256;
#[cfg(test)]
mod tests;
mod validate;

pub use allow::{check_domain, render_document};
pub use sha256::hex_digest as sha256_hex;
pub use validate::validate;

/// Largest policy document accepted, in bytes (Adobe's sample servers use the same cap).
pub const MAX_POLICY_BYTES: usize = 10_000;

/// Value of `site-control permitted-cross-domain-policies` (the meta-policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaPolicy {
    /// `none`: no policy is honoured, not even the master.
    None,
    /// `master-only`: only the policy on port 843 counts.
    MasterOnly,
    /// `by-content-type`: an HTTP value, meaningless for sockets.
    ByContentType,
    /// `by-ftp-filename`: an FTP value, meaningless for sockets.
    ByFtpFilename,
    /// `all`: any port may serve a policy.
    All,
}

impl MetaPolicy {
    /// The attribute value as written in a policy.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MetaPolicy::None => "none",
            MetaPolicy::MasterOnly => "master-only",
            MetaPolicy::ByContentType => "by-content-type",
            MetaPolicy::ByFtpFilename => "by-ftp-filename",
            MetaPolicy::All => "all",
        }
    }
}

/// The `to-ports` attribute: `*` or a list of ports and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPorts {
    /// `*`: every port.
    Any,
    /// Inclusive `(low, high)` ranges; a single port is `(p, p)`. Never empty.
    Ranges(Vec<(u16, u16)>),
}

/// `<site-control>` as found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteControl {
    /// The meta-policy it sets.
    pub permitted: MetaPolicy,
    /// 1-based line of the element.
    pub line: usize,
}

/// One `<allow-access-from>` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowAccessFrom {
    /// The `domain` attribute, entity-decoded, as written (case preserved).
    pub domain: String,
    /// The parsed `to-ports` attribute.
    pub to_ports: ToPorts,
    /// The `to-ports` attribute as written (entity-decoded).
    pub to_ports_text: String,
    /// `secure="true"`: the grant only applies to SWFs served over HTTPS.
    pub secure: bool,
    /// 1-based line of the element.
    pub line: usize,
}

/// The meaning of a valid socket policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// The meta-policy element, if present.
    pub site_control: Option<SiteControl>,
    /// Every grant, in document order.
    pub allow_access_from: Vec<AllowAccessFrom>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The player would reject the document (or it is not a policy at all).
    Error,
    /// A supported player will refuse or misread something, or the policy and what
    /// the operator intends disagree: an operator should act.
    Warning,
    /// True and useful, nothing to fix (e.g. `secure="true"` limits the grant to
    /// HTTPS SWFs).
    Note,
}

/// One finding of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// 1-based line; 0 when it concerns the whole document.
    pub line: usize,
    /// Lower case, no final period, names the element/attribute/value at fault.
    pub message: String,
}

/// Result of validating a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The document's meaning; `None` when there is any error.
    pub document: Option<Document>,
    /// Every error, warning and note, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Where the served policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--file PATH`.
    File(PathBuf),
    /// One or more `--allow` specs, as given.
    Allow(Vec<String>),
    /// The embedded allow-all default.
    Default,
}

/// A validated policy and the exact bytes served for it.
#[derive(Debug, Clone)]
pub struct Policy {
    bytes: Arc<[u8]>,
    document: Document,
    warnings: Vec<Diagnostic>,
    notes: Vec<Diagnostic>,
    source: Source,
    digest: String,
}

/// The embedded default policy (without its NUL): `domain="*" to-ports="*"`, in the
/// format of [`render_document`].
pub(crate) const ALLOW_ALL_DOCUMENT: &str = "<?xml version=\"1.0\"?>\n\
<!DOCTYPE cross-domain-policy SYSTEM \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\">\n\
<cross-domain-policy>\n  <allow-access-from domain=\"*\" to-ports=\"*\"/>\n</cross-domain-policy>\n";

/// One `--allow DOMAIN[:PORTS]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowSpec {
    /// The domain pattern.
    pub domain: String,
    /// The ports (default `*`).
    pub to_ports: ToPorts,
}

impl Policy {
    /// Reads, validates and renders a policy file.
    ///
    /// At most [`MAX_POLICY_BYTES`] + 2 bytes are read. A file that already ends in
    /// one NUL is served as it is; otherwise a NUL is appended. The document checked
    /// and hashed is the file without that final NUL, so the digest equals
    /// `sha256sum FILE` for a file without one. Warnings are kept in
    /// [`Policy::warnings`].
    ///
    /// # Errors
    ///
    /// [`Error::PolicyRead`] when the file cannot be opened or read;
    /// [`Error::Policy`] (origin: the path) when it is larger than
    /// [`MAX_POLICY_BYTES`] or [`validate`] finds an error: line and message are those
    /// of the first error, the message ending in `(and N more errors)` if there are more.
    pub fn from_file(path: &Path) -> Result<Policy> {
        let read_error = |source| Error::PolicyRead {
            path: path.to_path_buf(),
            source,
        };
        let file = crate::sys::open_regular(path).map_err(read_error)?;
        let file_len = file.metadata().ok().map(|m| m.len());
        let mut bytes = Vec::new();
        let cap = MAX_POLICY_BYTES + 2;
        file.take(cap as u64)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        let origin = path.display().to_string();
        let document = match bytes.split_last() {
            Some((0, rest)) => rest,
            _ => &bytes[..],
        };
        if document.len() > MAX_POLICY_BYTES {
            // Not read to the end when at the cap: the size comes from the metadata.
            let size = match file_len {
                Some(n) if bytes.len() >= cap => format!("is {n} bytes"),
                None if bytes.len() >= cap => format!("is over {} bytes", cap - 1),
                _ => format!("is {} bytes", document.len()),
            };
            return Err(Error::Policy {
                origin,
                line: 0,
                message: format!("{size}, more than the {MAX_POLICY_BYTES} a policy may have"),
            });
        }
        let report = validate(document);
        let error_count = report.errors().count();
        let first = report.errors().next().map(|d| (d.line, d.message.clone()));
        match (report.document, first) {
            (Some(parsed), None) => Ok(Policy::assemble(
                document,
                parsed,
                report.diagnostics,
                Source::File(path.to_path_buf()),
            )),
            (_, first) => {
                let (line, mut message) = first.unwrap_or((0, "is not a policy".to_string()));
                match error_count {
                    0 | 1 => {}
                    2 => message.push_str(" (and 1 more error)"),
                    n => message.push_str(&format!(" (and {} more errors)", n - 1)),
                }
                Err(Error::Policy {
                    origin,
                    line,
                    message,
                })
            }
        }
    }

    /// Generates the policy for `--allow` specs: one `allow-access-from` per spec, in
    /// the order given (see [`render_document`]). `given` are the flag values as
    /// typed, kept for [`Policy::source`].
    ///
    /// Specs from [`AllowSpec::parse`] always give a document without errors, as long
    /// as they are few enough for it to fit in [`MAX_POLICY_BYTES`] (`cli::parse`
    /// refuses more). Specs built by hand with bad values, or too many specs, cannot
    /// fail here: their diagnostics, errors included, end up in [`Policy::warnings`].
    pub fn from_allow(specs: &[AllowSpec], given: Vec<String>) -> Policy {
        Policy::generate(render_document(specs), specs, Source::Allow(given))
    }

    /// The embedded allow-all default, [`ALLOW_ALL_DOCUMENT`]: any domain, any port.
    pub(crate) fn allow_all() -> Policy {
        let all = AllowSpec {
            domain: "*".to_string(),
            to_ports: ToPorts::Any,
        };
        Policy::generate(ALLOW_ALL_DOCUMENT.to_string(), &[all], Source::Default)
    }

    /// A policy from a generated `text`; should it not validate (hand-built specs),
    /// its document is built from `specs` directly.
    fn generate(text: String, specs: &[AllowSpec], source: Source) -> Policy {
        let report = validate(text.as_bytes());
        let document = report.document.unwrap_or_else(|| Document {
            site_control: None,
            allow_access_from: specs
                .iter()
                .zip(4..)
                .map(|(spec, line)| AllowAccessFrom {
                    domain: spec.domain.clone(),
                    to_ports: spec.to_ports.clone(),
                    to_ports_text: spec.to_ports.to_string(),
                    secure: false,
                    line,
                })
                .collect(),
        });
        let mut policy = Policy::assemble(text.as_bytes(), document, Vec::new(), source);
        let (notes, warnings) = report
            .diagnostics
            .into_iter()
            .partition(|d| d.severity == Severity::Note);
        policy.warnings = warnings;
        policy.notes = notes;
        policy
    }

    /// Builds the served bytes (document + one NUL) and the digest.
    fn assemble(
        document_bytes: &[u8],
        document: Document,
        diagnostics: Vec<Diagnostic>,
        source: Source,
    ) -> Policy {
        let mut bytes = Vec::with_capacity(document_bytes.len() + 1);
        bytes.extend_from_slice(document_bytes);
        bytes.push(0);
        let of = |severity| {
            diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .cloned()
                .collect()
        };
        Policy {
            bytes: bytes.into(),
            document,
            warnings: of(Severity::Warning),
            notes: of(Severity::Note),
            source,
            digest: sha256::hex_digest(document_bytes),
        }
    }
    /// The served bytes: the document and exactly one NUL.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }
    /// The parsed document.
    pub fn document(&self) -> &Document {
        &self.document
    }
    /// Validator warnings: something to fix.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
    /// Validator notes: true and useful, nothing to fix.
    pub(crate) fn notes(&self) -> &[Diagnostic] {
        &self.notes
    }
    /// Where it came from.
    pub(crate) fn source(&self) -> &Source {
        &self.source
    }
    /// SHA-256 of the document without the NUL, lower-case hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// One line for the start-up log and `--check-config`: the source, the size served
    /// and the digest.
    pub(crate) fn describe(&self) -> String {
        let origin = match &self.source {
            Source::File(p) => format!("from {}", p.display()),
            Source::Allow(given) => format!("generated from --allow {}", given.join(" --allow ")),
            Source::Default => "embedded default (allow all)".to_string(),
        };
        format!(
            "{origin}: {} bytes served, sha256 {}",
            self.bytes.len(),
            self.digest
        )
    }

    /// A warning as an operator reads it: `path:line: message` for a file.
    pub(crate) fn locate(&self, d: &Diagnostic) -> String {
        match (&self.source, d.line) {
            (Source::File(p), 0) => format!("{}: {}", p.display(), d.message),
            (Source::File(p), line) => format!("{}:{line}: {}", p.display(), d.message),
            _ => d.message.clone(),
        }
    }
}

impl Report {
    /// The errors, in document order.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// The warnings, in document order.
    #[cfg(test)]
    pub(crate) fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// The notes, in document order.
    #[cfg(test)]
    pub(crate) fn notes(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Note)
    }

    /// Whether the document has no error (then `document` is `Some`).
    pub fn is_valid(&self) -> bool {
        self.document.is_some()
    }
}

/// `error`, `warning` or `note`.
impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// `line 3: error: MESSAGE`, or `error: MESSAGE` for the whole document.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(f, "{}: {}", self.severity, self.message)
    }
}

/// A value quoted for a message, escaped, and cut at 40 characters (`"abc..."`).
pub(crate) fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    match value.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => {
            let cut = format!("{:?}", value.get(..i).unwrap_or(""));
            format!("{}...\"", cut.trim_end_matches('"'))
        }
        None => format!("{value:?}"),
    }
}
