//! `flashpolicy-check`: sees a policy the way Flash Player (or Lightspark) sees it.
//! Fetches the master policy (or reads `--file`), validates it with the server's own
//! validator, answers the allow/deny question with [`evaluate`], and reports as
//! a Nagios plugin. Flash Player's path is `flash.rs`; `--player lightspark` follows
//! Lightspark's rules instead (`lightspark.rs`); `--player all` runs both on the same
//! fetches.
//!
//! Flow: [`cli::parse`] → [`run`] (fetch with [`probe`], validate, decide) →
//! [`report::Report::render`]; `src/bin/flashpolicy-check.rs` only prints and exits.

pub mod cli;
pub mod evaluate;
mod flash;
mod lightspark;
mod probe;
pub mod report;

use std::collections::BTreeMap;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use probe::{Probe, MAX_REPLY_BYTES};

pub(crate) use cli::{Command, Config, Player, Source};
pub(crate) use report::{Report, Status};

/// Runs the checker on `args` (without the program name) and returns what to print
/// on stdout and the exit code.
pub fn main_with(args: &[String]) -> (String, i32) {
    main_with_args(&crate::options::Args::utf8(args))
}

/// [`main_with`] for arguments as the OS gives them: `--file` keeps its exact bytes.
pub fn main_with_args(args: &crate::options::Args) -> (String, i32) {
    match cli::parse_args(args) {
        Ok(Command::Help(text)) | Ok(Command::Version(text)) => (text + "\n", 0),
        Ok(Command::Check(config)) => match run(&config) {
            Ok(report) => (report.render(), report.status().code()),
            Err(e) => (report::unknown(&e.to_string()), Status::Unknown.code()),
        },
        Err(e) => (report::unknown(&e.to_string()), Status::Unknown.code()),
    }
}

/// Performs the check described by `config`.
///
/// # Errors
///
/// [`Error::PolicyRead`] when `--file` cannot be read. Everything that goes wrong on
/// the network is a finding of the report, not an error.
pub(crate) fn run(config: &Config) -> Result<Report> {
    let mut fetcher = Fetcher::default();
    match config.player {
        Player::Flash => flash::run(config, &mut fetcher),
        Player::Lightspark => lightspark::run(config, &mut fetcher).map(|(r, _)| r),
        Player::All => {
            let flash = flash::run(config, &mut fetcher)?;
            let (light, rules) = lightspark::run(config, &mut fetcher)?;
            let differs = differences(&flash, &light, &rules);
            Ok(Report::combined(
                &[("flash", flash), ("lightspark", light)],
                &differs,
            ))
        }
    }
}

/// Why the two verdicts differ: the Lightspark rules that applied, or, when only
/// Flash Player refuses, its reason. Nothing when both allow or both refuse, even if
/// their warnings differ.
fn differences(flash: &Report, light: &Report, rules: &[String]) -> Vec<String> {
    if flash.allows() == light.allows() {
        return Vec::new();
    }
    if !rules.is_empty() {
        return rules.to_vec();
    }
    if !flash.allows() {
        vec![format!(
            "Flash Player's rules, not Lightspark's: {}",
            flash.summary_text()
        )]
    } else {
        vec![format!(
            "Lightspark's rules, not Flash Player's: {}",
            light.summary_text()
        )]
    }
}

/// Fetches each port once, so that `--player all` judges both players on the same
/// replies.
#[derive(Default)]
pub(crate) struct Fetcher {
    probes: BTreeMap<u16, Probe>,
}

impl Fetcher {
    /// The probe of `host:port`, fetched on first use.
    pub(crate) fn probe(&mut self, host: &str, port: u16, timeout: std::time::Duration) -> Probe {
        self.probes
            .entry(port)
            .or_insert_with(|| probe::probe(host, port, timeout))
            .clone()
    }
}

/// Fetches the master policy from `host:port`, recording its time and size (and the
/// thresholds, once a document came), the same way for every player.
fn probe_master(
    report: &mut Report,
    fetcher: &mut Fetcher,
    host: &str,
    port: u16,
    timeout: std::time::Duration,
) -> Probe {
    let probe = fetcher.probe(host, port, timeout);
    report.measure(probe.elapsed, probe.received.len());
    if probe.document().is_some() {
        report.thresholds();
    }
    probe
}

/// Reads the master policy from `path`, recording its size, the same way for every
/// player.
///
/// # Errors
///
/// [`Error::PolicyRead`] naming the file.
fn read_master(report: &mut Report, path: &Path) -> Result<Vec<u8>> {
    let bytes = read_file(path)?;
    report.measure(std::time::Duration::ZERO, bytes.len());
    report.detail(format!(
        "read {} bytes from {}",
        bytes.len(),
        path.display()
    ));
    Ok(bytes)
}

/// `host:port` or the file, for the summary.
pub(crate) fn origin_name(config: &Config) -> String {
    match &config.source {
        Source::Network { host, port } => probe::target_name(host, *port),
        Source::File { path, port } => format!("{} as port {port}", path.display()),
    }
}

/// Reads `--file`, at most one byte past the cap.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    crate::sys::open_regular(path)
        .and_then(|f| f.take(MAX_REPLY_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|source| Error::PolicyRead {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}
