//! Unit tests of Lightspark's reading of a policy: each test that checks a rule
//! names it. Expected readings follow protocol.md §7 and Lightspark's source.

use super::*;

fn wrap(body: &str) -> String {
    format!("<cross-domain-policy>\n{body}\n</cross-domain-policy>")
}

fn void_rule(body: &str, master: bool) -> Option<Rule> {
    read(wrap(body).as_bytes(), master).void.map(|v| v.rule)
}

const GRANT: &str = r#"<allow-access-from domain="*" to-ports="*"/>"#;

#[test]
fn rule_range_first_port_grants_the_first_number_only() {
    let p = LsPorts::parse("8000-8100");
    assert!(p.contains(8000) && !p.contains(8001) && !p.contains(8100));
    let p = LsPorts::parse("80,8000-8100");
    assert_eq!(p.ports, vec![80, 8000]);
    let p = LsPorts::parse("8001-8100");
    assert!(p.contains(8001));
    assert_eq!(LsPorts::parse("80x").ports, vec![80]);
    assert_eq!(LsPorts::parse("80,443").ports, vec![80, 443]);
    assert_eq!(LsPorts::parse("8000-8100,80").ports, vec![8000, 80]);
}

#[test]
fn rule_star_lost_before_a_dash() {
    let p = LsPorts::parse("*,80-90");
    assert!(!p.any && p.contains(80) && !p.contains(81) && !p.contains(9000));
    let p = LsPorts::parse("80-90,*");
    assert!(p.any);
    let p = LsPorts::parse("*,80");
    assert!(p.any);
    assert!(LsPorts::parse("*").any && LsPorts::parse("").any);
    assert!(!LsPorts::parse("80,*,90-100").any);
    // " *" is not "*": atoi gives 0, which grants nothing.
    let p = LsPorts::parse(" *");
    assert!(!p.any && !p.contains(0) && !p.contains(80));
}

#[test]
fn atoi_like_c() {
    assert_eq!(atoi(" 80"), 80);
    assert_eq!(atoi("80 "), 80);
    assert_eq!(atoi("+7"), 7);
    assert_eq!(atoi("-1") as u16, 65535);
    assert_eq!(atoi("70000") as u16, 4464);
    assert_eq!(atoi("x"), 0);
    assert_eq!(atoi("99999999999999999999") as u16, 65535);
}

