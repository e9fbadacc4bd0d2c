//! Tests of the policy module as a whole: validation (`errors`, `warnings`,
//! `accepted`), robustness on arbitrary bytes (`robust`), and `Policy` itself (here).
//!
//! Expected lines and the names in messages come from the documents written in each
//! test and from docs/protocol.md §4 / the XML 1.0 spec, never from the program's output.

mod accepted;
mod errors;
mod robust;
mod warnings;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Wraps `body` in the root element; `body` starts on line 2.
pub(super) fn wrap(body: &str) -> String {
    format!("<cross-domain-policy>\n{body}\n</cross-domain-policy>\n")
}

/// The document with LF, CRLF and lone-CR line ends: line numbers must not change.
fn variants(doc: &str) -> [String; 3] {
    [
        doc.to_string(),
        doc.replace('\n', "\r\n"),
        doc.replace('\n', "\r"),
    ]
}

/// Asserts that the first error is on `line` and mentions every `needle`, and that
/// there is no document, for LF, CRLF and CR line ends.
pub(super) fn assert_error(doc: &str, line: usize, needles: &[&str]) {
    for doc in variants(doc) {
        assert_error_bytes(doc.as_bytes(), line, needles);
    }
}

pub(super) fn assert_error_bytes(doc: &[u8], line: usize, needles: &[&str]) {
    let report = validate(doc);
    let first = report.errors().next();
    let Some(first) = first else {
        panic!(
            "no error in {:?}: {:?}",
            String::from_utf8_lossy(doc),
            report.diagnostics
        );
    };
    assert_eq!(
        first.line,
        line,
        "line of {first:?} in {:?}",
        String::from_utf8_lossy(doc)
    );
    for needle in needles {
        assert!(
            first.message.contains(needle),
            "{needle:?} not in {first:?}"
        );
    }
    assert!(report.document.is_none() && !report.is_valid());
}

/// Asserts that the document is valid and has a warning on `line` mentioning every
/// `needle`, for LF, CRLF and CR line ends.
pub(super) fn assert_warning(doc: &str, line: usize, needles: &[&str]) {
    assert_finding(doc, Severity::Warning, line, needles);
}

/// Asserts that the document is valid and has a note (and no warning) on `line`
/// mentioning every `needle`, for LF, CRLF and CR line ends.
pub(super) fn assert_note(doc: &str, line: usize, needles: &[&str]) {
    assert_finding(doc, Severity::Note, line, needles);
    let report = validate(doc.as_bytes());
    assert!(
        report.warnings().all(|w| w.line != line),
        "a warning on line {line}: {:?}",
        report.diagnostics
    );
}

