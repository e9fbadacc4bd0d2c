//! How Lightspark decides whether a SWF may open a socket (protocol.md §7): the reply
//! framing it accepts, the master on port 843 first, the destination port only when
//! the master's meta-policy is `all` (or the master is unusable), grants without the
//! low-port rule. Also the hazards an operator should hear about for a policy served
//! on a given port ([`hazards`]): the daemon and the checker share them.
//!
//! Pure logic, no I/O: policies are passed in, the destination one through a closure.

use super::{Question, LOW_PORT_LIMIT};
use crate::policy::lightspark::{self as ls, LsDocument, LsGrant, LsMeta, Rule};
use crate::policy::{Diagnostic, Policy, Severity, ToPorts};

/// Port Lightspark fetches the master policy from; only a policy from there may hold
/// `site-control`.
pub(crate) const MASTER_PORT: u16 = 843;

/// Lightspark's receive buffer: it reads again only after a read filled it.
pub(crate) const READ_BUFFER: usize = 4096;

/// Replies longer than this may not arrive in one TCP segment, and Lightspark keeps
/// only the first piece that arrives.
pub(crate) const SEGMENT_BYTES: usize = 1400;

/// A policy as Lightspark obtained it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LsFetched {
    /// A document it could read (possibly void: see [`LsDocument::void`]).
    Policy(LsDocument),
    /// Nothing usable: why, in words, and the Lightspark rule at fault if any.
    Unavailable(String, Option<Rule>),
}

/// Applies Lightspark's framing to a reply: keeps the bytes of the first read that
/// did not fill the 4,096-byte buffer (and of the full reads before it), requires the
/// last byte to be NUL, `>` or newline, and drops a final NUL or newline. A final `>`
/// is kept: protocol.md §7 records such a reply (no NUL) as accepted. A NUL left
/// inside voids the reply.
///
/// `reads` are the sizes of the successive reads that filled `received`.
///
/// # Errors
///
/// The rule and why, when Lightspark would have no usable policy.
pub(crate) fn frame(received: &[u8], reads: &[usize]) -> Result<Vec<u8>, (Rule, String)> {
    let mut take = 0;
    for &n in reads {
        take += n;
        if n != READ_BUFFER {
            break;
        }
    }
    let take = take.min(received.len());
    let kept = &received[..take];
    let cut = take < received.len();
    let last = match kept.last() {
        Some(&b) => b,
        None => return Err((Rule::Framing, "no reply".to_string())),
    };
    if !matches!(last, 0 | b'>' | b'\n') {
        return Err(if cut {
            (
                Rule::FirstRead,
                format!(
                    "the reply came in pieces: Lightspark keeps the first {take} of {} bytes, \
                     which do not end in NUL, \">\" or newline",
                    received.len()
                ),
            )
        } else {
            (
                Rule::Framing,
                format!("the reply ends in byte 0x{last:02x}, not in NUL, \">\" or newline"),
            )
        });
    }
    let doc = if last == b'>' {
        kept
    } else {
        &kept[..take - 1]
    };
    if let Some(at) = doc.iter().position(|&b| b == 0) {
        return Err((
            Rule::Framing,
            format!(
                "{} bytes follow the NUL at offset {at}",
                kept.len() - at - 1
            ),
        ));
    }
    Ok(doc.to_vec())
}

/// What one grant says to the question, as Lightspark judges it (no low-port rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LsGrantVerdict {
    /// Domain, secure and port agree.
    Grants,
    /// The domain does not match.
    OtherDomain,
    /// `secure="true"` and the SWF is not served over HTTPS.
    NeedsSecure,
    /// The port is not among those Lightspark reads in `to-ports`.
    OtherPort,
}

impl LsGrantVerdict {
    /// A few words for `-v`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            LsGrantVerdict::Grants => "grants access",
            LsGrantVerdict::OtherDomain => "domain does not match",
            LsGrantVerdict::NeedsSecure => "requires secure (HTTPS) SWFs",
            LsGrantVerdict::OtherPort => "domain matches, port not read in to-ports",
        }
    }
}

/// Judges one grant.
pub(crate) fn judge(grant: &LsGrant, question: &Question) -> LsGrantVerdict {
    if !ls::domain_matches(&grant.domain, &question.domain.to_string()) {
        LsGrantVerdict::OtherDomain
    } else if grant.secure && !question.secure {
        LsGrantVerdict::NeedsSecure
    } else if !grant.ports.contains(question.to_port) {
        LsGrantVerdict::OtherPort
    } else {
        LsGrantVerdict::Grants
    }
}

