//! `--player lightspark`: the check under Lightspark's rules (protocol.md §7). The
//! same fetches as for Flash Player, framed and read as Lightspark does
//! ([`crate::evaluate::lightspark`]); the policy on `-p` plays the master, as port 843
//! does for Lightspark.

use super::{origin_name, probe_master, read_master, Config, Fetcher, Report, Source, Status};
use crate::error::Result;
use crate::evaluate::lightspark::{decide, frame, hazards, judge, LsFetched};
use crate::evaluate::Question;
use crate::policy::lightspark::{self as ls, LsDocument, Rule};
use crate::probe::{Probe, MAX_REPLY_BYTES};

/// Runs the check; also returns the facts where Lightspark's rules decided unlike
/// Flash Player's, each naming its rule (for `--player all`).
pub(super) fn run(config: &Config, fetcher: &mut Fetcher) -> Result<(Report, Vec<String>)> {
    let mut report = Report::new(config.warning, config.critical);
    let master_port = config.source.port();
    let verbose = config.verbose;
    let master = match &config.source {
        Source::Network { host, port } => {
            let probe = probe_master(&mut report, fetcher, host, *port, config.timeout);
            obtain(&mut report, &probe, *port, true, "master policy", verbose)
        }
        Source::File { path, port } => {
            let bytes = read_master(&mut report, path)?;
            let origin = format!("{} as port {port}", path.display());
            // The file stands for what flashpolicyd serves: the file and one NUL.
            let doc = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
            if bytes.len() > MAX_REPLY_BYTES {
                LsFetched::Unavailable(format!("{origin} exceeds {MAX_REPLY_BYTES} bytes"), None)
            } else if doc.contains(&0) {
                let why = format!("{origin} has bytes after a NUL");
                LsFetched::Unavailable(why, Some(Rule::Framing))
            } else {
                read_policy(
                    &mut report,
                    doc,
                    doc.len() + 1,
                    &origin,
                    *port,
                    true,
                    verbose,
                )
            }
        }
    };
    let master_usable = matches!(&master, LsFetched::Policy(d) if d.void.is_none());
    let question = match &config.question {
        Some(q) => q,
        None => {
            let mut rules = Vec::new();
            let origin = origin_name(config);
            match &master {
                LsFetched::Policy(doc) => match &doc.void {
                    None => {
                        report.summary(format!(
                            "policy from {origin} is valid for Lightspark ({} allow-access-from)",
                            doc.grants.len()
                        ));
                        if verbose {
                            list_grants(&mut report, doc, master_port, None);
                        }
                    }
                    Some(v) => {
                        let fact = format!(
                            "Lightspark voids the policy from {origin} (line {}: {}) {}",
                            v.line, v.message, v.rule
                        );
                        rules.push(fact.clone());
                        report.finding(Status::Critical, fact);
                    }
                },
                LsFetched::Unavailable(why, rule) => {
                    let fact = match rule {
                        Some(rule) => format!("{why} {rule}"),
                        None => why.clone(),
                    };
                    if rule.is_some() {
                        rules.push(fact.clone());
                    }
                    report.finding(Status::Critical, fact);
                }
            }
            return Ok((report, rules));
        }
    };
    let master_doc = match &master {
        LsFetched::Policy(doc) => Some(doc.clone()),
        LsFetched::Unavailable(..) => None,
    };
    let mut dest_doc = None;
    let decision = decide(question, master_port, master, |to_port| {
        match &config.source {
            Source::Network { host, .. } => {
                let probe = fetcher.probe(host, to_port, config.timeout);
                let fetched = obtain(
                    &mut report,
                    &probe,
                    to_port,
                    false,
                    "destination policy",
                    verbose,
                );
                if let LsFetched::Policy(doc) = &fetched {
                    dest_doc = Some(doc.clone());
                }
                fetched
            }
            Source::File { .. } => {
                LsFetched::Unavailable("not fetched: --file is offline".into(), None)
            }
        }
    });
    for fact in &decision.facts {
        report.detail(format!("- {fact}"));
    }
    if verbose {
        if let Some(doc) = &master_doc {
            list_grants(&mut report, doc, master_port, Some(question));
        }
        if let Some(doc) = &dest_doc {
            list_grants(&mut report, doc, question.to_port, Some(question));
        }
    }
    let who = format!("SWF from \"{}\"", question.domain);
    let secure = if question.secure { " (HTTPS)" } else { "" };
    let to_port = question.to_port;
    if decision.allowed {
        report.verdict(
            Status::Ok,
            format!(
                "access allowed: {who}{secure} may connect to port {to_port}: {}",
                decision.summary
            ),
        );
        if !master_usable && decision.fell_back {
            report.finding(
                Status::Warning,
                "no usable master policy: Lightspark had to ask the destination port",
            );
        }
    } else {
        report.verdict(
            Status::Critical,
            format!(
                "access denied: {who}{secure} may not connect to port {to_port}: {}",
                decision.summary
            ),
        );
    }
    let rules = decision.rules.into_iter().map(|(_, fact)| fact).collect();
    Ok((report, rules))
}

