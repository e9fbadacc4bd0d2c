//! How Flash Player decides whether a SWF may open a socket, from the client's side:
//! domain and port matching, `secure`, the low-port rule, and the master's meta-policy
//! with the fallback to the destination port (docs/protocol.md §4–5).
//!
//! Pure logic, no I/O: the policy on the destination port is obtained through a
//! closure, so that the caller fetches it only when the player would. The rules for
//! one grant live in `evaluate/matching.rs`; this file combines them over the master and the
//! destination policy.

pub mod lightspark;
mod matching;

#[cfg(test)]
use matching::low_port_allows;
pub use matching::{domain_matches, ports_match, SwfDomain};
pub(crate) use matching::{judge, Grant, Question};

use crate::policy::{AllowAccessFrom, Document, MetaPolicy};
use crate::protocol::LOW_PORT_LIMIT;

/// Which role a policy played in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Served on the port the player asks first: its `site-control` decides.
    Master,
    /// Served on the destination port: its `site-control` is ignored.
    Destination,
}

/// One `allow-access-from` and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judged {
    /// The grant as found in the policy.
    pub element: AllowAccessFrom,
    /// What it says to the question.
    pub grant: Grant,
}

/// A policy the player consulted, with a verdict for each of its grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyEval {
    /// The port it was served from.
    pub port: u16,
    /// Master or destination policy.
    pub role: Role,
    /// The meta-policy it declares (meaningful only for the master).
    pub site_control: Option<crate::policy::SiteControl>,
    /// `false` when its grants do not count (master with `site-control none`).
    pub honoured: bool,
    /// Every grant, in document order.
    pub elements: Vec<Judged>,
}

impl PolicyEval {
    /// Judges every grant of `document`, served from `port`.
    pub(crate) fn new(
        document: &Document,
        question: &Question,
        port: u16,
        role: Role,
    ) -> PolicyEval {
        let elements = document
            .allow_access_from
            .iter()
            .map(|e| Judged {
                element: e.clone(),
                grant: judge(e, question, port),
            })
            .collect();
        PolicyEval {
            port,
            role,
            site_control: document.site_control.clone(),
            honoured: true,
            elements,
        }
    }

    /// The first grant that allows access, if any (ignores `honoured`).
    pub(crate) fn granting(&self) -> Option<&Judged> {
        self.elements.iter().find(|j| j.grant == Grant::Grants)
    }

    /// Why this policy does not grant access, one plain sentence per deciding fact:
    /// each near miss (domain matched, something else did not), or else that no grant
    /// matches the domain at all.
    pub(crate) fn misses(&self, question: &Question) -> Vec<String> {
        let name = self.name();
        if self.elements.is_empty() {
            return vec![format!("{name} has no allow-access-from")];
        }
        let near: Vec<String> = self
            .elements
            .iter()
            .filter(|j| j.grant != Grant::OtherDomain)
            .map(|j| explain(j, question, self.port))
            .collect();
        if !near.is_empty() {
            return near;
        }
        let domains: Vec<String> = self
            .elements
            .iter()
            .map(|j| format!("\"{}\"", j.element.domain))
            .collect();
        vec![format!(
            "no allow-access-from in the {name} matches domain \"{}\" (domains: {})",
            question.domain,
            domains.join(", ")
        )]
    }

    /// `master policy on port 843` or `policy on port 9000`.
    pub(crate) fn name(&self) -> String {
        match self.role {
            Role::Master => format!("master policy on port {}", self.port),
            Role::Destination => format!("policy on port {}", self.port),
        }
    }
}

/// One plain sentence on a judged grant of a policy served from `port`.
pub(crate) fn explain(judged: &Judged, question: &Question, port: u16) -> String {
    let e = &judged.element;
    let line = e.line;
    let domain = &question.domain;
    let to_port = question.to_port;
    match judged.grant {
        Grant::Grants => format!(
            "allow-access-from at line {line} of the policy on port {port} grants \"{domain}\" \
             port {to_port} (domain \"{}\", to-ports \"{}\")",
            e.domain, e.to_ports_text
        ),
        Grant::OtherDomain => format!(
            "allow-access-from at line {line} does not match domain \"{domain}\" (domain \"{}\")",
            e.domain
        ),
        Grant::OtherPort => format!(
            "allow-access-from at line {line} matches domain \"{domain}\" but not port {to_port} \
             (to-ports \"{}\")",
            e.to_ports_text
        ),
        Grant::NeedsSecure => format!(
            "grant at line {line} requires secure (HTTPS) SWFs (secure=\"true\"); this SWF is \
             not served over HTTPS (see --secure)"
        ),
        Grant::LowPort => format!(
            "policy served from port {port} (>= {LOW_PORT_LIMIT}) cannot grant port {to_port} \
             (low-port rule); allow-access-from at line {line} would otherwise grant it"
        ),
    }
}

/// A policy as the player obtained it, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// A valid policy document.
    Policy(Document),
    /// No usable policy: refused, timed out, invalid..., in words.
    Unavailable(String),
}

