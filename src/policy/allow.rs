//! `--allow DOMAIN[:PORTS]` specs, the domain-pattern check shared with the validator,
//! and the rendering of a generated policy document.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{quote, AllowSpec, ToPorts};

/// The head of every generated policy, up to and including the root start tag.
const HEAD: &str = "<?xml version=\"1.0\"?>\n\
<!DOCTYPE cross-domain-policy SYSTEM \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\">\n\
<cross-domain-policy>\n";

/// The tail of every generated policy (the NUL is added by [`super::Policy`]).
const TAIL: &str = "</cross-domain-policy>\n";

impl AllowSpec {
    /// Parses one `--allow` value: `DOMAIN[:PORTS]`, PORTS defaulting to `*`.
    ///
    /// DOMAIN is `*`, a host name (letters, digits and hyphens in dot-separated labels)
    /// optionally starting with the wildcard label `*.`, an IPv4 address, or an IPv6
    /// address: bracketed when ports follow (`[2001:db8::1]:80`), or bare for all
    /// ports (`2001:db8::1`; a bare value that parses as an IPv6 address is always
    /// taken whole). PORTS uses the `to-ports` syntax of [`ToPorts::parse`].
    ///
    /// # Errors
    ///
    /// Returns the reason only (the caller names the flag and the value), e.g.
    /// `domain "a.*.com" has a "*" that is not the whole leftmost label`.
    pub fn parse(value: &str) -> Result<AllowSpec, String> {
        if value.is_empty() {
            return Err("is empty (expected DOMAIN[:PORTS])".to_string());
        }
        let (domain, ports) = if let Some(rest) = value.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| "has \"[\" without a matching \"]\"".to_string())?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(format!("{} is not an IPv6 address", quote(addr)));
            }
            let ports = if after.is_empty() {
                None
            } else {
                let p = after
                    .strip_prefix(':')
                    .ok_or_else(|| "expected \":PORTS\" after \"]\"".to_string())?;
                Some(p)
            };
            (addr, ports)
        } else if value.parse::<Ipv6Addr>().is_ok() {
            (value, None)
        } else {
            match value.split_once(':') {
                Some((d, p)) => (d, Some(p)),
                None => (value, None),
            }
        };
        check_domain(domain).map_err(|reason| format!("domain {} {reason}", quote(domain)))?;
        let to_ports = match ports {
            None => ToPorts::Any,
            Some(p) => ToPorts::parse(p).map_err(|reason| format!("ports {reason}"))?,
        };
        Ok(AllowSpec {
            domain: domain.to_string(),
            to_ports,
        })
    }
}

/// Renders the spec the way `--allow` takes it: `DOMAIN:PORTS`, an IPv6 address in
/// brackets.
impl fmt::Display for AllowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.contains(':') {
            write!(f, "[{}]:{}", self.domain, self.to_ports)
        } else {
            write!(f, "{}:{}", self.domain, self.to_ports)
        }
    }
}

/// Checks that a `domain` pattern can match some SWF origin: `*`, an IPv4 or IPv6
/// address, or a host name whose leftmost label alone may be the wildcard `*`.
///
/// # Errors
///
/// Returns why it can never match, phrased to follow the quoted domain
/// (`has an empty label`).
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("is empty".to_string());
    }
    if domain == "*" || domain.parse::<Ipv4Addr>().is_ok() || domain.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    if host.len() > 253 {
        return Err("is longer than the 253 characters of a host name".to_string());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty label".to_string());
        }
        if label.contains('*') {
            return Err("has a \"*\" that is not the whole leftmost label".to_string());
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!("has {c:?}, which is not allowed in host names"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with \"-\"".to_string());
        }
        if label.len() > 63 {
            return Err("has a label longer than 63 characters".to_string());
        }
    }
    // A host name's last label is never all digits; such a value is a broken address.
    if host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("is neither an IP address nor a host name".to_string());
    }
    Ok(())
}

/// Renders the policy document (without the NUL) granting each spec, one
/// `allow-access-from` per line in the order given, with LF newlines and values
/// XML-escaped.
pub fn render_document(specs: &[AllowSpec]) -> String {
    let mut doc = String::from(HEAD);
    for spec in specs {
        doc.push_str("  <allow-access-from domain=\"");
        push_escaped(&mut doc, &spec.domain);
        doc.push_str("\" to-ports=\"");
        push_escaped(&mut doc, &spec.to_ports.to_string());
        doc.push_str("\"/>\n");
    }
    doc.push_str(TAIL);
    doc
}

