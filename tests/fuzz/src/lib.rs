//! The promises the fuzz targets check, one function per target. Each takes one input,
//! runs it through the parser's public entry points and panics when a promise breaks.
//!
//! `tests/daemon/fuzz_corpus.rs` includes this file as a module, so that `make test` replays
//! the saved corpus through the same checks on stable, without cargo-fuzz.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use flashpolicyd::check::evaluate::{domain_matches, ports_match, SwfDomain};
use flashpolicyd::policy::{
    self, check_domain, render_document, AllowSpec, Policy, ToPorts, Validation,
};
use flashpolicyd::request::{self, Matcher, Outcome, Progress, TimedRead, REQUEST_TEXT};

// ---------------------------------------------------------------------------------------
// The request matcher

/// `request::Matcher` and `request::read_request` on `data` as one connection's bytes.
///
/// Fed whole, cut once anywhere, byte by byte, or in pseudo-random reads, the matcher
/// decides what [`expected_progress`] says for the bytes it had seen when it decided,
/// and the same thing as for the whole input: `Complete` only for input that starts with
/// `<policy-file-request/>`, `Mismatch` at the first byte that differs. `read_request`
/// over a stream that hands the bytes out in pieces (with interruptions and timeouts
/// between them) agrees, and names the right bad byte.
pub fn request_matcher(data: &[u8]) {
    check_split(data, &[data.len()]);
    for cut in 0..=data.len().min(REQUEST_TEXT.len() + 3) {
        check_split(data, &[cut, data.len() - cut]);
    }
    let bytes = vec![1; data.len().min(REQUEST_TEXT.len() + 3)];
    check_split(data, &bytes);
    let mut rng = Rng::seeded(data);
    let chunks: Vec<usize> = (0..8).map(|_| rng.below(30)).collect();
    check_split(data, &chunks);
    check_read_request(data, &mut rng);
}

/// What the matcher must answer once it has seen `seen`, straight from docs/protocol.md §1:
/// the first byte that differs from the request text refutes it, its 22 characters
/// complete it, and the bytes after them set `nul` and `extra`.
pub fn expected_progress(seen: &[u8]) -> Progress {
    if let Some(at) = seen.iter().zip(REQUEST_TEXT).position(|(a, b)| a != b) {
        return Progress::Mismatch { at };
    }
    match seen.get(REQUEST_TEXT.len()..) {
        None => Progress::NeedMore,
        Some(rest) => {
            let nul = rest.first() == Some(&0);
            Progress::Complete {
                nul,
                extra: rest.len() > usize::from(nul),
            }
        }
    }
}

/// The decision without the flags that depend on how the bytes were cut.
fn verdict(p: Progress) -> Progress {
    match p {
        Progress::Complete { .. } => Progress::Complete {
            nul: false,
            extra: false,
        },
        other => other,
    }
}

/// Feeds `data` in reads of the given lengths (clamped; what is left over is one more
/// read), checking the first decision against [`expected_progress`].
fn check_split(data: &[u8], lengths: &[usize]) {
    let mut matcher = Matcher::new();
    let mut fed = 0;
    let mut decided = None;
    let rest = data.len();
    let lengths = lengths.iter().copied().chain(std::iter::once(rest));
    for len in lengths {
        let end = (fed + len).min(data.len());
        let progress = matcher.feed(&data[fed..end]);
        fed = end;
        assert!(matcher.matched() <= REQUEST_TEXT.len());
        if decided.is_none() && progress != Progress::NeedMore {
            decided = Some((progress, fed, matcher.matched()));
        }
        // After the decision, further reads are "not meaningful" but must not panic.
    }
    let whole = expected_progress(data);
    match decided {
        None => {
            assert_eq!(whole, Progress::NeedMore, "{data:?} cut {fed}");
            assert_eq!(matcher.matched(), data.len());
        }
        Some((progress, seen, matched)) => {
            assert_eq!(
                progress,
                expected_progress(&data[..seen]),
                "{data:?} seen {seen}"
            );
            assert_eq!(verdict(progress), verdict(whole), "{data:?} seen {seen}");
            if let Progress::Complete { .. } = progress {
                assert!(data.starts_with(REQUEST_TEXT), "{data:?} seen {seen}");
                assert_eq!(matched, REQUEST_TEXT.len(), "{data:?} seen {seen}");
            }
        }
    }
}

/// A stream that hands out `data` in pieces, with interruptions and timeouts between
/// them, then EOF.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    pieces: Vec<Piece>,
    limits: usize,
}

enum Piece {
    Bytes(usize),
    Interrupted,
    TimedOut,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.pieces.pop() {
            Some(Piece::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(Piece::TimedOut) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Piece::Bytes(len)) => {
                let n = len.max(1).min(buf.len()).min(self.data.len() - self.pos);
                buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
                self.pos += n;
                Ok(n)
            }
            None => {
                let n = buf.len().min(self.data.len() - self.pos);
                buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
                self.pos += n;
                Ok(n)
            }
        }
    }
}

