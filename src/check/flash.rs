//! `--player flash` (the default): the check under Flash Player's rules (docs/protocol.md
//! §4–5). The master policy is fetched (or read from `--file`) and validated with the
//! daemon's own validator; [`super::evaluate`] answers the question, falling back to
//! the destination port as the player would.

use super::evaluate::{decide, Fetched, PolicyEval, Question, Role};
use super::probe::{End, Probe, MAX_REPLY_BYTES};
use super::{
    origin_name, probe_master, read_master, report, Config, Fetcher, Report, Source, Status,
};
use crate::error::Result;
use crate::policy::{self, Document, Severity};

/// The check under Flash Player's rules.
pub(super) fn run(config: &Config, fetcher: &mut Fetcher) -> Result<Report> {
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
