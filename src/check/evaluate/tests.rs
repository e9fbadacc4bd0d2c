//! Unit tests of the player's decision: every rule, each site-control value, the
//! low-port rule on both sides, and the fallback. Expected answers follow docs/protocol.md §4–5.

use super::*;
use crate::policy::{SiteControl, ToPorts};

fn grant(domain: &str, ports: &str) -> AllowAccessFrom {
    let to_ports = if ports == "*" {
        ToPorts::Any
    } else {
        ToPorts::Ranges(
            ports
                .split(',')
                .map(|p| match p.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (p.parse().unwrap(), p.parse().unwrap()),
                })
                .collect(),
        )
    };
    AllowAccessFrom {
        domain: domain.to_string(),
        to_ports,
        to_ports_text: ports.to_string(),
        secure: false,
        line: 2,
    }
}

fn secure(mut g: AllowAccessFrom) -> AllowAccessFrom {
    g.secure = true;
    g
}

fn doc(meta: Option<MetaPolicy>, grants: Vec<AllowAccessFrom>) -> Document {
    Document {
        site_control: meta.map(|permitted| SiteControl { permitted, line: 1 }),
        allow_access_from: grants,
    }
}

fn q(domain: &str, to_port: u16) -> Question {
    Question {
        domain: SwfDomain::parse(domain).unwrap(),
        to_port,
        secure: false,
    }
}

fn m(pattern: &str, domain: &str) -> bool {
    domain_matches(pattern, &SwfDomain::parse(domain).unwrap())
}

/// Decides with a master document and an optional destination document; reports
/// whether the destination was fetched.
fn run(question: &Question, master: Fetched, dest: Option<Document>) -> (Decision, bool) {
    let mut asked = false;
    let d = decide(question, 843, master, |_| {
        asked = true;
        match dest {
            Some(d) => Fetched::Policy(d),
            None => Fetched::Unavailable("connection refused".into()),
        }
    });
    (d, asked)
}

#[test]
fn star_matches_names_and_ips() {
    assert!(m("*", "example.com"));
    assert!(m("*", "10.0.0.1"));
    assert!(m("*", "::1"));
}

#[test]
fn exact_names_are_case_insensitive() {
    assert!(m("www.Example.COM", "WWW.example.com"));
    assert!(!m("www.example.com", "example.com"));
    assert!(!m("example.com", "www.example.com"));
    assert!(!m("example.com", "badexample.com"));
}

#[test]
fn leftmost_wildcard_matches_base_and_subdomains() {
    assert!(m("*.example.com", "example.com"));
    assert!(m("*.example.com", "a.example.com"));
    assert!(m("*.example.com", "a.b.EXAMPLE.com"));
    assert!(m("*.Example.Com", "x.example.com"));
    assert!(!m("*.example.com", "badexample.com"));
    assert!(!m("*.example.com", "example.org"));
    assert!(!m("*.example.com", "example.com.evil.org"));
}

#[test]
fn other_wildcards_match_nothing() {
    assert!(!m("a.*.com", "a.b.com"));
    assert!(!m("www.*", "www.example.com"));
    assert!(!m("*example.com", "www.example.com"));
    assert!(!m("*.*.com", "a.b.com"));
    assert!(!m("*.", "example.com"));
    assert!(!m("", "example.com"));
    assert!(!m("exa_mple.com", "exa_mple.com"));
    assert!(!m("*.-bad.com", "x.-bad.com"));
}

#[test]
fn ip_patterns_match_only_that_ip() {
    assert!(m("10.0.0.1", "10.0.0.1"));
    assert!(!m("10.0.0.1", "10.0.0.2"));
    assert!(m("::1", "[::1]"));
    assert!(!m("[::1]", "::1"));
    assert!(m("0:0:0:0:0:0:0:1", "::1"));
    assert!(m("::ffff:10.0.0.1", "10.0.0.1"));
    assert!(!m("::1", "127.0.0.1"));
}

#[test]
fn names_and_ips_never_match_each_other() {
    assert!(!m("localhost", "127.0.0.1"));
    assert!(!m("127.0.0.1", "localhost"));
    assert!(!m("*.0.0.1", "127.0.0.1"));
    assert!(!m("*.1", "10.0.0.1"));
}

#[test]
fn swf_domain_parse_rejects_garbage() {
    assert!(SwfDomain::parse("").is_err());
    assert!(SwfDomain::parse("*").is_err());
    assert!(SwfDomain::parse("a b").is_err());
    assert!(SwfDomain::parse("a..b").is_err());
    assert!(SwfDomain::parse("*.example.com").is_err());
    assert!(SwfDomain::parse("a.1.2.3").is_err());
    assert!(SwfDomain::parse("1.2.3").is_err());
    assert_eq!(
        SwfDomain::parse("WWW.Example.com.").unwrap(),
        SwfDomain::Name("www.example.com".into())
    );
}