fn assert_finding(doc: &str, severity: Severity, line: usize, needles: &[&str]) {
    for doc in variants(doc) {
        let report = validate(doc.as_bytes());
        assert!(
            report.is_valid(),
            "errors in {doc:?}: {:?}",
            report.diagnostics
        );
        let found = report.diagnostics.iter().any(|w| {
            w.severity == severity
                && w.line == line
                && needles.iter().all(|needle| w.message.contains(needle))
        });
        assert!(
            found,
            "no {severity} {needles:?} on line {line}: {:?}",
            report.diagnostics
        );
    }
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("flashpolicyd-test-{}-{n}.xml", std::process::id());
        let path = std::env::temp_dir().join(name);
        fs::write(&path, contents).expect("the temp dir is writable in tests");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

const SIMPLE: &str = "<cross-domain-policy>\n  <allow-access-from domain=\"*\" to-ports=\"843\"/>\n</cross-domain-policy>\n";

/// A valid document of exactly `size` bytes (padded with a comment).
fn sized_document(size: usize) -> Vec<u8> {
    let head = "<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/><!--";
    let tail = "--></cross-domain-policy>";
    let mut doc = head.as_bytes().to_vec();
    doc.resize(size - tail.len(), b'x');
    doc.extend_from_slice(tail.as_bytes());
    doc
}

fn policy_error(result: Result<Policy>) -> (String, usize, String) {
    match result {
        Err(Error::Policy {
            origin,
            line,
            message,
        }) => (origin, line, message),
        other => panic!("expected Error::Policy, got {other:?}"),
    }
}

#[test]
fn from_file_appends_one_nul_and_hashes_the_file() {
    let file = TempFile::new(SIMPLE.as_bytes());
    let policy = Policy::from_file(&file.0).expect("valid policy");
    let mut expected = SIMPLE.as_bytes().to_vec();
    expected.push(0);
    assert_eq!(&policy.bytes()[..], &expected[..]);
    assert_eq!(policy.digest(), sha256_hex(SIMPLE.as_bytes()));
    assert_eq!(policy.source(), &Origin::File(file.0.clone()));
    assert!(policy.warnings().is_empty());
    let grant = &policy.document().allow_access_from[0];
    assert_eq!((grant.domain.as_str(), grant.line), ("*", 2));
    assert_eq!(grant.to_ports, ToPorts::Ranges(vec![(843, 843)]));
}

#[test]
fn from_file_does_not_double_a_trailing_nul() {
    let mut contents = SIMPLE.as_bytes().to_vec();
    contents.push(0);
    let file = TempFile::new(&contents);
    let policy = Policy::from_file(&file.0).expect("valid policy");
    assert_eq!(&policy.bytes()[..], &contents[..]);
    assert_eq!(policy.digest(), sha256_hex(SIMPLE.as_bytes()));
}

#[test]
fn from_file_rejects_two_trailing_nuls_and_inner_nuls() {
    let mut two = SIMPLE.as_bytes().to_vec();
    two.extend_from_slice(&[0, 0]);
    let file = TempFile::new(&two);
    let (_, line, message) = policy_error(Policy::from_file(&file.0));
    assert_eq!(line, 4);
    assert!(message.contains("NUL"), "{message}");

    let inner = SIMPLE.replacen("\n", "\n\0", 1);
    let file = TempFile::new(inner.as_bytes());
    let (origin, line, message) = policy_error(Policy::from_file(&file.0));
    assert_eq!((origin, line), (file.0.display().to_string(), 2));
    assert!(message.contains("NUL"), "{message}");
}

#[test]
fn from_file_size_cap() {
    let file = TempFile::new(&sized_document(MAX_POLICY_BYTES));
    assert!(Policy::from_file(&file.0).is_ok());

    let mut with_nul = sized_document(MAX_POLICY_BYTES);
    with_nul.push(0);
    let file = TempFile::new(&with_nul);
    assert!(Policy::from_file(&file.0).is_ok());

    let file = TempFile::new(&sized_document(MAX_POLICY_BYTES + 1));
    let (_, line, message) = policy_error(Policy::from_file(&file.0));
    assert_eq!(line, 0);
    assert!(
        message.contains("10001") && message.contains("10000"),
        "{message}"
    );

    let file = TempFile::new(&sized_document(12_000));
    let (_, _, message) = policy_error(Policy::from_file(&file.0));
    assert!(
        message.contains("12000") && message.contains("10000"),
        "{message}"
    );
}

#[test]
fn from_file_reports_the_first_error_and_counts_the_rest() {
    let doc = wrap("<allow-access-from domain=\"*\"/>\n<allow-access-from to-ports=\"80\"/>");
    let file = TempFile::new(doc.as_bytes());
    let (_, line, message) = policy_error(Policy::from_file(&file.0));
    assert_eq!(line, 2);
    assert!(message.contains("to-ports") && message.ends_with("(and 1 more error)"));
}

#[test]
fn from_file_keeps_warnings() {
    let doc = wrap("<allow-access-from domain=\"*\" to-ports=\"*\" secure=\"true\"/>");
    let file = TempFile::new(doc.as_bytes());
    let policy = Policy::from_file(&file.0).expect("valid policy");
    // secure="true" is a note: true, nothing to fix.
    assert_eq!(policy.warnings().len(), 0);
    assert_eq!(policy.notes().len(), 1);
    assert_eq!(policy.notes()[0].line, 2);
    assert!(policy.document().allow_access_from[0].secure);
    let doc = wrap("<allow-access-from domain=\"*\" to-ports=\"80, 81\"/>");
    let file = TempFile::new(doc.as_bytes());
    let policy = Policy::from_file(&file.0).expect("valid policy");
    assert_eq!(policy.warnings().len(), 1);
    assert_eq!(policy.notes().len(), 0);
}

#[test]
fn from_file_read_errors() {
    let missing = std::env::temp_dir().join("flashpolicyd-test-does-not-exist.xml");
    match Policy::from_file(&missing) {
        Err(Error::PolicyRead { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected PolicyRead, got {other:?}"),
    }
    match Policy::from_file(&std::env::temp_dir()) {
        Err(Error::PolicyRead { .. }) => {}
        other => panic!("expected PolicyRead for a directory, got {other:?}"),
    }
}

#[test]
fn allow_all_is_the_documented_default() {
    let policy = Policy::allow_all();
    let mut expected = ALLOW_ALL_DOCUMENT.as_bytes().to_vec();
    expected.push(0);
    assert_eq!(&policy.bytes()[..], &expected[..]);
    assert_eq!(
        ALLOW_ALL_DOCUMENT,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \
         \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\">\n<cross-domain-policy>\n  \
         <allow-access-from domain=\"*\" to-ports=\"*\"/>\n</cross-domain-policy>\n"
    );
    assert_eq!(policy.source(), &Origin::Default);
    assert!(policy.warnings().is_empty());
    assert_eq!(policy.digest(), sha256_hex(ALLOW_ALL_DOCUMENT.as_bytes()));
    let grants = &policy.document().allow_access_from;
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].domain.as_str(), &grants[0].to_ports),
        ("*", &ToPorts::Any)
    );
}

