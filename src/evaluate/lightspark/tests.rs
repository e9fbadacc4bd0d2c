//! Unit tests of Lightspark's decision, framing and per-port hazards: each test that
//! checks a rule names it. Expected answers follow protocol.md §7.

use super::*;
use crate::evaluate::SwfDomain;

fn q(domain: &str, to_port: u16) -> Question {
    Question {
        domain: SwfDomain::parse(domain).unwrap(),
        to_port,
        secure: false,
    }
}

fn policy(body: &str, master: bool) -> LsFetched {
    let text = format!("<cross-domain-policy>\n{body}\n</cross-domain-policy>");
    LsFetched::Policy(ls::read(text.as_bytes(), master))
}

fn refused() -> LsFetched {
    LsFetched::Unavailable("connection refused".into(), None)
}

/// Decides with the master on 843 and the destination on the question's port.
fn run(question: &Question, master: LsFetched, dest: Option<&str>) -> (LsDecision, bool) {
    let mut asked = false;
    let d = decide(question, 843, master, |_| {
        asked = true;
        match dest {
            Some(body) => policy(body, false),
            None => refused(),
        }
    });
    (d, asked)
}

fn rules(d: &LsDecision) -> Vec<Rule> {
    d.rules.iter().map(|(r, _)| *r).collect()
}

const ALL: &str = r#"<allow-access-from domain="*" to-ports="*"/>"#;

#[test]
fn rule_framing_last_byte() {
    let reply = b"<cross-domain-policy/>\0";
    assert_eq!(
        frame(reply, &[reply.len()]).unwrap(),
        b"<cross-domain-policy/>"
    );
    let reply = b"<cross-domain-policy/>";
    assert_eq!(
        frame(reply, &[reply.len()]).unwrap(),
        b"<cross-domain-policy/>"
    );
    let reply = b"<cross-domain-policy/>\n";
    assert_eq!(
        frame(reply, &[reply.len()]).unwrap(),
        b"<cross-domain-policy/>"
    );
    let reply = b"<cross-domain-policy/> ";
    assert_eq!(frame(reply, &[reply.len()]).unwrap_err().0, Rule::Framing);
    assert_eq!(frame(b"", &[]).unwrap_err().0, Rule::Framing);
}

#[test]
fn rule_framing_bytes_after_the_nul() {
    let reply = b"<cross-domain-policy/>\0junk";
    assert_eq!(frame(reply, &[reply.len()]).unwrap_err().0, Rule::Framing);
    let reply = b"<cross-domain-policy/>\0<x>";
    assert_eq!(frame(reply, &[reply.len()]).unwrap_err().0, Rule::Framing);
}

#[test]
fn rule_first_read_keeps_only_the_first_short_read() {
    let reply = b"<cross-domain-policy/>\0";
    // Two writes: the first read ends in the middle.
    assert_eq!(
        frame(reply, &[10, reply.len() - 10]).unwrap_err().0,
        Rule::FirstRead
    );
    // A NUL-terminated first piece followed by junk in a later read is fine.
    let reply = b"<cross-domain-policy/>\0junk";
    assert!(frame(reply, &[23, 4]).is_ok());
    // Full 4,096-byte reads continue.
    let mut big = b"<cross-domain-policy>".to_vec();
    big.resize(5000, b' ');
    big.extend_from_slice(b"</cross-domain-policy>\0");
    let len = big.len();
    assert_eq!(
        frame(&big, &[READ_BUFFER, len - READ_BUFFER])
            .unwrap()
            .len(),
        len - 1
    );
}

#[test]
fn master_grant_allows_without_asking_the_destination() {
    let (d, asked) = run(&q("localhost", 8001), policy(ALL, true), Some(ALL));
    assert!(d.allowed && !asked);
}

#[test]
fn rule_fetch_order_master_only_refuses_the_destination_grant() {
    let master = policy(
        "<site-control permitted-cross-domain-policies=\"master-only\"/>",
        true,
    );
    let (d, asked) = run(&q("localhost", 8001), master, Some(ALL));
    assert!(!d.allowed && !asked, "{d:?}");
    assert!(
        d.summary.contains("[lightspark: fetch-order]"),
        "{}",
        d.summary
    );
    for value in ["by-content-type", "by-ftp-filename"] {
        let master = policy(
            &format!("<site-control permitted-cross-domain-policies=\"{value}\"/>"),
            true,
        );
        let (d, asked) = run(&q("localhost", 8001), master, Some(ALL));
        assert!(!d.allowed && !asked, "{value}");
    }
    let master = policy(
        "<site-control permitted-cross-domain-policies=\"all\"/>",
        true,
    );
    let (d, asked) = run(&q("localhost", 8001), master, Some(ALL));
    assert!(d.allowed && asked && d.fell_back);
    let (d, asked) = run(&q("localhost", 8001), policy("", true), Some(ALL));
    assert!(d.allowed && asked);
}

