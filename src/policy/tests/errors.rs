//! Every rejection: the first error, its line, and the names it must mention.

use super::{assert_error, assert_error_bytes, wrap};
use crate::policy::{validate, MAX_POLICY_BYTES};

const GRANT: &str = "<allow-access-from domain=\"*\" to-ports=\"*\"/>";

// --- XML well-formedness (XML 1.0 §2, §3) ---

#[test]
fn unclosed_element() {
    let doc = "<cross-domain-policy>\n<allow-access-from domain=\"*\" to-ports=\"*\">\n";
    assert_error(doc, 2, &["<allow-access-from>", "never closed"]);
    assert_error("<cross-domain-policy>\n", 1, &["<cross-domain-policy>"]);
}

#[test]
fn mismatched_end_tag() {
    assert_error(
        &wrap("<extra>\n</allow-access-from>"),
        3,
        &["</allow-access-from>", "<extra>"],
    );
    let doc = "<cross-domain-policy>\n<allow-access-from domain=\"*\" to-ports=\"*\">\n</cross-domain-policy>\n";
    assert_error(doc, 3, &["</cross-domain-policy>", "<allow-access-from>"]);
    assert_error(&format!("{}</x>", wrap(GRANT)), 4, &["</x>"]);
}

#[test]
fn bad_attribute_syntax() {
    assert_error(
        &wrap("<allow-access-from\n domain \"*\" to-ports=\"*\"/>"),
        3,
        &["domain"],
    );
    assert_error(
        &wrap("<allow-access-from domain=* to-ports=\"*\"/>"),
        2,
        &["domain", "quoted"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"*\"to-ports=\"*\"/>"),
        2,
        &["to-ports"],
    );
    assert_error(&wrap("<allow-access-from domain/>"), 2, &["domain"]);
    assert_error(
        &wrap("<allow-access-from =\"*\"/>"),
        2,
        &["allow-access-from"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"*\" / >"),
        2,
        &["allow-access-from"],
    );
}

#[test]
fn bad_quoting() {
    let doc = wrap("<allow-access-from domain=\"*' to-ports='*'/>\n<site-control a=\"b\"/>");
    assert_error(&doc, 3, &["\"<\"", "domain"]);
    assert_error("<cross-domain-policy a=\"1'>", 1, &["a", "never closed"]);
}

#[test]
fn duplicate_attribute() {
    let doc = wrap("<allow-access-from domain=\"*\"\n   to-ports=\"*\"\n   domain=\"a.com\"/>");
    assert_error(&doc, 4, &["duplicate", "domain"]);
}

#[test]
fn entities() {
    assert_error(
        &wrap("<allow-access-from domain=\"&nbsp;\" to-ports=\"*\"/>"),
        2,
        &["&nbsp;"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"a&b\" to-ports=\"*\"/>"),
        2,
        &["&"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"&#0;\" to-ports=\"*\"/>"),
        2,
        &["&#0;"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"&#xD800;\" to-ports=\"*\"/>"),
        2,
        &["&#xD800;"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"&#X2A;\" to-ports=\"*\"/>"),
        2,
        &["&#X2A;"],
    );
    assert_error(&wrap("text &foo; here"), 2, &["&foo;"]);
}

#[test]
fn less_than_in_attribute_value() {
    assert_error(
        &wrap("<allow-access-from domain=\"a<b\" to-ports=\"*\"/>"),
        2,
        &["\"<\"", "domain"],
    );
}

#[test]
fn content_outside_the_root() {
    assert_error(&format!("{}x", wrap(GRANT)), 4, &["text", "after"]);
    assert_error(&format!("junk\n{}", wrap(GRANT)), 1, &["text", "before"]);
    assert_error(
        &format!("{}<cross-domain-policy/>", wrap(GRANT)),
        4,
        &["second root"],
    );
    assert_error(&format!("{}<![CDATA[x]]>", wrap(GRANT)), 4, &["CDATA"]);
    assert_error(&format!("{}&amp;", wrap(GRANT)), 4, &["text"]);
}

#[test]
fn no_root() {
    for doc in ["", "   \n", "<?xml version=\"1.0\"?>\n<!-- nothing -->\n"] {
        assert_error(doc, 0, &["no root"]);
    }
}

