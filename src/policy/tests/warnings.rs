//! Legal but dubious documents: valid, with a warning (something to fix) or a note
//! (true and useful, nothing to fix) on the right line.

use super::{assert_note, assert_warning, wrap};
use crate::policy::{validate, MetaPolicy};

const GRANT: &str = "<allow-access-from domain=\"*\" to-ports=\"*\"/>";

#[test]
fn utf8_byte_order_mark() {
    assert_warning(
        &format!("\u{FEFF}{}", wrap(GRANT)),
        1,
        &["UTF-8 byte-order mark"],
    );
    let doc = format!("\u{FEFF}<?xml version=\"1.0\"?>\n{}", wrap(GRANT));
    assert_warning(&doc, 1, &["byte-order mark"]);
}

#[test]
fn secure_true_is_a_note() {
    let doc = wrap("<allow-access-from domain=\"*\"\n to-ports=\"*\"\n secure=\"true\"/>");
    assert_note(&doc, 4, &["allow-access-from", "secure", "HTTPS"]);
}

#[test]
fn site_control_values_meaningless_for_sockets() {
    for value in ["by-content-type", "by-ftp-filename"] {
        let doc = wrap(&format!(
            "{GRANT}\n<site-control permitted-cross-domain-policies=\"{value}\"/>"
        ));
        assert_warning(&doc, 3, &["site-control", value]);
    }
}

#[test]
fn site_control_none() {
    // With grants, they never apply: a warning. Alone, a deliberate "deny all": a note.
    assert_note(
        &wrap("<site-control permitted-cross-domain-policies=\"none\"/>"),
        2,
        &["site-control", "\"none\""],
    );
    let doc = wrap(&format!(
        "<site-control permitted-cross-domain-policies=\"none\"/>\n{GRANT}"
    ));
    assert_warning(&doc, 2, &["site-control", "\"none\"", "never apply"]);
    let report = validate(doc.as_bytes());
    let permitted = report
        .document
        .and_then(|d| d.site_control)
        .map(|s| s.permitted);
    assert_eq!(permitted, Some(MetaPolicy::None));
}

#[test]
fn unknown_elements() {
    assert_warning(
        &wrap(&format!("{GRANT}\n<grant-everything/>")),
        3,
        &["<grant-everything>"],
    );
    let identity = "<allow-access-from-identity>\n<signatory/>\n</allow-access-from-identity>";
    assert_note(
        &wrap(&format!("{GRANT}\n{identity}")),
        3,
        &["allow-access-from-identity"],
    );
    let cased = wrap(&format!(
        "{GRANT}\n<Allow-Access-From domain=\"*\" to-ports=\"*\"/>"
    ));
    assert_warning(&cased, 3, &["<Allow-Access-From>", "<allow-access-from>"]);
}

#[test]
fn unknown_element_contents_are_not_examined() {
    let doc = wrap(&format!(
        "{GRANT}\n<extra>\n<allow-access-from bogus=\"1\"/>\n</extra>"
    ));
    let report = validate(doc.as_bytes());
    assert!(report.is_valid());
    assert_eq!(report.warnings().count(), 1);
    assert_eq!(report.document.map(|d| d.allow_access_from.len()), Some(1));
}

#[test]
fn spaces_inside_to_ports() {
    let doc = wrap("<allow-access-from domain=\"*\"\n to-ports=\"80, 81\"/>");
    assert_warning(&doc, 3, &["to-ports", "\"80, 81\""]);
    let report = validate(doc.as_bytes());
    let grant = report.document.map(|d| d.allow_access_from[0].clone());
    assert_eq!(
        grant.map(|g| (g.to_ports_text, g.to_ports.contains(81))),
        Some(("80, 81".into(), true))
    );
}

#[test]
fn grant_of_nothing() {
    // A master without grants lets players ask each destination port: a note.
    assert_note("<cross-domain-policy/>", 0, &["allow-access-from"]);
    let doc = wrap("<site-control permitted-cross-domain-policies=\"all\"/>");
    assert_note(&doc, 0, &["allow-access-from"]);
    // Under master-only nothing can ever be granted: a warning.
    let doc = wrap("<site-control permitted-cross-domain-policies=\"master-only\"/>");
    assert_warning(&doc, 0, &["allow-access-from"]);
}

#[test]
fn domains_that_never_match() {
    for domain in [
        "",
        "*.",
        "a.*.com",
        "*example.com",
        "exa_mple.com",
        "example..com",
        "http://example.com",
        "example.com:80",
        "-a.com",
    ] {
        let doc = wrap(&format!(
            "<allow-access-from\n  domain=\"{domain}\" to-ports=\"*\"/>"
        ));
        assert_warning(
            &doc,
            3,
            &["allow-access-from", "domain", &format!("\"{domain}\"")],
        );
    }
}

#[test]
fn good_domains_do_not_warn() {
    for domain in [
        "*",
        "example.com",
        "*.example.com",
        "WWW.Example.COM",
        "192.0.2.1",
        "2001:db8::1",
        "localhost",
    ] {
        let doc = wrap(&format!(
            "<allow-access-from domain=\"{domain}\" to-ports=\"*\"/>"
        ));
        let report = validate(doc.as_bytes());
        assert_eq!(report.diagnostics, vec![], "{domain}");
    }
}

#[test]
fn text_between_elements() {
    assert_note(&wrap(&format!("{GRANT}\nhello")), 3, &["text", "\"hello\""]);
    assert_note(
        &wrap(&format!("{GRANT}\n<![CDATA[\n\nhi]]>")),
        5,
        &["text", "\"hi\""],
    );
    let inside = wrap("<allow-access-from domain=\"*\" to-ports=\"*\">\n  x\n</allow-access-from>");
    assert_note(&inside, 3, &["allow-access-from", "text"]);
}

#[test]
fn children_of_policy_elements() {
    let doc = wrap(
        "<allow-access-from domain=\"*\" to-ports=\"*\">\n<port>80</port>\n</allow-access-from>",
    );
    // Flash Player ignores them (a note); Lightspark voids the file, which the
    // per-port hazards report (policy::hazards).
    assert_note(&doc, 3, &["allow-access-from", "<port>", "Lightspark"]);
    let doc = wrap(&format!(
        "<site-control permitted-cross-domain-policies=\"all\">\n<x/></site-control>\n{GRANT}"
    ));
    assert_note(&doc, 3, &["site-control", "<x>"]);
}

#[test]
fn doctype_of_another_document_type() {
    let doc = format!("<!DOCTYPE html>\n{}", wrap(GRANT));
    assert_note(&doc, 1, &["DOCTYPE", "html"]);
}

#[test]
fn warnings_come_in_line_order() {
    let doc = wrap("<allow-access-from domain=\"*\" to-ports=\"*\" secure=\"true\"/>\n<x/>\n<allow-access-from domain=\"a_b\" to-ports=\"1, 2\"/>");
    let report = validate(doc.as_bytes());
    let lines: Vec<usize> = report.warnings().map(|w| w.line).collect();
    assert_eq!(lines, vec![3, 4, 4]);
    let notes: Vec<usize> = report.notes().map(|w| w.line).collect();
    assert_eq!(notes, vec![2]);
}

/// Flash Player ignores it in a socket policy (a note, and the document is served);
/// Lightspark voids the file, which the per-port hazards report as a warning.
#[test]
fn http_request_headers_element_is_a_note() {
    let doc = wrap(&format!(
        "{GRANT}\n<allow-http-request-headers-from domain=\"*\" headers=\"*\"/>"
    ));
    assert_note(&doc, 3, &["allow-http-request-headers-from", "Lightspark"]);
}