/// Lightspark's answer and the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LsDecision {
    /// Access granted.
    pub allowed: bool,
    /// The deciding facts, joined, for the summary.
    pub summary: String,
    /// Every fact in the order met.
    pub facts: Vec<String>,
    /// Facts where Lightspark reads or decides unlike Flash Player, with their rule.
    pub rules: Vec<(Rule, String)>,
    /// Whether the destination port was asked.
    pub fell_back: bool,
}

/// A consulted policy's contribution: granted (with the fact), or why not.
enum Outcome {
    Granted(String),
    Refused(String),
}

/// Judges every grant of `doc`, served from `port`, and notes the Lightspark rules
/// that changed the answer.
fn consult(
    doc: &LsDocument,
    question: &Question,
    port: u16,
    name: &str,
    rules: &mut Vec<(Rule, String)>,
) -> Outcome {
    if let Some(v) = &doc.void {
        let fact = format!(
            "Lightspark voids the {name} (line {}: {}) {}",
            v.line, v.message, v.rule
        );
        rules.push((v.rule, fact.clone()));
        return Outcome::Refused(fact);
    }
    let to_port = question.to_port;
    let mut near = Vec::new();
    for g in &doc.grants {
        let verdict = judge(g, question);
        if verdict == LsGrantVerdict::Grants {
            let fact = format!(
                "allow-access-from at line {} of the {name} grants \"{}\" port {to_port} \
                 (domain \"{}\", to-ports \"{}\")",
                g.line, question.domain, g.domain, g.to_ports_text
            );
            if port >= LOW_PORT_LIMIT && to_port < LOW_PORT_LIMIT {
                rules.push((
                    Rule::NoLowPortRule,
                    format!(
                        "{fact}: Lightspark has no low-port rule (Flash Player refuses a port \
                         below 1024 from a policy on port {port}) {}",
                        Rule::NoLowPortRule
                    ),
                ));
            }
            return Outcome::Granted(fact);
        }
        if verdict == LsGrantVerdict::OtherDomain {
            let trimmed = g.domain.trim();
            if trimmed != g.domain && ls::domain_matches(trimmed, &question.domain.to_string()) {
                let fact = format!(
                    "allow-access-from at line {}: domain \"{}\" has surrounding spaces and \
                     matches nothing in Lightspark {}",
                    g.line,
                    g.domain,
                    Rule::Untrimmed
                );
                rules.push((Rule::Untrimmed, fact.clone()));
                near.push(fact);
            }
            continue;
        }
        let fact = match verdict {
            LsGrantVerdict::NeedsSecure => format!(
                "grant at line {} requires secure (HTTPS) SWFs (secure=\"true\"); this SWF is \
                 not served over HTTPS",
                g.line
            ),
            _ => {
                let adobe = ToPorts::parse(&g.to_ports_text).is_ok_and(|p| p.contains(to_port));
                let rule = misread_rule(g);
                match rule {
                    Some(rule) if adobe || rule == Rule::StarLost => {
                        let fact = format!(
                            "allow-access-from at line {}: Lightspark reads to-ports \"{}\" as \
                             {}, not port {to_port} {rule}",
                            g.line,
                            g.to_ports_text,
                            describe_ports(g)
                        );
                        rules.push((rule, fact.clone()));
                        fact
                    }
                    _ => format!(
                        "allow-access-from at line {} matches domain \"{}\" but not port \
                         {to_port} (to-ports \"{}\")",
                        g.line, question.domain, g.to_ports_text
                    ),
                }
            }
        };
        near.push(fact);
    }
    if !near.is_empty() {
        return Outcome::Refused(near.join("; "));
    }
    if doc.grants.is_empty() {
        return Outcome::Refused(format!("the {name} has no allow-access-from"));
    }
    let domains: Vec<String> = doc
        .grants
        .iter()
        .map(|g| format!("\"{}\"", g.domain))
        .collect();
    Outcome::Refused(format!(
        "no allow-access-from in the {name} matches domain \"{}\" (domains: {})",
        question.domain,
        domains.join(", ")
    ))
}

/// The Lightspark rule behind a `to-ports` value it reads unlike Flash Player.
fn misread_rule(g: &LsGrant) -> Option<Rule> {
    let items: Vec<&str> = g.to_ports_text.split(',').collect();
    if items.iter().any(|i| i.trim() == "*") && !g.ports.any {
        Some(Rule::StarLost)
    } else if items.iter().any(|i| i.contains('-')) {
        Some(Rule::RangeFirstPort)
    } else if g.to_ports_text != g.to_ports_text.trim() {
        Some(Rule::Untrimmed)
    } else {
        None
    }
}