#[test]
fn end_of_document_inside_markup() {
    assert_error(
        &wrap(GRANT).replace("</cross", "<!-- x\n</cross"),
        3,
        &["comment", "never closed"],
    );
    assert_error(
        "<cross-domain-policy>\n<allow-access-from domain=\"*\"",
        2,
        &["<allow-access-from>"],
    );
    assert_error(
        "<cross-domain-policy>\n<allow-access-from domain=\"*",
        2,
        &["domain"],
    );
    assert_error("<cross-domain-policy>\n<", 2, &["\"<\""]);
    assert_error(
        "<cross-domain-policy>\n</cross-domain-policy",
        2,
        &["</cross-domain-policy>"],
    );
    assert_error("<?xml version=\"1.0\"", 1, &["processing instruction"]);
    assert_error(
        "<!DOCTYPE cross-domain-policy [\n<!ENTITY a \"b\">\n",
        1,
        &["DOCTYPE"],
    );
    assert_error("<cross-domain-policy>\n<![CDATA[ x ]]\n", 2, &["CDATA"]);
}

#[test]
fn double_hyphen_in_comment() {
    assert_error(&wrap("<!-- a\n -- b -->"), 3, &["--"]);
    assert_error(&wrap("<!-- a --->"), 2, &["--"]);
}

#[test]
fn declaration_only_at_the_start() {
    assert_error(
        " <?xml version=\"1.0\"?><cross-domain-policy/>",
        1,
        &["<?xml"],
    );
    assert_error(
        &format!("<!-- c -->\n<?xml version=\"1.0\"?>\n{}", wrap(GRANT)),
        2,
        &["<?xml"],
    );
    assert_error(
        &format!("<?XML version=\"1.0\"?>\n{}", wrap(GRANT)),
        1,
        &["XML"],
    );
    assert_error(&format!("<?xml?>\n{}", wrap(GRANT)), 1, &["version"]);
    assert_error(
        &format!("<?xml version=\"2.0\"?>\n{}", wrap(GRANT)),
        1,
        &["version"],
    );
    assert_error(
        &format!(
            "<?xml encoding=\"UTF-8\" version=\"1.0\"?>\n{}",
            wrap(GRANT)
        ),
        1,
        &["encoding"],
    );
}

#[test]
fn misplaced_doctype_and_markup() {
    let doctype = "<!DOCTYPE cross-domain-policy>";
    assert_error(&format!("{}{doctype}", wrap(GRANT)), 4, &["DOCTYPE"]);
    assert_error(
        &format!("{doctype}\n{doctype}\n{}", wrap(GRANT)),
        2,
        &["DOCTYPE"],
    );
    assert_error(&wrap("<!ELEMENT x ANY>"), 2, &["<!"]);
    assert_error(&wrap("a ]]> b"), 2, &["]]>"]);
}

#[test]
fn characters_xml_forbids() {
    assert_error(
        &wrap("<allow-access-from domain=\"a\u{1}\" to-ports=\"*\"/>"),
        2,
        &["U+0001"],
    );
    assert_error(&wrap("\u{FFFE}"), 2, &["U+FFFE"]);
}

// --- Encoding and size (docs/protocol.md §2) ---

#[test]
fn invalid_utf8() {
    let mut doc = wrap("<allow-access-from domain=\"*\" to-ports=\"*\"/>").into_bytes();
    doc.splice(40..40, [0xC3, 0x28]);
    assert_error_bytes(&doc, 2, &["UTF-8"]);
    assert_error_bytes(&[b'\n', 0xFF], 2, &["UTF-8"]);
}

#[test]
fn foreign_byte_order_marks() {
    let utf16le: Vec<u8> = wrap(GRANT)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let utf16be: Vec<u8> = wrap(GRANT)
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert_error_bytes(&[&[0xFF, 0xFE][..], &utf16le].concat(), 1, &["UTF-16"]);
    assert_error_bytes(&[&[0xFE, 0xFF][..], &utf16be].concat(), 1, &["UTF-16"]);
    assert_error_bytes(&[0x00, 0x00, 0xFE, 0xFF], 1, &["UTF-32"]);
    // UTF-16 without a BOM is full of NUL bytes.
    assert_error_bytes(&utf16le, 1, &["NUL"]);
}

#[test]
fn embedded_nul() {
    assert_error(&wrap(&format!("{GRANT}\0")), 2, &["NUL"]);
    assert_error_bytes(&[wrap(GRANT).as_bytes(), b"\0"].concat(), 4, &["NUL"]);
}

#[test]
fn size_cap() {
    let mut doc = wrap(GRANT).into_bytes();
    doc.resize(MAX_POLICY_BYTES + 1, b' ');
    assert_error_bytes(&doc, 0, &["10001", "10000"]);
    doc.truncate(MAX_POLICY_BYTES);
    assert!(validate(&doc).is_valid());
}