#[test]
fn rule_meta_unknown_honours_nothing() {
    let master = policy(
        &format!("<site-control permitted-cross-domain-policies=\"everything\"/>\n{ALL}"),
        true,
    );
    let (d, asked) = run(&q("localhost", 8001), master, Some(ALL));
    assert!(!d.allowed && !asked);
    assert_eq!(rules(&d), vec![Rule::MetaUnknown]);
    let master = policy(
        &format!("<site-control permitted-cross-domain-policies=\"none\"/>\n{ALL}"),
        true,
    );
    let (d, asked) = run(&q("localhost", 8001), master, Some(ALL));
    assert!(!d.allowed && !asked);
}

#[test]
fn unreachable_or_unusable_master_lets_the_destination_decide() {
    let (d, asked) = run(&q("localhost", 8001), refused(), Some(ALL));
    assert!(d.allowed && asked);
    let bad = LsFetched::Unavailable("ends in 0x6b".into(), Some(Rule::Framing));
    let (d, asked) = run(&q("localhost", 8001), bad, Some(ALL));
    assert!(d.allowed && asked);
}

#[test]
fn rule_void_master_grants_nothing_but_the_destination_is_asked() {
    let master = policy(
        &format!("{ALL}\n<allow-http-request-headers-from domain=\"*\" headers=\"*\"/>"),
        true,
    );
    let (d, asked) = run(&q("localhost", 8001), master.clone(), None);
    assert!(!d.allowed && asked);
    assert!(rules(&d).contains(&Rule::HttpHeadersElement));
    let (d, _) = run(&q("localhost", 8001), master, Some(ALL));
    assert!(d.allowed);
}

#[test]
fn rule_site_control_not_master_voids_the_destination_policy() {
    let dest = format!("<site-control permitted-cross-domain-policies=\"all\"/>\n{ALL}");
    let (d, asked) = run(&q("localhost", 8001), refused(), Some(&dest));
    assert!(!d.allowed && asked);
    assert!(rules(&d).contains(&Rule::SiteControlNotMaster));
}

#[test]
fn rule_range_first_port_in_a_decision() {
    let dest = r#"<allow-access-from domain="localhost" to-ports="8000-8100"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(!d.allowed);
    assert!(rules(&d).contains(&Rule::RangeFirstPort), "{d:?}");
    let dest = r#"<allow-access-from domain="localhost" to-ports="8001-8100"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(d.allowed);
}

#[test]
fn rule_star_lost_in_a_decision() {
    let dest = r#"<allow-access-from domain="*" to-ports="*,80-90"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(!d.allowed);
    assert!(rules(&d).contains(&Rule::StarLost), "{d:?}");
    let dest = r#"<allow-access-from domain="*" to-ports="80-90,*"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(d.allowed);
}

#[test]
fn rule_untrimmed_domain_in_a_decision() {
    let dest = r#"<allow-access-from domain=" localhost" to-ports="8001"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(!d.allowed);
    assert!(rules(&d).contains(&Rule::Untrimmed), "{d:?}");
}

#[test]
fn rule_no_low_port_rule() {
    let master = policy(r#"<allow-access-from domain="*" to-ports="*"/>"#, true);
    let d = decide(&q("a.com", 80), 9843, master, |_| unreachable!());
    assert!(d.allowed);
    assert_eq!(rules(&d), vec![Rule::NoLowPortRule]);
}

#[test]
fn secure_grants_need_https() {
    let dest = r#"<allow-access-from domain="*" to-ports="*" secure="true"/>"#;
    let (d, _) = run(&q("localhost", 8001), refused(), Some(dest));
    assert!(!d.allowed);
    let https = Question {
        secure: true,
        ..q("localhost", 8001)
    };
    let (d, _) = run(&https, refused(), Some(dest));
    assert!(d.allowed);
}

fn hazard_rules(body: &str, len: usize, port: u16) -> Vec<Rule> {
    let text = format!("<cross-domain-policy>\n{body}\n</cross-domain-policy>");
    hazards(text.as_bytes(), len, port, port == MASTER_PORT)
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
