//! `flashpolicy-check`: sees a policy the way Flash Player (or Lightspark) sees it.
//! Fetches the master policy (or reads `--file`), validates it with the server's own
//! validator, answers the allow/deny question with [`crate::evaluate`], and reports as
//! a Nagios plugin. `--player lightspark` follows Lightspark's rules instead
//! (`lightspark.rs`); `--player all` runs both on the same fetches.
//!
//! Flow: [`cli::parse`] → [`run`] (fetch with [`crate::probe`], validate, decide) →
//! [`report::Report::render`]; `src/bin/flashpolicy-check.rs` only prints and exits.

pub mod cli;
mod lightspark;
pub mod report;

use std::collections::BTreeMap;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::evaluate::{decide, Fetched, PolicyEval, Question, Role};
use crate::policy::{self, Document, Severity};
use crate::probe::{self, End, Probe, MAX_REPLY_BYTES};

pub(crate) use cli::{Command, Config, Player, Source};
pub(crate) use report::{Report, Status};

/// Runs the checker on `args` (without the program name) and returns what to print
/// on stdout and the exit code.
pub fn main_with(args: &[String]) -> (String, i32) {
    main_with_args(&crate::cli::Args::utf8(args))
}

/// [`main_with`] for arguments as the OS gives them: `--file` keeps its exact bytes.
pub fn main_with_args(args: &crate::cli::Args) -> (String, i32) {
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
        Player::Flash => run_flash(config, &mut fetcher),
        Player::Lightspark => lightspark::run(config, &mut fetcher).map(|(r, _)| r),
        Player::All => {
            let flash = run_flash(config, &mut fetcher)?;
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

/// The check under Flash Player's rules.
fn run_flash(config: &Config, fetcher: &mut Fetcher) -> Result<Report> {
    let mut report = Report::new(config.warning, config.critical);
    let master_port = config.source.port();
    // Problems with the master that do not decide by themselves: with a question, the
    // player falls back past them, so they count only through the verdict.
    let mut soft = Vec::new();
    let lenient = config.question.is_some();
    let master = match &config.source {
        Source::Network { host, port } => {
            let probe = probe_master(&mut report, fetcher, host, *port, config.timeout);
            let fetched = assess(&mut report, &probe, "master policy", config.verbose);
            demote(&mut report, &fetched, lenient, &mut soft);
            fetched
        }
        Source::File { path, port } => {
            let bytes = read_master(&mut report, path)?;
            let origin = format!("{} as port {port}", path.display());
            let fetched = if bytes.len() > MAX_REPLY_BYTES {
                Fetched::Unavailable(format!("{origin} exceeds {MAX_REPLY_BYTES} bytes"))
            } else {
                let doc = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
                judge_document(&mut report, doc, &origin, config.verbose)
            };
            demote(&mut report, &fetched, lenient, &mut soft);
            fetched
        }
    };
    let question = match &config.question {
        Some(q) => q,
        None => {
            if let Fetched::Policy(doc) = &master {
                let origin = origin_name(config);
                report.summary(format!(
                    "policy from {origin} is valid ({} allow-access-from)",
                    doc.allow_access_from.len()
                ));
                if config.verbose {
                    list_elements(&mut report, doc, master_port);
                }
            }
            return Ok(report);
        }
    };
    let decision = decide(question, master_port, master, |to_port| {
        match &config.source {
            Source::Network { host, .. } => {
                let probe = fetcher.probe(host, to_port, config.timeout);
                assess(&mut report, &probe, "destination policy", config.verbose)
            }
            Source::File { .. } => Fetched::Unavailable("not fetched: --file is offline".into()),
        }
    });
    for fact in &decision.facts {
        report.detail(format!("- {fact}"));
    }
    if config.verbose {
        for eval in &decision.policies {
            verdict_lines(&mut report, eval, question);
        }
    }
    let who = format!("SWF from \"{}\"", question.domain);
    let secure = if question.secure { " (HTTPS)" } else { "" };
    if decision.allowed {
        report.verdict(
            Status::Ok,
            format!(
                "access allowed: {who}{secure} may connect to port {}: {}",
                question.to_port, decision.summary
            ),
        );
        for why in soft {
            report.finding(Status::Warning, why);
        }
    } else {
        report.verdict(
            Status::Critical,
            format!(
                "access denied: {who}{secure} may not connect to port {}: {}",
                question.to_port, decision.summary
            ),
        );
    }
    Ok(report)
}

/// Without a question an unusable master is CRITICAL at once; with one it is kept
/// aside, because the player falls back past it and the verdict decides.
fn demote(report: &mut Report, fetched: &Fetched, lenient: bool, soft: &mut Vec<String>) {
    if let Fetched::Unavailable(why) = fetched {
        if lenient {
            soft.push(format!("no usable master policy: {why}"));
        } else {
            report.finding(Status::Critical, why.clone());
        }
    }
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

/// Describes a probe, records the warnings its reply deserves (no NUL, bytes after
/// it), validates the document, and returns the policy as the player would have it.
fn assess(report: &mut Report, probe: &Probe, what: &str, verbose: bool) -> Fetched {
    let peer = match probe.peer {
        Some(a) if a.to_string() != probe.target => format!(" ({a})"),
        _ => String::new(),
    };
    if let Some(why) = probe.failure() {
        report.detail(format!("{what}: {why}{peer}"));
        return Fetched::Unavailable(why);
    }
    let t = &probe.target;
    let n = probe.received.len();
    let secs = probe.elapsed.as_secs_f64();
    let ending = match probe.end {
        End::Nul { trailing: 0 } => "ended with one NUL".to_string(),
        End::Nul { trailing } => {
            report.finding(
                Status::Warning,
                format!(
                    "{trailing} bytes after the NUL from {t} (Lightspark rejects such replies)"
                ),
            );
            format!("{trailing} bytes after the NUL")
        }
        _ => {
            report.finding(
                Status::Warning,
                format!("reply from {t} ends without the NUL ({n} bytes, then closed)"),
            );
            "no NUL before the server closed".to_string()
        }
    };
    report.detail(format!(
        "{what}: {n} bytes from {t}{peer} in {secs:.6}s, {ending}"
    ));
    let doc = probe.document().unwrap_or_default();
    judge_document(report, doc, t, verbose)
}

/// Validates a document (without its NUL) from `origin`, reporting every diagnostic.
fn judge_document(report: &mut Report, doc: &[u8], origin: &str, verbose: bool) -> Fetched {
    if verbose {
        report.detail(format!(
            "--- policy from {origin} ({} bytes) ---",
            doc.len()
        ));
        report.detail(report::printable(doc).trim_end().to_string());
        report.detail("--- end of policy ---");
    }
    let result = policy::validate(doc);
    let mut first_error = None;
    let mut errors = 0;
    for d in &result.diagnostics {
        let at = if d.line > 0 {
            format!("{origin} line {}", d.line)
        } else {
            origin.to_string()
        };
        match d.severity {
            Severity::Error => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{at}: {}", d.message));
                report.detail(format!("error: {at}: {}", d.message));
            }
            Severity::Warning => report.finding(Status::Warning, format!("{at}: {}", d.message)),
            Severity::Note if verbose => report.detail(format!("note: {at}: {}", d.message)),
            Severity::Note => {}
        }
    }
    match (result.document, first_error) {
        (Some(doc), None) => Fetched::Policy(doc),
        (_, first) => {
            let first = first.unwrap_or_else(|| format!("{origin}: not a policy"));
            let more = if errors > 1 {
                format!(" (and {} more errors)", errors - 1)
            } else {
                String::new()
            };
            Fetched::Unavailable(format!("invalid policy: {first}{more}"))
        }
    }
}

/// `-v` without a question: one line per element.
fn list_elements(report: &mut Report, doc: &Document, port: u16) {
    if let Some(sc) = &doc.site_control {
        report.detail(format!(
            "port {port} line {}: site-control permitted-cross-domain-policies=\"{}\"",
            sc.line,
            sc.permitted.as_str()
        ));
    }
    for e in &doc.allow_access_from {
        report.detail(format!(
            "port {port} line {}: allow-access-from domain=\"{}\" to-ports=\"{}\"{}",
            e.line,
            e.domain,
            e.to_ports_text,
            if e.secure { " secure=\"true\"" } else { "" }
        ));
    }
}

/// `-v` with a question: each element of a consulted policy and its verdict.
fn verdict_lines(report: &mut Report, eval: &PolicyEval, question: &Question) {
    let port = eval.port;
    if let Some(sc) = &eval.site_control {
        let role = match eval.role {
            Role::Master => "decides (master)",
            Role::Destination => "ignored (not the master)",
        };
        report.detail(format!(
            "port {port} line {}: site-control permitted-cross-domain-policies=\"{}\": {role}",
            sc.line,
            sc.permitted.as_str()
        ));
    }
    for j in &eval.elements {
        let e = &j.element;
        let honoured = if eval.honoured {
            ""
        } else {
            " (not honoured: site-control none)"
        };
        report.detail(format!(
            "port {port} line {}: allow-access-from domain=\"{}\" to-ports=\"{}\"{}: {} for \"{}\" port {}{honoured}",
            e.line,
            e.domain,
            e.to_ports_text,
            if e.secure { " secure=\"true\"" } else { "" },
            j.grant.describe(),
            question.domain,
            question.to_port,
        ));
    }
}