#[test]
fn rule_untrimmed_values_are_taken_as_written() {
    assert!(!domain_matches(" localhost", "localhost"));
    assert!(domain_matches("LocalHost", "localhost"));
    let doc = read(
        wrap(r#"<allow-access-from domain=" localhost" to-ports="8001"/>"#).as_bytes(),
        false,
    );
    assert!(doc.void.is_none());
    assert_eq!(doc.grants[0].domain, " localhost");
}

#[test]
fn domains() {
    assert!(domain_matches("*.example.com", "example.com"));
    assert!(domain_matches("*.example.com", "a.b.example.com"));
    assert!(!domain_matches("*.example.com", "badexample.com"));
    assert!(domain_matches("*", "10.0.0.1"));
    assert!(domain_matches("10.0.0.1", "10.0.0.1"));
    assert!(!domain_matches("a.*.com", "a.b.com"));
}

#[test]
fn rule_site_control_not_master_voids() {
    let body = format!("<site-control permitted-cross-domain-policies=\"all\"/>\n{GRANT}");
    assert_eq!(void_rule(&body, false), Some(Rule::SiteControlNotMaster));
    assert_eq!(void_rule(&body, true), None);
}

#[test]
fn rule_site_control_repeated_and_attributes() {
    let sc = "<site-control permitted-cross-domain-policies=\"all\"/>";
    assert_eq!(
        void_rule(&format!("{sc}\n{sc}"), true),
        Some(Rule::SiteControlRepeated)
    );
    for bad in [
        "<site-control/>",
        "<site-control other=\"all\"/>",
        "<site-control permitted-cross-domain-policies=\"\"/>",
        "<site-control permitted-cross-domain-policies=\"all\" x=\"y\"/>",
    ] {
        assert_eq!(
            void_rule(bad, true),
            Some(Rule::SiteControlAttributes),
            "{bad}"
        );
    }
}

#[test]
fn rule_meta_unknown_reads_as_none_and_stops() {
    let doc = read(
        wrap(
            "<site-control permitted-cross-domain-policies=\"everything\"/>\n\
             <allow-http-request-headers-from domain=\"*\" headers=\"*\"/>",
        )
        .as_bytes(),
        true,
    );
    // Reading stopped at the site-control: the invalid element after it is not seen.
    assert!(doc.void.is_none());
    let sc = doc.site_control.unwrap();
    assert!(sc.meta.denies_all());
    assert_eq!(sc.meta, LsMeta::Unknown("everything".into()));
}

#[test]
fn rule_allow_attributes_more_than_three_void() {
    let four = r#"<allow-access-from domain="*" to-ports="*" secure="false" x="1"/>"#;
    assert_eq!(void_rule(four, false), Some(Rule::AllowAttributes));
    // An unknown attribute is fine while there are at most three.
    let three = r#"<allow-access-from domain="*" to-ports="*" x="1"/>"#;
    assert_eq!(void_rule(three, false), None);
    assert_eq!(
        void_rule("<allow-access-from/>", false),
        Some(Rule::AllowAttributes)
    );
}

#[test]
fn rule_allow_empty_voids() {
    for bad in [
        r#"<allow-access-from domain="*"/>"#,
        r#"<allow-access-from to-ports="*"/>"#,
        r#"<allow-access-from domain="" to-ports="*"/>"#,
        r#"<allow-access-from domain="*" to-ports=""/>"#,
    ] {
        assert_eq!(void_rule(bad, false), Some(Rule::AllowEmpty), "{bad}");
    }
}

#[test]
fn rule_http_headers_element_voids_wherever_it_stands() {
    let h = r#"<allow-http-request-headers-from domain="*" headers="*"/>"#;
    assert_eq!(
        void_rule(&format!("{GRANT}\n{h}"), false),
        Some(Rule::HttpHeadersElement)
    );
    assert_eq!(
        void_rule(&format!("{h}\n{GRANT}"), true),
        Some(Rule::HttpHeadersElement)
    );
}

#[test]
fn rule_nested_element_is_read_as_if_absent_and_unknown_elements_are_skipped() {
    assert_eq!(void_rule(&format!("{GRANT}\n<custom/>"), false), None);
    let doc = read(
        wrap(&format!("{GRANT}\n<custom><x/></custom>")).as_bytes(),
        false,
    );
    assert_eq!(doc.void, None);
    assert_eq!(doc.notes.len(), 1, "{doc:?}");
    assert_eq!(doc.notes[0].rule, Rule::NestedElement);
    // The parent of the child still grants, as if the child were not there (§7, checked).
    let doc = read(
        wrap("<allow-access-from domain=\"localhost\" to-ports=\"8001\"><x/></allow-access-from>")
            .as_bytes(),
        false,
    );
    assert_eq!(doc.void, None);
    assert_eq!(doc.grants.len(), 1, "{doc:?}");
    assert_eq!(doc.grants[0].domain, "localhost");
    assert!(doc.grants[0].ports.contains(8001));
    assert_eq!(
        doc.notes
            .iter()
            .map(|n| (n.rule, n.line))
            .collect::<Vec<_>>(),
        vec![(Rule::NestedElement, doc.grants[0].line)]
    );
    assert_eq!(void_rule("<allow-access-from-identity/>", false), None);
}

#[test]
fn rule_root_name_and_not_xml() {
    let doc = read(b"<policy/>", false);
    assert_eq!(doc.void.map(|v| v.rule), Some(Rule::RootName));
    let doc = read(b"<cross-domain-policy>", false);
    assert_eq!(doc.void.map(|v| v.rule), Some(Rule::NotXml));
    // Root attributes and text are not looked at.
    let doc = read(
        b"<cross-domain-policy x=\"1\">text</cross-domain-policy>",
        false,
    );
    assert!(doc.void.is_none());
}

#[test]
fn secure_counts_only_exactly_true() {
    let doc = read(
        wrap(r#"<allow-access-from domain="*" to-ports="*" secure="TRUE"/>"#).as_bytes(),
        false,
    );
    assert!(!doc.grants[0].secure);
    let doc = read(
        wrap(r#"<allow-access-from domain="*" to-ports="*" secure="true"/>"#).as_bytes(),
        false,
    );
    assert!(doc.grants[0].secure);
}