/// `ports 8000, 9000` or `every port`.
fn describe_ports(g: &LsGrant) -> String {
    if g.ports.any {
        return "every port".to_string();
    }
    let ports: Vec<String> = g
        .ports
        .ports
        .iter()
        .filter(|&&p| p != 0)
        .map(u16::to_string)
        .collect();
    if ports.is_empty() {
        "no port".to_string()
    } else {
        format!("port {}", ports.join(", "))
    }
}

/// Decides like Lightspark: the policy from `master_port` is the master. Unusable or
/// void, it grants nothing and the destination port is asked; `none` or an unknown
/// meta-policy denies everything; a matching grant allows; otherwise the destination
/// port is asked only under `all` (or no `site-control`), and its policy decides.
pub(crate) fn decide<F>(
    question: &Question,
    master_port: u16,
    master: LsFetched,
    fetch: F,
) -> LsDecision
where
    F: FnOnce(u16) -> LsFetched,
{
    let to_port = question.to_port;
    let mut facts = Vec::new();
    let mut rules = Vec::new();
    let name = format!("master policy on port {master_port}");
    let done = |allowed, summary: String, mut facts: Vec<String>, rules, fell_back| {
        if facts.last() != Some(&summary) {
            facts.push(summary.clone());
        }
        LsDecision {
            allowed,
            summary,
            facts,
            rules,
            fell_back,
        }
    };
    let master_why = match master {
        LsFetched::Unavailable(why, rule) => {
            let fact = format!("no usable master policy on port {master_port} ({why})");
            if let Some(rule) = rule {
                rules.push((rule, format!("{fact} {rule}")));
            }
            facts.push(fact.clone());
            fact
        }
        LsFetched::Policy(doc) => {
            if doc.void.is_none() {
                if let Some(sc) = doc.site_control.as_ref().filter(|s| s.meta.denies_all()) {
                    let mut fact = format!(
                        "master policy on port {master_port} has site-control \"{}\" (line {}): \
                         no policy is honoured, not even the master's own grants",
                        sc.value, sc.line
                    );
                    if let LsMeta::Unknown(_) = sc.meta {
                        fact.push_str(&format!(
                            " (Lightspark reads an unknown value as none {})",
                            Rule::MetaUnknown
                        ));
                        rules.push((Rule::MetaUnknown, fact.clone()));
                    }
                    return done(false, fact, facts, rules, false);
                }
            }
            match consult(&doc, question, master_port, &name, &mut rules) {
                Outcome::Granted(fact) => return done(true, fact, facts, rules, false),
                Outcome::Refused(why) => {
                    facts.push(why.clone());
                    if doc.void.is_none() && to_port != master_port {
                        match &doc.site_control {
                            Some(sc) if sc.meta != LsMeta::All => {
                                let fact = format!(
                                    "{why}; master policy on port {master_port} has site-control \
                                     \"{}\" (line {}): Lightspark asks the destination port only \
                                     under all {}",
                                    sc.value,
                                    sc.line,
                                    Rule::FetchOrder
                                );
                                return done(false, fact, facts, rules, false);
                            }
                            _ => {}
                        }
                    }
                    why
                }
            }
        }
    };
    if to_port == master_port {
        return done(false, master_why, facts, rules, false);
    }
    facts.push(format!(
        "the master does not grant access: Lightspark asks port {to_port} itself"
    ));
    let dest_name = format!("policy on port {to_port}");
    let dest_why = match fetch(to_port) {
        LsFetched::Unavailable(why, rule) => {
            let fact = format!("no usable policy on port {to_port} ({why})");
            if let Some(rule) = rule {
                rules.push((rule, format!("{fact} {rule}")));
            }
            fact
        }
        LsFetched::Policy(doc) => match consult(&doc, question, to_port, &dest_name, &mut rules) {
            Outcome::Granted(fact) => return done(true, fact, facts, rules, true),
            Outcome::Refused(why) => why,
        },
    };
    facts.push(dest_why.clone());
    LsDecision {
        allowed: false,
        summary: format!("{master_why}; {dest_why}"),
        facts,
        rules,
        fell_back: true,
    }
}

/// A hazard of a policy served on a port, for Lightspark or between players, with the
/// fix in its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    /// The Lightspark rule behind it.
    pub rule: Rule,
    /// 1-based line in the policy (0: the whole reply).
    pub line: usize,
    /// What goes wrong and how to fix it; ends with the rule name.
    pub message: String,
}

impl Hazard {
    fn new(rule: Rule, line: usize, message: String) -> Hazard {
        Hazard {
            rule,
            message: format!("{message} {rule}"),
            line,
        }
    }
}

