//! Replays every saved fuzz input (tests/fuzz/corpus/TARGET/) through the checks of
//! its cargo-fuzz target, on stable and without cargo-fuzz: the inputs that once
//! crashed a parser, and those that reach its corners, stay tested by `make test`.

#[path = "../fuzz/src/lib.rs"]
mod invariants;

use std::fs;
use std::path::{Path, PathBuf};

/// The saved inputs of one target, sorted; fails if there are none (a wrong path
/// must not make the test pass vacuously).
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("listing the corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
}

/// Runs `check` on each input of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    for path in corpus(target) {
        let data = fs::read(&path).expect("reading a corpus file");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn request_matcher_corpus() {
    replay("request_matcher", invariants::request_matcher);
}

#[test]
fn policy_validate_corpus() {
    replay("policy_validate", invariants::policy_validate);
}

#[test]
fn policy_corpus_through_from_file() {
    for path in corpus("policy_validate") {
        invariants::policy_file(&path);
    }
}

#[test]
fn allow_spec_corpus() {
    replay("allow_spec", invariants::allow_spec);
}

#[test]
fn domain_match_corpus() {
    replay("domain_match", invariants::domain_match);
}