#[test]
fn ports_lists_ranges_and_star() {
    let g = grant("*", "80,443,9000-9100");
    assert!(ports_match(&g.to_ports, 80));
    assert!(ports_match(&g.to_ports, 443));
    assert!(ports_match(&g.to_ports, 9000));
    assert!(ports_match(&g.to_ports, 9050));
    assert!(ports_match(&g.to_ports, 9100));
    assert!(!ports_match(&g.to_ports, 8999));
    assert!(!ports_match(&g.to_ports, 9101));
    assert!(!ports_match(&g.to_ports, 81));
    assert!(ports_match(&ToPorts::Any, 1));
    assert!(ports_match(&ToPorts::Any, 65535));
}

#[test]
fn low_port_rule_both_sides() {
    assert!(low_port_allows(843, 80));
    assert!(low_port_allows(843, 9000));
    assert!(low_port_allows(1023, 1));
    assert!(low_port_allows(9000, 1024));
    assert!(low_port_allows(9000, 9000));
    assert!(!low_port_allows(1024, 1023));
    assert!(!low_port_allows(9000, 80));
}

#[test]
fn judge_order_and_secure() {
    let question = q("x.example.com", 8080);
    assert_eq!(
        judge(&grant("other.com", "*"), &question, 843),
        Grant::OtherDomain
    );
    assert_eq!(
        judge(&grant("*.example.com", "80"), &question, 843),
        Grant::OtherPort
    );
    assert_eq!(
        judge(&secure(grant("*", "*")), &question, 843),
        Grant::NeedsSecure
    );
    let https = Question {
        secure: true,
        ..question.clone()
    };
    assert_eq!(judge(&secure(grant("*", "*")), &https, 843), Grant::Grants);
    // secure="false" applies to both.
    assert_eq!(judge(&grant("*", "*"), &https, 843), Grant::Grants);
    assert_eq!(
        judge(&grant("*", "*"), &q("x.example.com", 80), 9000),
        Grant::LowPort
    );
}

#[test]
fn master_grant_allows_without_fallback() {
    let master = doc(None, vec![grant("*.example.com", "8080")]);
    let (d, asked) = run(&q("a.example.com", 8080), Fetched::Policy(master), None);
    assert!(d.allowed);
    assert!(!asked);
    assert!(!d.fell_back);
    assert!(d.summary.contains("line 2"), "{}", d.summary);
}

#[test]
fn port_miss_is_explained() {
    let master = doc(
        Some(MetaPolicy::MasterOnly),
        vec![grant("*.example.com", "80,443")],
    );
    let (d, _) = run(&q("x.example.com", 8080), Fetched::Policy(master), None);
    assert!(!d.allowed);
    assert!(d.facts.iter().any(|f| f
        == "allow-access-from at line 2 matches domain \"x.example.com\" but not port 8080 (to-ports \"80,443\")"));
}

#[test]
fn absent_site_control_means_all_and_falls_back() {
    let master = doc(None, vec![grant("other.com", "*")]);
    let dest = doc(None, vec![grant("*", "9000")]);
    let (d, asked) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(asked);
    assert!(d.allowed);
    assert!(d.fell_back);
    assert_eq!(d.policies.len(), 2);
    assert_eq!(d.policies[1].role, Role::Destination);
}

#[test]
fn site_control_all_falls_back() {
    let master = doc(Some(MetaPolicy::All), vec![]);
    let dest = doc(None, vec![grant("a.com", "9000")]);
    let (d, asked) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(asked && d.allowed);
}

#[test]
fn master_only_forbids_fallback() {
    let master = doc(Some(MetaPolicy::MasterOnly), vec![grant("other.com", "*")]);
    let dest = doc(None, vec![grant("*", "*")]);
    let (d, asked) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(!d.allowed);
    assert!(!asked);
    assert_eq!(
        d.summary,
        "no allow-access-from in the master policy on port 843 matches domain \"a.com\" \
         (domains: \"other.com\"); master policy on port 843 has site-control master-only \
         (line 1): the policy on port 9000 is not consulted"
    );
}

#[test]
fn master_only_still_honours_master_grants() {
    let master = doc(Some(MetaPolicy::MasterOnly), vec![grant("a.com", "9000")]);
    let (d, asked) = run(&q("a.com", 9000), Fetched::Policy(master), None);
    assert!(d.allowed && !asked);
}

#[test]
fn none_denies_even_master_grants() {
    let master = doc(Some(MetaPolicy::None), vec![grant("*", "*")]);
    let dest = doc(None, vec![grant("*", "*")]);
    let (d, asked) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(!d.allowed);
    assert!(!asked);
    assert!(!d.policies[0].honoured);
    assert!(d.summary.contains("site-control none"), "{}", d.summary);
}