#[test]
fn from_allow_generates_a_clean_policy() {
    let given = vec![
        "*.example.com:80,8000-8100".to_string(),
        "[::1]:843".to_string(),
    ];
    let specs: Vec<AllowSpec> = given
        .iter()
        .filter_map(|g| AllowSpec::parse(g).ok())
        .collect();
    let policy = Policy::from_allow(&specs, given.clone());
    assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
    assert_eq!(policy.source(), &Origin::Allow(given));
    let text = String::from_utf8_lossy(&policy.bytes()[..]).into_owned();
    assert!(text.ends_with("</cross-domain-policy>\n\0"));
    assert_eq!(text.matches('\0').count(), 1);
    assert!(text.contains(
        "\n  <allow-access-from domain=\"*.example.com\" to-ports=\"80,8000-8100\"/>\n  \
         <allow-access-from domain=\"::1\" to-ports=\"843\"/>\n"
    ));
    let grants = &policy.document().allow_access_from;
    assert_eq!((grants[0].line, grants[1].line), (4, 5));
}

#[test]
fn from_allow_never_fails_on_hand_built_specs() {
    let bad = AllowSpec {
        domain: " x".to_string(),
        to_ports: ToPorts::Ranges(Vec::new()),
    };
    let policy = Policy::from_allow(&[bad], Vec::new());
    assert_eq!(policy.document().allow_access_from.len(), 1);
    assert!(policy
        .warnings()
        .iter()
        .any(|d| d.severity == Severity::Error));
}

#[test]
fn diagnostic_display() {
    let d = Diagnostic {
        severity: Severity::Warning,
        line: 3,
        message: "m".to_string(),
    };
    assert_eq!(d.to_string(), "line 3: warning: m");
    let d = Diagnostic {
        line: 0,
        severity: Severity::Error,
        ..d
    };
    assert_eq!(d.to_string(), "error: m");
}