/// Appends `value` escaped for a double-quoted attribute. Tab, LF and CR become
/// character references: written raw, a reader would normalise them to spaces.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_domain, render_document, AllowSpec, ToPorts};
    use crate::policy::validate;

    fn spec(domain: &str, to_ports: ToPorts) -> AllowSpec {
        AllowSpec {
            domain: domain.to_string(),
            to_ports,
        }
    }

    #[test]
    fn parses_good_specs() {
        let r = |v: &[(u16, u16)]| ToPorts::Ranges(v.to_vec());
        let cases = [
            (
                "*.example.com:80,8000-8100",
                spec("*.example.com", r(&[(80, 80), (8000, 8100)])),
            ),
            ("*", spec("*", ToPorts::Any)),
            ("*:843", spec("*", r(&[(843, 843)]))),
            ("*:*", spec("*", ToPorts::Any)),
            ("example.com", spec("example.com", ToPorts::Any)),
            ("Example.COM:1-65535", spec("Example.COM", r(&[(1, 65535)]))),
            ("192.0.2.1:80", spec("192.0.2.1", r(&[(80, 80)]))),
            ("[2001:db8::1]:80", spec("2001:db8::1", r(&[(80, 80)]))),
            ("[2001:db8::1]", spec("2001:db8::1", ToPorts::Any)),
            ("2001:db8::1", spec("2001:db8::1", ToPorts::Any)),
            ("::1", spec("::1", ToPorts::Any)),
            (
                "a-b.c0.example:9000-9100",
                spec("a-b.c0.example", r(&[(9000, 9100)])),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(AllowSpec::parse(value), Ok(want), "{value}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            ":80",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:80-",
            "example.com:9-3",
            "example.com:80,,81",
            "a.*.com",
            "*example.com",
            "*.",
            "**",
            "example..com",
            "-a.com",
            "a-.com",
            "exa_mple.com",
            "example.com.",
            "ex ample.com",
            " example.com",
            "http://example.com",
            "[2001:db8::1",
            "[example.com]:80",
            "[2001:db8::1]80",
            "1.2.3",
            "999.1.1.1",
            "a.com:80:81",
            "bücher.de",
        ] {
            assert!(AllowSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reasons_name_the_part_at_fault() {
        assert_eq!(
            AllowSpec::parse("a.*.com"),
            Err("domain \"a.*.com\" has a \"*\" that is not the whole leftmost label".into())
        );
        assert_eq!(
            AllowSpec::parse("example.com:80-"),
            Err("ports \"80-\" is not a port or range".into())
        );
    }

    #[test]
    fn domain_check() {
        for good in [
            "*",
            "example.com",
            "*.example.com",
            "localhost",
            "10.0.0.1",
            "::1",
            "x1",
        ] {
            assert_eq!(check_domain(good), Ok(()), "{good}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        for bad in [
            "",
            "*.",
            "a.*.com",
            "a..b",
            "a b",
            "a_b.com",
            &long_label,
            &long_name,
        ] {
            assert!(check_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renders_the_documented_format() {
        let doc = render_document(&[spec("*", ToPorts::Any)]);
        assert_eq!(
            doc,
            "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \
             \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\">\n\
             <cross-domain-policy>\n  <allow-access-from domain=\"*\" to-ports=\"*\"/>\n\
             </cross-domain-policy>\n"
        );
    }

    #[test]
    fn generated_policies_validate_clean() {
        let specs: Vec<AllowSpec> = [
            "*.example.com: 80 , 8000-8100",
            "192.0.2.1:843",
            "[::1]:1-2",
        ]
        .iter()
        .filter_map(|v| AllowSpec::parse(v).ok())
        .collect();
        assert_eq!(specs.len(), 3);
        let doc = render_document(&specs);
        assert!(doc.contains("to-ports=\"80,8000-8100\""));
        let report = validate(doc.as_bytes());
        assert_eq!(report.diagnostics, vec![]);
        let parsed = report
            .document
            .map(|d| d.allow_access_from)
            .unwrap_or_default();
        let back: Vec<AllowSpec> = parsed
            .into_iter()
            .map(|a| spec(&a.domain, a.to_ports))
            .collect();
        assert_eq!(back, specs);
    }

    #[test]
    fn values_are_escaped() {
        let doc = render_document(&[spec("a&<>\"'", ToPorts::Any)]);
        assert!(doc.contains("domain=\"a&amp;&lt;&gt;&quot;&apos;\""));
        let report = validate(doc.as_bytes());
        let domain = report
            .document
            .and_then(|d| d.allow_access_from.first().cloned());
        assert_eq!(domain.map(|a| a.domain), Some("a&<>\"'".to_string()));
    }

    /// Found by fuzzing (tests/fuzz/corpus/policy_validate/regression-render-*): a
    /// domain holding `&#9;` came back from rendering with a space instead of the tab.
    #[test]
    fn whitespace_in_values_survives_rendering() {
        let domain = "a\tb\nc\rd\r\ne";
        let doc = render_document(&[spec(domain, ToPorts::Any)]);
        assert!(doc.contains("domain=\"a&#9;b&#10;c&#13;d&#13;&#10;e\""));
        let report = validate(doc.as_bytes());
        let back = report
            .document
            .and_then(|d| d.allow_access_from.first().cloned());
        assert_eq!(back.map(|a| a.domain), Some(domain.to_string()));
    }

    #[test]
    fn display_round_trips() {
        for v in ["*:*", "example.com:80,8000-8100", "[2001:db8::1]:80"] {
            assert_eq!(
                AllowSpec::parse(v).map(|s| s.to_string()),
                Ok(v.to_string())
            );
        }
    }
}