/// The player's answer and the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Access granted.
    pub allowed: bool,
    /// The one fact that decided, for a one-line summary.
    pub summary: String,
    /// Every deciding fact, in the order the player met them.
    pub facts: Vec<String>,
    /// The policies consulted, master first.
    pub policies: Vec<PolicyEval>,
    /// Whether the destination port was asked for a policy (the fallback).
    pub fell_back: bool,
}

impl Decision {
    fn deny(
        summary: String,
        facts: Vec<String>,
        policies: Vec<PolicyEval>,
        fell_back: bool,
    ) -> Self {
        Decision {
            allowed: false,
            summary,
            facts,
            policies,
            fell_back,
        }
    }

    /// Access granted by `eval`: `fact` names the grant and becomes the summary.
    fn allow(
        fact: String,
        mut facts: Vec<String>,
        mut policies: Vec<PolicyEval>,
        eval: PolicyEval,
        fell_back: bool,
    ) -> Self {
        facts.push(fact.clone());
        policies.push(eval);
        Decision {
            allowed: true,
            summary: fact,
            facts,
            policies,
            fell_back,
        }
    }
}

/// Decides like the player: the policy on `master_port` is the master; if it grants,
/// access is allowed; if its meta-policy permits (`all` or no `site-control`), or if
/// there is no usable master, `fetch_destination(question.to_port)` is called and that
/// policy decides, with the low-port rule applied by its own port.
///
/// `site-control none` denies everything, `master-only` forbids the fallback, and the
/// HTTP/FTP values `by-content-type` and `by-ftp-filename` are treated like
/// `master-only`, as Lightspark does for sockets (it consults the destination port only
/// under `all`).
pub(crate) fn decide<F>(
    question: &Question,
    master_port: u16,
    master: Fetched,
    fetch_destination: F,
) -> Decision
where
    F: FnOnce(u16) -> Fetched,
{
    let to_port = question.to_port;
    let mut facts = Vec::new();
    let mut policies = Vec::new();
    // Why the master did not grant: the first half of a denial after the fallback.
    let master_why = match master {
        Fetched::Policy(doc) => {
            let mut eval = PolicyEval::new(&doc, question, master_port, Role::Master);
            let meta = doc.site_control.as_ref().map(|s| (s.permitted, s.line));
            if let Some((MetaPolicy::None, line)) = meta {
                eval.honoured = false;
                let fact = format!(
                    "master policy on port {master_port} has site-control none (line {line}): no \
                     policy is honoured, not even the master's own grants"
                );
                facts.push(fact.clone());
                policies.push(eval);
                return Decision::deny(fact, facts, policies, false);
            }
            if let Some(judged) = eval.granting() {
                let fact = explain(judged, question, master_port);
                return Decision::allow(fact, facts, policies, eval, false);
            }
            let misses = eval.misses(question);
            let first_miss = misses.first().cloned().unwrap_or_default();
            facts.extend(misses);
            policies.push(eval);
            if to_port == master_port {
                // The destination is the master's own port: there is nothing else to ask.
                return Decision::deny(first_miss, facts, policies, false);
            }
            match meta {
                Some((MetaPolicy::All, _)) => facts.push(format!(
                    "master policy on port {master_port} does not grant access and its \
                     site-control all permits other policies: the player asks port {to_port} \
                     itself"
                )),
                Some((value, line)) => {
                    let mut fact = format!(
                        "master policy on port {master_port} has site-control {} (line {line}): \
                         the policy on port {to_port} is not consulted",
                        value.as_str()
                    );
                    if value != MetaPolicy::MasterOnly {
                        fact.push_str(" (an HTTP/FTP value, treated as master-only for sockets)");
                    }
                    facts.push(fact.clone());
                    return Decision::deny(format!("{first_miss}; {fact}"), facts, policies, false);
                }
                None => facts.push(format!(
                    "master policy on port {master_port} does not grant access and has no \
                     site-control (means all): the player asks port {to_port} itself"
                )),
            }
            first_miss
        }
        Fetched::Unavailable(why) => {
            let fact = format!("no master policy on port {master_port} ({why})");
            if to_port == master_port {
                facts.push(fact.clone());
                return Decision::deny(fact, facts, policies, false);
            }
            facts.push(format!(
                "{fact}: the player falls back to the destination port {to_port}"
            ));
            fact
        }
    };
    match fetch_destination(to_port) {
        Fetched::Policy(doc) => {
            let eval = PolicyEval::new(&doc, question, to_port, Role::Destination);
            if let Some(sc) = &doc.site_control {
                facts.push(format!(
                    "site-control at line {} of the policy on port {to_port} is ignored (not the \
                     master)",
                    sc.line
                ));
            }
            if let Some(judged) = eval.granting() {
                let fact = explain(judged, question, to_port);
                return Decision::allow(fact, facts, policies, eval, true);
            }
            let misses = eval.misses(question);
            let dest_why = misses.first().cloned().unwrap_or_default();
            facts.extend(misses);
            policies.push(eval);
            Decision::deny(format!("{master_why}; {dest_why}"), facts, policies, true)
        }
        Fetched::Unavailable(why) => {
            let fact = format!("no policy on port {to_port} ({why})");
            facts.push(fact.clone());
            Decision::deny(format!("{master_why}; {fact}"), facts, policies, true)
        }
    }
}

#[cfg(test)]
mod tests;