/// The hazards of `document` served on `port` in a reply of `reply_len` bytes:
/// whatever makes Lightspark void it or misread it, and grants that Flash Player and
/// Lightspark answer differently (the low-port rule). `master` says whether Lightspark
/// takes this policy for the master (served from port 843).
pub fn hazards(document: &[u8], reply_len: usize, port: u16, master: bool) -> Vec<Hazard> {
    let mut out = Vec::new();
    if reply_len > SEGMENT_BYTES {
        out.push(Hazard::new(
            Rule::ReplySize,
            0,
            format!(
                "the reply is {reply_len} bytes, more than one TCP segment (about \
                 {SEGMENT_BYTES}): Lightspark keeps only the first piece that arrives and may \
                 refuse the policy; shorten it (comments, indentation, fewer elements)"
            ),
        ));
    }
    let doc = ls::read(document, master);
    for v in &doc.invalid {
        let fix = match v.rule {
            Rule::SiteControlNotMaster => format!(
                "Lightspark voids the whole policy; remove site-control from the policy served \
                 on port {port}, or serve it on port 843 (a redirect from 843 keeps it the \
                 master)"
            ),
            Rule::HttpHeadersElement => "Flash Player ignores it in a socket policy but \
                 Lightspark voids the whole policy; remove it (a crossdomain.xml is not a socket \
                 policy)"
                .to_string(),
            _ => "Lightspark voids the whole policy; remove or correct the element".to_string(),
        };
        out.push(Hazard::new(v.rule, v.line, format!("{}: {fix}", v.message)));
    }
    if let Some(sc) = &doc.site_control {
        if let LsMeta::Unknown(value) = &sc.meta {
            out.push(Hazard::new(
                Rule::MetaUnknown,
                sc.line,
                format!(
                    "site-control \"{value}\": Lightspark reads an unknown value as none and \
                     honours no policy at all; use all, master-only or none"
                ),
            ));
        }
    }
    for g in &doc.grants {
        let line = g.line;
        let text = &g.to_ports_text;
        if g.domain != g.domain.trim() {
            out.push(Hazard::new(
                Rule::Untrimmed,
                line,
                format!(
                    "domain \"{}\" has surrounding spaces: Lightspark compares it as written \
                     and it matches nothing; remove the spaces",
                    g.domain
                ),
            ));
        }
        match misread_rule(g) {
            Some(Rule::StarLost) => out.push(Hazard::new(
                Rule::StarLost,
                line,
                format!(
                    "to-ports \"{text}\": Lightspark loses a \"*\" followed by a range and \
                     grants only {}; write to-ports=\"*\" alone",
                    describe_ports(g)
                ),
            )),
            Some(Rule::RangeFirstPort) => out.push(Hazard::new(
                Rule::RangeFirstPort,
                line,
                format!(
                    "to-ports \"{text}\": Lightspark grants only the first port of each range \
                     ({}); list the ports one by one, or use \"*\"",
                    describe_ports(g)
                ),
            )),
            Some(Rule::Untrimmed) => out.push(Hazard::new(
                Rule::Untrimmed,
                line,
                format!("to-ports \"{text}\" has surrounding spaces; remove them"),
            )),
            _ => {}
        }
        if port >= LOW_PORT_LIMIT {
            let low = match ToPorts::parse(text) {
                Ok(ToPorts::Any) => true,
                Ok(ToPorts::Ranges(r)) => r.iter().any(|&(lo, _)| lo < LOW_PORT_LIMIT),
                Err(_) => false,
            };
            if low {
                out.push(Hazard::new(
                    Rule::NoLowPortRule,
                    line,
                    format!(
                        "to-ports \"{text}\" includes ports below 1024: Flash Player refuses \
                         them from a policy served on port {port} (>= 1024), Lightspark grants \
                         them; serve the policy on port 843 (or redirect 843 here) so that both \
                         players agree, or grant only ports of 1024 and above"
                    ),
                ));
            }
        }
    }
    out
}

/// The hazards of `policy` on each of `ports` (each port once, in order), one line
/// each: `port 8843: PATH:LINE: message`. What the daemon logs at start and
/// `--check-config` prints.
pub(crate) fn served_hazards(policy: &Policy, ports: &[u16]) -> Vec<String> {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let bytes = policy.bytes();
    let document = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    let mut out = Vec::new();
    for port in ports {
        for h in hazards(document, bytes.len(), port, port == MASTER_PORT) {
            let at = Diagnostic {
                severity: Severity::Warning,
                line: h.line,
                message: h.message,
            };
            out.push(format!("port {port}: {}", policy.locate(&at)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
