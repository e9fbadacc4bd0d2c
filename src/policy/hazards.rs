//! What an operator should hear about a policy served on a given port (the per-port
//! hazards): whatever makes Lightspark void or misread it, and grants that Flash
//! Player and Lightspark answer differently (docs/protocol.md §7). The daemon logs
//! them at start, on reload and in `--check-config`; the checker reports them too.
//! Pure: the served bytes and the port in, lines out.

use super::lightspark::{self as ls, LsGrant, LsMeta, Rule};
use super::{Diagnostic, Policy, Severity, ToPorts};
use crate::protocol::{LOW_PORT_LIMIT, POLICY_PORT};

/// Replies longer than this may not arrive in one TCP segment, and Lightspark keeps
/// only the first piece that arrives.
pub(crate) const SEGMENT_BYTES: usize = 1400;

/// The Lightspark rule behind a `to-ports` value it reads unlike Flash Player.
pub(crate) fn misread_rule(g: &LsGrant) -> Option<Rule> {
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
pub(crate) fn describe_ports(g: &LsGrant) -> String {
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
        for h in hazards(document, bytes.len(), port, port == POLICY_PORT) {
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
mod tests {
    use super::*;

    const ALL: &str = r#"<allow-access-from domain="*" to-ports="*"/>"#;

    fn hazard_rules(body: &str, len: usize, port: u16) -> Vec<Rule> {
        let text = format!("<cross-domain-policy>\n{body}\n</cross-domain-policy>");
        hazards(text.as_bytes(), len, port, port == POLICY_PORT)
            .iter()
            .map(|h| h.rule)
            .collect()
    }

    #[test]
    fn hazards_per_port() {
        let sc = "<site-control permitted-cross-domain-policies=\"all\"/>";
        assert_eq!(
            hazard_rules(sc, 100, 8843),
            vec![Rule::SiteControlNotMaster]
        );
        assert_eq!(hazard_rules(sc, 100, 843), vec![]);
        let range = r#"<allow-access-from domain="*" to-ports="9000-9100"/>"#;
        assert_eq!(hazard_rules(range, 100, 843), vec![Rule::RangeFirstPort]);
        let star = r#"<allow-access-from domain="*" to-ports="*,9000-9100"/>"#;
        assert_eq!(hazard_rules(star, 100, 843), vec![Rule::StarLost]);
        let low = r#"<allow-access-from domain="*" to-ports="80,9000"/>"#;
        assert_eq!(hazard_rules(low, 100, 843), vec![]);
        assert_eq!(hazard_rules(low, 100, 8843), vec![Rule::NoLowPortRule]);
        assert_eq!(hazard_rules(ALL, 100, 8843), vec![Rule::NoLowPortRule]);
        assert_eq!(hazard_rules(ALL, 1401, 843), vec![Rule::ReplySize]);
        let headers = r#"<allow-http-request-headers-from domain="*" headers="*"/>"#;
        assert_eq!(
            hazard_rules(headers, 100, 843),
            vec![Rule::HttpHeadersElement]
        );
        let unknown = "<site-control permitted-cross-domain-policies=\"everything\"/>";
        assert_eq!(hazard_rules(unknown, 100, 843), vec![Rule::MetaUnknown]);
        let nested = "<custom><x/></custom>";
        // Read as if the child were not there, by both players: no hazard.
        assert_eq!(hazard_rules(nested, 100, 843), vec![]);
        // Every invalid element is listed, not only the one that voids the file.
        assert_eq!(
            hazard_rules(&format!("{sc}\n{headers}\n{range}"), 100, 8843),
            vec![
                Rule::SiteControlNotMaster,
                Rule::HttpHeadersElement,
                Rule::RangeFirstPort,
            ]
        );
    }

    #[test]
    fn hazard_messages_offer_the_fix_and_name_the_rule() {
        let sc = "<cross-domain-policy><site-control permitted-cross-domain-policies=\"all\"/></cross-domain-policy>";
        let h = &hazards(sc.as_bytes(), 100, 8843, false)[0];
        assert!(h.message.contains("remove site-control"), "{}", h.message);
        assert!(
            h.message.ends_with("[lightspark: site-control-not-master]"),
            "{}",
            h.message
        );
    }
}