#[test]
fn http_values_act_as_master_only() {
    for meta in [MetaPolicy::ByContentType, MetaPolicy::ByFtpFilename] {
        let master = doc(Some(meta), vec![grant("a.com", "80")]);
        let dest = doc(None, vec![grant("*", "*")]);
        let (d, asked) = run(
            &q("a.com", 9000),
            Fetched::Policy(master.clone()),
            Some(dest),
        );
        assert!(!d.allowed && !asked);
        let (d, _) = run(&q("a.com", 80), Fetched::Policy(master), None);
        assert!(d.allowed);
    }
}

#[test]
fn unavailable_master_falls_back() {
    let dest = doc(None, vec![grant("a.com", "9000")]);
    let (d, asked) = run(
        &q("a.com", 9000),
        Fetched::Unavailable("connection refused".into()),
        Some(dest),
    );
    assert!(asked && d.allowed && d.fell_back);
    assert!(d.facts[0].contains("falls back"), "{}", d.facts[0]);
}

#[test]
fn nothing_anywhere_denies() {
    let (d, asked) = run(
        &q("a.com", 9000),
        Fetched::Unavailable("timed out".into()),
        None,
    );
    assert!(asked && !d.allowed);
    assert_eq!(
        d.summary,
        "no master policy on port 843 (timed out); no policy on port 9000 (connection refused)"
    );
}

#[test]
fn destination_site_control_is_ignored() {
    let master = doc(None, vec![]);
    let dest = doc(Some(MetaPolicy::None), vec![grant("a.com", "9000")]);
    let (d, _) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(d.allowed);
    assert!(d.facts.iter().any(|f| f.contains("is ignored")));
}

#[test]
fn low_port_rule_applies_by_destination_port() {
    // The destination policy is served from port 9000 and cannot grant port 80... but
    // the destination *is* the port asked, so a high destination grants high ports.
    let master = doc(None, vec![]);
    let dest = doc(None, vec![grant("*", "*")]);
    let (d, _) = run(&q("a.com", 9000), Fetched::Policy(master), Some(dest));
    assert!(d.allowed);
    // Master served from a high port cannot grant a low port.
    let master = doc(Some(MetaPolicy::MasterOnly), vec![grant("*", "*")]);
    let d = decide(
        &q("a.com", 80),
        9843,
        Fetched::Policy(master),
        |_| unreachable!(),
    );
    assert!(!d.allowed);
    assert!(d.facts.iter().any(|f| f.starts_with(
        "policy served from port 9843 (>= 1024) cannot grant port 80 (low-port rule)"
    )));
    // From a low port, the same policy grants port 80.
    let master = doc(Some(MetaPolicy::MasterOnly), vec![grant("*", "*")]);
    let d = decide(
        &q("a.com", 80),
        843,
        Fetched::Policy(master),
        |_| unreachable!(),
    );
    assert!(d.allowed);
}

#[test]
fn low_destination_port_policy_may_grant_low_port() {
    let master = doc(None, vec![]);
    let dest = doc(None, vec![grant("*", "80")]);
    let (d, asked) = run(&q("a.com", 80), Fetched::Policy(master), Some(dest));
    assert!(asked && d.allowed);
}

#[test]
fn same_port_means_no_fallback() {
    let master = doc(None, vec![grant("b.com", "*")]);
    let d = decide(
        &q("a.com", 843),
        843,
        Fetched::Policy(master),
        |_| unreachable!(),
    );
    assert!(!d.allowed && !d.fell_back);
    assert!(d.summary.contains("no allow-access-from"), "{}", d.summary);
}

#[test]
fn secure_grant_is_explained() {
    let master = doc(Some(MetaPolicy::MasterOnly), vec![secure(grant("*", "*"))]);
    let (d, _) = run(&q("a.com", 9000), Fetched::Policy(master), None);
    assert!(!d.allowed);
    assert!(d
        .facts
        .iter()
        .any(|f| f.starts_with("grant at line 2 requires secure (HTTPS) SWFs")));
}

#[test]
fn several_grants_add_up() {
    let master = doc(
        Some(MetaPolicy::MasterOnly),
        vec![
            grant("a.com", "80"),
            grant("b.com", "9000"),
            grant("*.a.com", "9000-9001"),
        ],
    );
    let (d, _) = run(&q("a.com", 9001), Fetched::Policy(master), None);
    assert!(d.allowed);
    assert!(
        d.summary.contains("to-ports \"9000-9001\""),
        "{}",
        d.summary
    );
}

#[test]
fn empty_policy_is_explained() {
    let (d, _) = run(&q("a.com", 843), Fetched::Policy(doc(None, vec![])), None);
    assert!(!d.allowed);
    assert_eq!(
        d.summary,
        "master policy on port 843 has no allow-access-from"
    );
}
