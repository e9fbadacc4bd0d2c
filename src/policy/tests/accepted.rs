//! Documents that must be accepted silently, and what they mean.

use super::wrap;
use crate::policy::{validate, AllowAccessFrom, Document, MetaPolicy, SiteControl, ToPorts};

/// Validates `doc` with LF, CRLF and CR line ends, expecting no diagnostic at all.
fn clean(doc: &str) -> Document {
    let mut first = None;
    for variant in [
        doc.to_string(),
        doc.replace('\n', "\r\n"),
        doc.replace('\n', "\r"),
    ] {
        let report = validate(variant.as_bytes());
        assert_eq!(report.diagnostics, vec![], "{variant:?}");
        let document = report.document.unwrap_or_default();
        if let Some(first) = &first {
            assert_eq!(&document, first, "line ends changed the meaning");
        }
        first.get_or_insert(document);
    }
    first.unwrap_or_default()
}

fn grant(
    domain: &str,
    to_ports: ToPorts,
    text: &str,
    secure: bool,
    line: usize,
) -> AllowAccessFrom {
    AllowAccessFrom {
        domain: domain.to_string(),
        to_ports,
        to_ports_text: text.to_string(),
        secure,
        line,
    }
}

#[test]
fn adobe_socket_master_policy_example() {
    // The example of Adobe's "Setting up a socket policy file server" article.
    let doc = r#"<?xml version="1.0"?>
<!DOCTYPE cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd">

<!-- Policy file for xmlsocket://socks.example.com -->
<cross-domain-policy> 

   <!-- This is a master socket policy file -->
   <!-- No other socket policies on the host will be permitted -->
   <site-control permitted-cross-domain-policies="master-only"/>

   <!-- Instead of setting to-ports="*", administrator's can use ranges and commas -->
   <!-- This will allow access to ports 123, 456, 457 and 458 -->
   <allow-access-from domain="swf.example.com" to-ports="123,456-458" />

</cross-domain-policy>"#;
    let document = clean(doc);
    assert_eq!(
        document.site_control,
        Some(SiteControl {
            permitted: MetaPolicy::MasterOnly,
            line: 9
        })
    );
    let ports = ToPorts::Ranges(vec![(123, 123), (456, 458)]);
    assert_eq!(
        document.allow_access_from,
        vec![grant("swf.example.com", ports, "123,456-458", false, 13)]
    );
}

#[test]
fn adobe_sample_server_default_policy() {
    // What Adobe's flashpolicyd.py serves as its example.
    let doc = "<?xml version=\"1.0\"?>\n\
<!DOCTYPE cross-domain-policy SYSTEM \"http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd\">\n\
<cross-domain-policy>\n   <allow-access-from domain=\"*\" to-ports=\"*\" />\n</cross-domain-policy>\n";
    let document = clean(doc);
    assert_eq!(
        document.allow_access_from,
        vec![grant("*", ToPorts::Any, "*", false, 4)]
    );
    assert_eq!(document.site_control, None);
}

#[test]
fn protocol_grammar_example() {
    let doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \"...\">\n<cross-domain-policy>\n  <site-control permitted-cross-domain-policies=\"master-only\"/>\n  <allow-access-from domain=\"*.example.com\" to-ports=\"843,8080,9000-9100\"/>\n</cross-domain-policy>\n";
    let document = clean(doc);
    let ports = ToPorts::Ranges(vec![(843, 843), (8080, 8080), (9000, 9100)]);
    let text = "843,8080,9000-9100";
    assert_eq!(
        document.allow_access_from,
        vec![grant("*.example.com", ports, text, false, 5)]
    );
}

#[test]
fn several_grants_add_up_in_order() {
    let doc = wrap("<allow-access-from domain=\"a.com\" to-ports=\"80\"/>\n<allow-access-from domain=\"b.com\" to-ports=\"81\" secure=\"false\"/>");
    let domains: Vec<(String, usize)> = clean(&doc)
        .allow_access_from
        .into_iter()
        .map(|g| (g.domain, g.line))
        .collect();
    assert_eq!(domains, vec![("a.com".into(), 2), ("b.com".into(), 3)]);
}