// --- The socket-policy grammar (docs/protocol.md §4) ---

#[test]
fn root_name() {
    assert_error(
        &format!("<?xml version=\"1.0\"?>\n<Cross-Domain-Policy>\n{GRANT}\n</Cross-Domain-Policy>"),
        2,
        &["Cross-Domain-Policy"],
    );
    assert_error("\n\n<policy/>", 3, &["<policy>", "cross-domain-policy"]);
}

#[test]
fn root_attributes() {
    let doc = format!("<cross-domain-policy\n  version=\"1\">\n{GRANT}\n</cross-domain-policy>");
    assert_error(&doc, 2, &["cross-domain-policy", "version"]);
}

#[test]
fn site_control_rules() {
    let sc = "<site-control permitted-cross-domain-policies=\"all\"/>";
    assert_error(
        &wrap(&format!("{sc}\n{GRANT}\n{sc}")),
        4,
        &["site-control", "repeated", "line 2"],
    );
    assert_error(
        &wrap("<site-control/>"),
        2,
        &["site-control", "permitted-cross-domain-policies"],
    );
    let bad = wrap("<site-control\n permitted-cross-domain-policies=\"master\"/>");
    assert_error(&bad, 3, &["site-control", "\"master\""]);
    assert_error(
        &wrap("<site-control permitted-cross-domain-policies=\"All\"/>"),
        2,
        &["\"All\""],
    );
    let other = wrap("<site-control permitted-cross-domain-policies=\"all\"\n  site=\"x\"/>");
    assert_error(&other, 3, &["site-control", "site"]);
    let spaced = wrap("<site-control permitted-cross-domain-policies=\"all \"/>");
    assert_error(&spaced, 2, &["site-control", "\"all \"", "whitespace"]);
}

#[test]
fn allow_access_from_attributes() {
    assert_error(
        &wrap("<allow-access-from to-ports=\"*\"/>"),
        2,
        &["allow-access-from", "domain"],
    );
    assert_error(
        &wrap("<allow-access-from domain=\"*\"/>"),
        2,
        &["allow-access-from", "to-ports"],
    );
    let other = wrap("<allow-access-from domain=\"*\"\n to-ports=\"*\"\n ports=\"80\"/>");
    assert_error(&other, 4, &["allow-access-from", "ports"]);
    let headers = wrap("<allow-access-from domain=\"*\" to-ports=\"*\" headers=\"*\"/>");
    assert_error(&headers, 2, &["headers"]);
    for secure in ["yes", "True", "1", ""] {
        let doc = wrap(&format!(
            "<allow-access-from domain=\"*\" to-ports=\"*\"\n secure=\"{secure}\"/>"
        ));
        assert_error(&doc, 3, &["secure", &format!("\"{secure}\"")]);
    }
}

#[test]
fn bad_to_ports() {
    for (value, item) in [
        ("0", "0"),
        ("65536", "65536"),
        ("80-", "80-"),
        ("-5", "-5"),
        ("9-3", "9-3"),
        ("80,,81", "80,,81"),
        ("80,x", "x"),
        ("http", "http"),
        ("", ""),
    ] {
        let doc = wrap(&format!(
            "<allow-access-from domain=\"*\"\n  to-ports=\"{value}\"/>"
        ));
        assert_error(
            &doc,
            3,
            &["allow-access-from", "to-ports", &format!("\"{item}\"")],
        );
    }
}

#[test]
fn surrounding_whitespace_in_values() {
    for attrs in [
        "domain=\" example.com\" to-ports=\"*\"",
        "domain=\"*\" to-ports=\"80 \"",
        "domain=\"*\" to-ports=\"*\" secure=\" false\"",
        "domain=\"&#32;*\" to-ports=\"*\"",
        "domain=\"*\t\" to-ports=\"*\"",
    ] {
        let doc = wrap(&format!("<allow-access-from {attrs}/>"));
        assert_error(&doc, 2, &["allow-access-from", "whitespace"]);
    }
}

#[test]
fn every_error_is_reported_in_line_order() {
    let doc = wrap("<allow-access-from domain=\"*\"/>\n<site-control/>\n<allow-access-from to-ports=\"0\" domain=\"*\"/>");
    let report = validate(doc.as_bytes());
    let lines: Vec<usize> = report.errors().map(|d| d.line).collect();
    assert_eq!(lines, vec![2, 3, 4]);
}
