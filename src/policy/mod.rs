//! The policy: load it (file, `--allow` specs or the embedded default), validate it
//! against the socket-policy grammar (protocol.md §4), and render the exact bytes that
//! are served: the document followed by exactly one NUL.
//!
//! STUB: the API below is fixed; bodies are being written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;

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
    pub fn as_str(self) -> &'static str {
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
    /// Legal but dubious: an operator should look.
    Warning,
}

/// One finding of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
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
    /// Every error and warning, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Validates a policy document (without its terminating NUL).
pub fn validate(_bytes: &[u8]) -> Report {
    todo!("stub")
}

/// Where the served policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
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
    source: Source,
    digest: String,
}

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
    pub fn from_file(_path: &Path) -> Result<Policy> {
        todo!("stub")
    }
    /// Generates the policy for `--allow` specs.
    pub fn from_allow(_specs: &[AllowSpec], _given: Vec<String>) -> Policy {
        todo!("stub")
    }
    /// The embedded allow-all default.
    pub fn allow_all() -> Policy {
        todo!("stub")
    }
    /// The served bytes: the document and exactly one NUL.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }
    /// The parsed document.
    pub fn document(&self) -> &Document {
        &self.document
    }
    /// Validator warnings.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
    /// Where it came from.
    pub fn source(&self) -> &Source {
        &self.source
    }
    /// SHA-256 of the document without the NUL, lower-case hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}
