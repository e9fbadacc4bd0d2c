//! Arbitrary bytes never panic, and a report is always consistent.

use crate::policy::{validate, AllowSpec, Severity, ToPorts, Validation};

const RICH: &str = "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<!DOCTYPE cross-domain-policy [ <!ENTITY e 'x'> <!-- ] --> ]>\r\n\
<!-- héllo ✓ 𝄞 -- no -->\r\n<cross-domain-policy>\r\n\
<site-control permitted-cross-domain-policies='all'/>\r\n\
<allow-access-from domain=\"&#x2A;.é.com\" to-ports=\"80, 9-3\" secure=\"true\">\r\n\
<![CDATA[ ✓ ]]>text &amp; &#233;</allow-access-from>\r\n<?pi ✓?>\r\n\
</cross-domain-policy>\r\n";

fn consistent(bytes: &[u8]) -> Validation {
    let report = validate(bytes);
    let has_error = report
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error);
    assert_eq!(
        report.document.is_some(),
        !has_error,
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
    let lines = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    for d in &report.diagnostics {
        assert!(d.line <= lines, "{d:?} past the last line");
        assert!(!d.message.is_empty() && !d.message.ends_with('.'));
    }
    assert!(report
        .diagnostics
        .windows(2)
        .all(|w| w[0].line <= w[1].line));
    report
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_truncation_of_a_rich_document() {
    let bytes = RICH.as_bytes();
    for end in 0..=bytes.len() {
        consistent(&bytes[..end]);
        consistent(&bytes[end..]);
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        consistent(&bytes);
    }
}

#[test]
fn random_markup_soup() {
    const PIECES: &[&str] = &[
        "<",
        ">",
        "/>",
        "</",
        "<?",
        "?>",
        "<!--",
        "-->",
        "--",
        "<![CDATA[",
        "]]>",
        "<!DOCTYPE",
        "[",
        "]",
        "\"",
        "'",
        "=",
        "&",
        ";",
        "&#",
        "&#x",
        "amp",
        " ",
        "\n",
        "\r",
        "\r\n",
        "é",
        "✓",
        "𝄞",
        "\u{0}",
        "\u{1}",
        "cross-domain-policy",
        "allow-access-from",
        "site-control",
        "domain",
        "to-ports",
        "secure",
        "permitted-cross-domain-policies",
        "*",
        "80",
        "-",
        ",",
        "true",
        "all",
        "xml",
        "\u{FEFF}",
    ];
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let n = rng.below(24);
        let doc: String = (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        consistent(doc.as_bytes());
        let mut bytes = doc.into_bytes();
        if !bytes.is_empty() {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        consistent(&bytes);
    }
}

#[test]
fn mutations_of_a_valid_document() {
    let valid = "<cross-domain-policy>\n<allow-access-from domain=\"*\" to-ports=\"80\"/>\n</cross-domain-policy>\n";
    let mut rng = Rng(7);
    for _ in 0..3000 {
        let mut bytes = valid.as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            let i = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[i] = rng.next() as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => {
                    const NOISE: &[u8] = b"<>\"'&/=-!?[] \n\r";
                    bytes.insert(i, NOISE[rng.below(NOISE.len())]);
                }
            }
        }
        consistent(&bytes);
    }
}

#[test]
fn parsers_of_strings_never_panic() {
    let mut rng = Rng(99);
    let alphabet: Vec<char> = "0123456789-,* :[]abc.é".chars().collect();
    for _ in 0..3000 {
        let n = rng.below(16);
        let s: String = (0..n)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        if let Ok(ports) = ToPorts::parse(&s) {
            assert_eq!(ToPorts::parse(&ports.to_string()), Ok(ports));
        }
        if let Ok(spec) = AllowSpec::parse(&s) {
            assert_eq!(AllowSpec::parse(&spec.to_string()), Ok(spec));
        }
    }
}