#[test]
fn comments_pis_and_whitespace_everywhere() {
    let doc = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<!-- a -->\n<?app data?>\n<cross-domain-policy><!----><!-- - -->\n<?app?>\t<allow-access-from domain=\"*\" to-ports=\"*\"/><!-- b -->\n</cross-domain-policy >\n<!-- after -->\n<?after x?>\n\n";
    assert_eq!(clean(doc).allow_access_from[0].line, 5);
}

#[test]
fn doctype_with_internal_subset() {
    let doc = "<!DOCTYPE cross-domain-policy [\n  <!ELEMENT cross-domain-policy (allow-access-from*)>\n  <!ATTLIST allow-access-from domain CDATA #REQUIRED>\n  <!-- a comment with ] and > inside -->\n  <!ENTITY x \"]>\">\n]>\n<cross-domain-policy>\n<allow-access-from domain=\"*\" to-ports=\"*\"/>\n</cross-domain-policy>";
    assert_eq!(clean(doc).allow_access_from[0].line, 8);
    let public = "<!DOCTYPE cross-domain-policy PUBLIC \"-//x//y\" 'http://e/x.dtd' >\n<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>";
    assert_eq!(clean(public).allow_access_from[0].line, 2);
}

#[test]
fn entities_and_character_references() {
    let doc =
        wrap("<allow-access-from domain=\"&#42;.ex&#x61;mple.com\" to-ports=\"&#56;0,&#x38;1\"/>");
    let g = &clean(&doc).allow_access_from[0];
    assert_eq!(
        (g.domain.as_str(), g.to_ports_text.as_str()),
        ("*.example.com", "80,81")
    );
    let doc = wrap("<allow-access-from domain=\"a&amp;&lt;&gt;&quot;&apos;\" to-ports=\"*\"/>");
    let report = validate(doc.as_bytes());
    let domain = report
        .document
        .map(|d| d.allow_access_from[0].domain.clone());
    assert_eq!(domain.as_deref(), Some("a&<>\"'"));
    clean(&wrap(
        "<!-- &unknown; is fine in a comment -->\n<allow-access-from domain=\"*\" to-ports=\"*\"/>",
    ));
}

#[test]
fn quoting_and_tag_forms() {
    let forms = [
        "<allow-access-from domain='*' to-ports='*'/>",
        "<allow-access-from domain = \"*\"\tto-ports\n=\n'*' />",
        "<allow-access-from domain=\"*\" to-ports=\"*\"></allow-access-from>",
        "<allow-access-from domain=\"*\" to-ports=\"*\">\n</allow-access-from >",
        "<allow-access-from domain=\"*\" to-ports=\"*\"><!-- c --></allow-access-from>",
        "<allow-access-from domain=\"*\" to-ports=\"*\" secure=\"false\"/>",
        "<allow-access-from to-ports=\"*\" domain=\"*\"/>",
    ];
    for form in forms {
        let document = clean(&wrap(form));
        let g = &document.allow_access_from[0];
        assert_eq!(
            (g.domain.as_str(), &g.to_ports, g.secure, g.line),
            ("*", &ToPorts::Any, false, 2),
            "{form}"
        );
    }
    let quotes = wrap("<allow-access-from domain='say\"hi\"' to-ports=\"*\"/>");
    let domain = validate(quotes.as_bytes())
        .document
        .map(|d| d.allow_access_from[0].domain.clone());
    assert_eq!(domain.as_deref(), Some("say\"hi\""));
}

#[test]
fn whitespace_only_cdata_and_text_are_silent() {
    clean(&wrap(
        "<![CDATA[ \n ]]>\n<allow-access-from domain=\"*\" to-ports=\"*\"/>\n&#32;",
    ));
}

#[test]
fn non_ascii_in_comments_and_attribute_values() {
    let doc = wrap("<!-- héllo ✓ 𝄞 -->\n<allow-access-from domain=\"*\" to-ports=\"*\"/>");
    assert_eq!(clean(&doc).allow_access_from[0].line, 3);
}

#[test]
fn all_meta_policies() {
    for (value, meta) in [
        ("master-only", MetaPolicy::MasterOnly),
        ("all", MetaPolicy::All),
    ] {
        let doc = wrap(&format!("<site-control permitted-cross-domain-policies=\"{value}\"/>\n<allow-access-from domain=\"*\" to-ports=\"*\"/>"));
        assert_eq!(
            clean(&doc).site_control.map(|s| (s.permitted, s.line)),
            Some((meta, 2))
        );
    }
}