impl TimedRead for Trickle<'_> {
    fn set_read_limit(&mut self, limit: Duration) -> io::Result<()> {
        assert!(!limit.is_zero() && limit <= Duration::from_secs(60));
        self.limits += 1;
        Ok(())
    }
}

fn check_read_request(data: &[u8], rng: &mut Rng) {
    let pieces = (0..12)
        .map(|_| match rng.below(8) {
            0 => Piece::Interrupted,
            1 => Piece::TimedOut,
            _ => Piece::Bytes(rng.below(70)),
        })
        .collect();
    let mut stream = Trickle {
        data,
        pos: 0,
        pieces,
        limits: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = request::read_request(&mut stream, deadline);
    let seen = &data[..stream.pos];
    let expected = expected_progress(seen);
    assert!(stream.limits > 0, "every read is bounded in time");
    match outcome {
        Outcome::Request { nul, extra } => {
            assert_eq!(expected, Progress::Complete { nul, extra }, "{data:?}");
        }
        Outcome::Junk { at, byte } => {
            assert_eq!(expected, Progress::Mismatch { at }, "{data:?}");
            assert_eq!(Some(&byte), data.get(at), "{data:?}");
        }
        Outcome::Closed { received } => {
            assert_eq!(stream.pos, data.len(), "closed before the end: {data:?}");
            assert_eq!(expected, Progress::NeedMore, "{data:?}");
            assert_eq!(received, data.len(), "{data:?}");
        }
        other => panic!("{other:?} for {data:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The policy validator

/// `policy::validate` on `data` as a policy document (without its NUL).
///
/// Never panics; `document` is `Some` exactly when there is no error; diagnostics are
/// sorted by line, each within the document (line 0 = the whole document), with a
/// message that is not empty and has no final period; a valid document's grants are
/// consistent (parsed `to-ports` = its text, lines in range), and rendering them again
/// with `policy::render_document` gives a document that validates without errors and
/// parses back to the same grants.
pub fn policy_validate(data: &[u8]) {
    let report = policy::validate(data);
    check_report(data, &report);
    // The same bytes as Lightspark reads them, and the hazards built on that reading:
    // no panic, lines inside the document, the void reason the first invalid element.
    let lines = line_count(data);
    for master in [true, false] {
        let doc = policy::lightspark::read(data, master);
        assert_eq!(doc.void.as_ref(), doc.invalid.first(), "{doc:?}");
        for v in &doc.invalid {
            assert!(v.line <= lines, "{v:?} past line {lines}");
        }
        for port in [843, 8843] {
            let hazards = flashpolicyd::policy::hazards::hazards(data, data.len(), port, master);
            for h in hazards {
                assert!(h.line <= lines && h.message.ends_with(']'), "{h:?}");
            }
        }
    }
}

/// Lines in `data` as the validator counts them: ends at LF, CRLF or a lone CR.
fn line_count(data: &[u8]) -> usize {
    let ends = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    ends + 1
}

fn check_report(data: &[u8], report: &Validation) {
    let text = String::from_utf8_lossy(data);
    let has_error = report.errors().next().is_some();
    assert_eq!(report.is_valid(), !has_error, "{report:?} for {text:?}");
    let lines = line_count(data);
    for d in &report.diagnostics {
        assert!(d.line <= lines, "{d:?} past line {lines} of {text:?}");
        assert!(!d.message.is_empty() && !d.message.ends_with('.'), "{d:?}");
    }
    let sorted = report
        .diagnostics
        .windows(2)
        .all(|w| w[0].line <= w[1].line);
    assert!(sorted, "diagnostics out of order: {report:?}");
    let Some(document) = &report.document else {
        return;
    };
    if let Some(sc) = &document.site_control {
        assert!(sc.line >= 1 && sc.line <= lines);
    }
    for grant in &document.allow_access_from {
        assert!(grant.line >= 1 && grant.line <= lines, "{grant:?}");
        assert_eq!(
            ToPorts::parse(&grant.to_ports_text),
            Ok(grant.to_ports.clone())
        );
        check_ports(&grant.to_ports);
    }
    let specs: Vec<AllowSpec> = document
        .allow_access_from
        .iter()
        .map(|g| AllowSpec {
            domain: g.domain.clone(),
            to_ports: g.to_ports.clone(),
        })
        .collect();
    check_rendered(&specs);
}

/// `render_document(specs)` validates without errors and means `specs`; without a
/// domain that can never match, it has no diagnostic at all (but the one for no grant).
/// Only its size can make it invalid: escapes grow, and specs can be many.
fn check_rendered(specs: &[AllowSpec]) {
    let rendered = render_document(specs);
    let report = policy::validate(rendered.as_bytes());
    if rendered.len() > policy::MAX_POLICY_BYTES {
        assert!(!report.is_valid());
        let only_size = report
            .errors()
            .all(|d| d.line == 0 && d.message.contains("bytes"));
        assert!(only_size, "{:?}", report.diagnostics);
        return;
    }
    let errors: Vec<_> = report.errors().collect();
    assert!(errors.is_empty(), "{errors:?} in {rendered:?}");
    let back: Vec<AllowSpec> = report
        .document
        .iter()
        .flat_map(|d| &d.allow_access_from)
        .map(|g| AllowSpec {
            domain: g.domain.clone(),
            to_ports: g.to_ports.clone(),
        })
        .collect();
    assert_eq!(back, specs, "{rendered:?}");
    let clean = !specs.is_empty() && specs.iter().all(|s| check_domain(&s.domain).is_ok());
    if clean {
        assert_eq!(report.diagnostics, vec![], "{rendered:?}");
    }
}

/// A parsed `to-ports`: ranges never empty, each 1 ≤ low ≤ high; the canonical
/// rendering has no space and parses back to the same value; matching agrees with the
/// checker's.
fn check_ports(ports: &ToPorts) {
    let canonical = ports.to_string();
    assert!(!canonical.contains(' '), "{canonical:?}");
    assert_eq!(
        ToPorts::parse(&canonical).as_ref(),
        Ok(ports),
        "{canonical:?}"
    );
    if let ToPorts::Ranges(ranges) = ports {
        assert!(!ranges.is_empty());
        assert!(!ports.contains(0));
        for &(lo, hi) in ranges {
            assert!(1 <= lo && lo <= hi, "{ranges:?}");
            for port in [lo, hi, lo - 1, hi.saturating_add(1)] {
                assert_eq!(ports.contains(port), ports_match(ports, port));
            }
            assert!(ports.contains(lo) && ports.contains(hi));
        }
    }
}

/// Replays a saved policy through `Policy::from_file` (the corpus replay only):
/// accepted exactly when it fits the size cap and validates without error once one
/// final NUL is removed, and then served as that document plus exactly one NUL.
pub fn policy_file(path: &std::path::Path) {
    let data = std::fs::read(path).expect("the corpus file was just listed");
    let document = match data.split_last() {
        Some((0, rest)) => rest,
        _ => &data[..],
    };
    let report = policy::validate(document);
    check_report(document, &report);
    match Policy::from_file(path) {
        Ok(p) => {
            assert!(document.len() <= policy::MAX_POLICY_BYTES && report.is_valid());
            assert_eq!(&p.bytes()[..document.len()], document);
            assert_eq!(p.bytes().len(), document.len() + 1, "{}", path.display());
            assert_eq!(p.bytes().last(), Some(&0));
            assert_eq!(p.digest(), policy::sha256_hex(document));
            assert_eq!(Some(p.document()), report.document.as_ref());
        }
        Err(flashpolicyd::Error::Policy { line, .. }) => {
            let first = report.errors().next().map_or(0, |d| d.line);
            let too_big = document.len() > policy::MAX_POLICY_BYTES;
            assert!(too_big || !report.is_valid(), "{}", path.display());
            assert!(too_big || line == first, "{}: line {line}", path.display());
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------
// --allow specs and to-ports

/// `AllowSpec::parse` and `ToPorts::parse` on `data` as UTF-8 text: the whole input,
/// and each of its lines when it has several.
///
/// An accepted spec's domain passes `check_domain`; its `Display` parses back to the
/// same spec; the policy generated for the accepted specs (in input order) has no
/// diagnostic at all and grants exactly them, or, if they are too many for the size
/// cap, `cli::parse` refuses them. A domain that passes `check_domain` is itself a spec
/// for all ports. An accepted `to-ports` obeys [`check_ports`]. Rejections always say
/// why.
pub fn allow_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut specs = Vec::new();
    let lines = text.split('\n').filter(|_| text.contains('\n'));
    for value in std::iter::once(text).chain(lines) {
        if let Some(spec) = check_spec(value) {
            specs.push(spec);
        }
        match ToPorts::parse(value) {
            Ok(ports) => check_ports(&ports),
            Err(reason) => assert!(!reason.is_empty()),
        }
        if check_domain(value).is_ok() {
            let all = AllowSpec {
                domain: value.to_string(),
                to_ports: ToPorts::Any,
            };
            assert_eq!(AllowSpec::parse(value), Ok(all), "{value:?}");
        }
    }
    if !specs.is_empty() {
        check_generated(&specs);
    }
}

fn check_spec(value: &str) -> Option<AllowSpec> {
    let spec = match AllowSpec::parse(value) {
        Ok(spec) => spec,
        Err(reason) => {
            assert!(!reason.is_empty(), "{value:?}");
            return None;
        }
    };
    assert_eq!(
        check_domain(&spec.domain),
        Ok(()),
        "{value:?} gave {spec:?}"
    );
    check_ports(&spec.to_ports);
    let shown = spec.to_string();
    assert_eq!(
        AllowSpec::parse(&shown).as_ref(),
        Ok(&spec),
        "{value:?} shown {shown:?}"
    );
    Some(spec)
}

/// `Policy::from_allow(specs)`: no diagnostic, one grant per spec on lines 4, 5...;
/// unless the document would exceed the size cap, and then `cli::parse` refuses
/// these `--allow` values.
fn check_generated(specs: &[AllowSpec]) {
    let given: Vec<String> = specs.iter().map(ToString::to_string).collect();
    let fits = render_document(specs).len() <= policy::MAX_POLICY_BYTES;
    if specs.len() > 1 {
        let flags: Vec<String> = given.iter().map(|g| format!("--allow={g}")).collect();
        let accepted = flashpolicyd::cli::parse(&flags).is_ok();
        assert_eq!(accepted, fits, "{given:?}");
    }
    let policy = Policy::from_allow(specs, given);
    if !fits {
        assert!(policy.warnings().iter().any(|d| d.line == 0));
        return;
    }
    assert_eq!(policy.warnings(), &[], "{specs:?}");
    assert_eq!(policy.bytes().last(), Some(&0));
    let grants = &policy.document().allow_access_from;
    assert_eq!(grants.len(), specs.len());
    for ((grant, spec), line) in grants.iter().zip(specs).zip(4..) {
        assert_eq!(grant.domain, spec.domain);
        assert_eq!(grant.to_ports, spec.to_ports);
        assert_eq!(grant.to_ports_text, spec.to_ports.to_string());
        assert!(!grant.secure);
        assert_eq!(grant.line, line);
    }
}

// ---------------------------------------------------------------------------------------
// The checker's domain matching

/// `evaluate::domain_matches` and `SwfDomain::parse` on `data` as UTF-8 text
/// `PATTERN\nDOMAIN` (or one value used as both).
///
/// A SWF domain's `Display` parses back to it; `*` matches every domain; a pattern the
/// validator says never matches (`check_domain` fails) matches nothing; matching
/// ignores ASCII case; a wildcard matches only its suffix and subdomains of it; a
/// pattern that passes `check_domain` matches the domain it names (and, for `*.x`,
/// its subdomains).
pub fn domain_match(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, domain) = text.split_once('\n').unwrap_or((text, text));
    if let Ok(swf) = SwfDomain::parse(domain) {
        check_swf(pattern, &swf);
    }
    if pattern != "*" && check_domain(pattern).is_ok() {
        let named = pattern.strip_prefix("*.").unwrap_or(pattern);
        let swf = SwfDomain::parse(named);
        let swf = swf.unwrap_or_else(|e| panic!("{pattern:?} passes check_domain; {e}"));
        assert!(domain_matches(pattern, &swf), "{pattern:?} vs {swf:?}");
        check_swf(pattern, &swf);
        let upper = SwfDomain::parse(&named.to_ascii_uppercase());
        assert_eq!(upper.as_ref(), Ok(&swf), "{named:?}");
        if named.len() < 250 && pattern.starts_with("*.") {
            let sub = SwfDomain::parse(&format!("x.{named}")).expect("a subdomain of a host");
            assert!(domain_matches(pattern, &sub), "{pattern:?} vs {sub:?}");
        }
    }
}

fn check_swf(pattern: &str, swf: &SwfDomain) {
    let shown = swf.to_string();
    assert_eq!(SwfDomain::parse(&shown).as_ref(), Ok(swf), "{shown:?}");
    assert!(domain_matches("*", swf));
    let matched = domain_matches(pattern, swf);
    for variant in [pattern.to_ascii_uppercase(), pattern.to_ascii_lowercase()] {
        assert_eq!(
            domain_matches(&variant, swf),
            matched,
            "{variant:?} vs {swf:?}"
        );
    }
    if !matched {
        return;
    }
    assert!(check_domain(pattern).is_ok(), "{pattern:?} matched {swf:?}");
    if let (Some(suffix), SwfDomain::Name(name)) = (pattern.strip_prefix("*."), swf) {
        let suffix = suffix.to_ascii_lowercase();
        let sub = name
            .strip_suffix(&suffix)
            .is_some_and(|head| head.ends_with('.'));
        assert!(*name == suffix || sub, "{pattern:?} matched {name:?}");
    }
}

// ---------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift), seeded from the input, so that a saved
/// input always replays the same way.
struct Rng(u64);

impl Rng {
    fn seeded(data: &[u8]) -> Rng {
        // FNV-1a; never zero, which xorshift could not leave.
        let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Rng(hash | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