/// The policy Lightspark gets from a probe: what its first read kept, framed.
fn obtain(
    report: &mut Report,
    probe: &Probe,
    port: u16,
    master: bool,
    what: &str,
    verbose: bool,
) -> LsFetched {
    let t = &probe.target;
    if probe.received.is_empty() {
        let why = probe
            .failure()
            .unwrap_or_else(|| format!("{t} closed the connection without a reply"));
        report.detail(format!("{what}: {why}"));
        return LsFetched::Unavailable(why, None);
    }
    let n = probe.received.len();
    match frame(&probe.received, &probe.reads) {
        Err((rule, why)) => {
            let why = format!("reply from {t}: {why}");
            report.detail(format!("{what}: {why} {rule}"));
            LsFetched::Unavailable(why, Some(rule))
        }
        Ok(doc) => {
            report.detail(format!(
                "{what}: {n} bytes from {t} in {:.6}s, {} kept by Lightspark's first read",
                probe.elapsed.as_secs_f64(),
                doc.len() + 1
            ));
            read_policy(report, &doc, n, t, port, master, verbose)
        }
    }
}

/// Reads a framed document, records its hazards (warnings; the low-port one is a
/// note here: it is Flash Player that refuses), and returns it.
fn read_policy(
    report: &mut Report,
    doc: &[u8],
    reply_len: usize,
    origin: &str,
    port: u16,
    master: bool,
    verbose: bool,
) -> LsFetched {
    if verbose {
        report.detail(format!(
            "--- policy from {origin} ({} bytes) ---",
            doc.len()
        ));
        report.detail(super::report::printable(doc).trim_end().to_string());
        report.detail("--- end of policy ---");
    }
    let read = ls::read(doc, master);
    for h in hazards(doc, reply_len, port, master) {
        if read.void.as_ref().is_some_and(|v| v.rule == h.rule) {
            continue;
        }
        let at = if h.line > 0 {
            format!("{origin} line {}", h.line)
        } else {
            origin.to_string()
        };
        if h.rule == Rule::NoLowPortRule {
            if verbose {
                report.detail(format!("note: {at}: {}", h.message));
            }
        } else {
            report.finding(Status::Warning, format!("{at}: {}", h.message));
        }
    }
    // Not a fault: both players read the element as if its children were not there.
    for n in &read.notes {
        report.detail(format!(
            "note: {origin} line {}: {} {}",
            n.line, n.message, n.rule
        ));
    }
    LsFetched::Policy(read)
}

/// `-v`: one line per grant as Lightspark reads it, with its verdict if asked.
fn list_grants(report: &mut Report, doc: &LsDocument, port: u16, question: Option<&Question>) {
    if let Some(sc) = &doc.site_control {
        report.detail(format!(
            "port {port} line {}: site-control permitted-cross-domain-policies=\"{}\"",
            sc.line, sc.value
        ));
    }
    for g in &doc.grants {
        let verdict = question.map_or(String::new(), |q| {
            format!(
                ": {} for \"{}\" port {}",
                judge(g, q).describe(),
                q.domain,
                q.to_port
            )
        });
        let ports = if g.ports.any {
            "every port".to_string()
        } else {
            let p: Vec<String> = g.ports.ports.iter().map(u16::to_string).collect();
            format!("ports {}", p.join(","))
        };
        report.detail(format!(
            "port {port} line {}: allow-access-from domain=\"{}\" to-ports=\"{}\" (Lightspark: {ports}){}{verdict}",
            g.line,
            g.domain,
            g.to_ports_text,
            if g.secure { " secure=\"true\"" } else { "" },
        ));
    }
}
