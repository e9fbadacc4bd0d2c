//! The command line, black-box: flags and their errors, the three policy sources, policy
//! validation (errors name the file and line, warnings do not stop it), `--check-config`
//! and exit codes. Expected bytes are written by hand from protocol.md and issue 2.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::*;

/// Short-lived runs (usage errors, `--check-config`) must finish well within this.
const QUICK: Duration = Duration::from_secs(5);

fn with_nul(doc: &[u8]) -> Vec<u8> {
    let mut v = doc.to_vec();
    v.push(0);
    v
}

/// Asserts a usage/configuration error: exit 2, exactly one stderr line, containing
/// every needle (each alternative list needs one match), no panic.
fn assert_usage_error(args: &[&str], needles: &[&[&str]]) {
    let out = run(args, QUICK);
    assert_no_panic(&out);
    assert_eq!(
        out.code(),
        2,
        "{args:?} must exit 2; stderr:\n{}",
        out.stderr
    );
    let lines = out.stderr_lines();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: the error must be one line on stderr, got:\n{}",
        out.stderr
    );
    for alternatives in needles {
        assert!(
            alternatives.iter().any(|n| lines[0].contains(n)),
            "{args:?}: error line must mention one of {alternatives:?}: {:?}",
            lines[0]
        );
    }
}

// ---------------------------------------------------------------------------------------
// Help, version, bad flags

#[test]
fn help_lists_every_flag_and_exits_0() {
    for flag in ["-h", "--help"] {
        let out = run(&[flag], QUICK);
        assert_no_panic(&out);
        assert_eq!(out.code(), 0, "{flag}: stderr:\n{}", out.stderr);
        let text = format!("{}{}", out.stdout_text(), out.stderr);
        for name in [
            "--port",
            "--bind",
            "--file",
            "--allow",
            "--timeout",
            "--workers",
            "--max-pending",
            "--log-file",
            "--pid-file",
            "--check-config",
            "--help",
            "--version",
        ] {
            assert!(
                text.contains(name),
                "{flag} output does not mention {name}:\n{text}"
            );
        }
    }
}

#[test]
fn version_prints_the_crate_version_and_exits_0() {
    for flag in ["-V", "--version"] {
        let out = run(&[flag], QUICK);
        assert_no_panic(&out);
        assert_eq!(out.code(), 0, "{flag}: stderr:\n{}", out.stderr);
        let text = format!("{}{}", out.stdout_text(), out.stderr);
        assert!(
            text.contains(env!("CARGO_PKG_VERSION")),
            "{flag} output lacks version {}: {text:?}",
            env!("CARGO_PKG_VERSION")
        );
    }
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    // Each run also carries a valid listen spec (unless the case is about that flag),
    // so a daemon that wrongly accepted the flag would start serving and be killed at
    // the deadline, failing the test.
    let cases: &[(&[&str], &[&[&str]])] = &[
        (&["--bogus-flag"], &[&["bogus-flag"]]),
        (&["-p", "70000"], &[&["port"], &["70000"]]),
        (&["-p", "abc"], &[&["port"], &["abc"]]),
        (&["-t", "0"], &[&["timeout"]]),
        (&["-t", "-1"], &[&["timeout"], &["-1"]]),
        (&["-t", "abc"], &[&["timeout"], &["abc"]]),
        (&["-w", "0"], &[&["workers"]]),
        (&["-w", "abc"], &[&["workers"], &["abc"]]),
        (&["-b", "not-an-ip"], &[&["bind"], &["not-an-ip"]]),
        (&["-a", "bad domain!:80"], &[&["allow"], &["bad domain!"]]),
        (&["-a", "*.example.com:99999"], &[&["allow"], &["99999"]]),
        (&["-a", "*.example.com:80-"], &[&["allow"], &["80-"]]),
        (&["-a", "*.example.com:9-3"], &[&["allow"], &["9-3"]]),
    ];
    for (flags, needles) in cases {
        let mut args: Vec<&str> = Vec::new();
        if flags[0] != "-p" {
            args.extend(["-p", "0"]);
        }
        if flags[0] != "-b" {
            args.extend(["-b", "127.0.0.1"]);
        }
        // The bad flag comes last, so that the parser reaches it.
        args.extend_from_slice(flags);
        assert_usage_error(&args, needles);
    }
    // -p as the last argument: its value is missing.
    assert_usage_error(&["-b", "127.0.0.1", "-p"], &[&["port", "-p", "'p'"]]);
    // A usage error must not depend on argument order either.
    assert_usage_error(
        &["-p", "70000", "-b", "127.0.0.1"],
        &[&["port"], &["70000"]],
    );
}

#[test]
fn file_and_allow_together_exit_2() {
    let file = fixture("policy.xml");
    let args = [
        "-p",
        "0",
        "-b",
        "127.0.0.1",
        "-f",
        &file,
        "-a",
        "*.example.com:80",
    ];
    assert_usage_error(&args, &[&["-f", "file"], &["-a", "allow"]]);
    let mut check = args.to_vec();
    check.push("--check-config");
    let out = run(&check, QUICK);
    assert_no_panic(&out);
    assert_eq!(out.code(), 2, "stderr:\n{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Policy sources and --check-config

#[test]
fn check_config_prints_the_exact_bytes_of_a_file_on_stdout() {
    let file = fixture("policy.xml");
    let out = run(&["-f", &file, "--check-config"], QUICK);
    assert_no_panic(&out);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    assert!(
        out.stdout == fixture_reply(),
        "stdout {} must be the file plus one NUL",
        show(&out.stdout)
    );
    assert!(
        !out.stderr.trim().is_empty(),
        "--check-config must print a summary on stderr"
    );
}

#[test]
fn check_config_does_not_bind() {
    // Hold the port ourselves: a --check-config that tried to bind would fail.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let file = fixture("policy.xml");
    let out = run(
        &[
            "-p",
            &port,
            "-b",
            "127.0.0.1",
            "-f",
            &file,
            "--check-config",
        ],
        QUICK,
    );
    assert_no_panic(&out);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    assert!(
        out.stdout == fixture_reply(),
        "stdout {}",
        show(&out.stdout)
    );
}

#[test]
fn file_is_served_byte_exact_with_one_nul() {
    let file = fixture("policy.xml");
    let d = Daemon::start_local(&["-f", &file]);
    let got = fetch_policy(d.addr());
    assert!(got == fixture_reply(), "served {}", show(&got));
}

#[test]
fn file_ending_in_nul_is_not_doubled() {
    let mut doc = b"<cross-domain-policy>\n  <allow-access-from domain=\"*.example.com\" \
                    to-ports=\"843\"/>\n</cross-domain-policy>\n"
        .to_vec();
    doc.push(0);
    let f = TempPath::with_contents("nul-terminated.xml", &doc);

    let out = run(&["-f", f.as_str(), "--check-config"], QUICK);
    assert_no_panic(&out);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    assert!(
        out.stdout == doc,
        "--check-config stdout {}",
        show(&out.stdout)
    );

    let d = Daemon::start_local(&["-f", f.as_str()]);
    let got = fetch_policy(d.addr());
    assert!(
        got == doc,
        "served {}, expected the file unchanged",
        show(&got)
    );
}

#[test]
fn allow_generates_the_elements() {
    let out = run(
        &[
            "-a",
            "*.example.com:80,8000-8100",
            "-a",
            "example.org",
            "--check-config",
        ],
        QUICK,
    );
    assert_no_panic(&out);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    let bytes = out.stdout.clone();
    assert_one_trailing_nul(&bytes);
    let text = String::from_utf8(bytes[..bytes.len() - 1].to_vec()).expect("UTF-8 policy");
    for element in [
        r#"<allow-access-from domain="*.example.com" to-ports="80,8000-8100"/>"#,
        r#"<allow-access-from domain="example.org" to-ports="*"/>"#,
    ] {
        assert!(text.contains(element), "policy lacks {element}:\n{text}");
    }
    assert_eq!(
        text.matches("<allow-access-from").count(),
        2,
        "policy:\n{text}"
    );
    assert!(text.contains("<cross-domain-policy>"), "policy:\n{text}");
    assert!(
        text.trim_end().ends_with("</cross-domain-policy>"),
        "policy:\n{text}"
    );
    let first = text.find("*.example.com").unwrap();
    let second = text.find("example.org").unwrap();
    assert!(
        first < second,
        "elements must keep the order of the flags:\n{text}"
    );

    // The generated document is itself a valid policy, served unchanged from a file.
    let f = TempPath::with_contents("generated.xml", text.as_bytes());
    let again = run(&["-f", f.as_str(), "--check-config"], QUICK);
    assert_eq!(
        again.code(),
        0,
        "generated policy rejected:\n{}",
        again.stderr
    );
    assert!(again.stdout == out.stdout, "round trip changed the bytes");
}

#[test]
fn allow_policy_on_the_wire_matches_check_config() {
    let args = ["-a", "*.example.com:80,8000-8100", "-a", "203.0.113.7:843"];
    let mut check = args.to_vec();
    check.push("--check-config");
    let out = run(&check, QUICK);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);

    let d = Daemon::start_local(&args);
    let got = fetch_policy(d.addr());
    assert!(
        got == out.stdout,
        "served {} but --check-config printed {}",
        show(&got),
        show(&out.stdout)
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains(r#"<allow-access-from domain="203.0.113.7" to-ports="843"/>"#),
        "{text}"
    );
}

#[test]
fn default_policy_allows_all_and_warns_at_startup() {
    let out = run(&["--check-config"], QUICK);
    assert_no_panic(&out);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    assert_one_trailing_nul(&out.stdout);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["<cross-domain-policy>", r#"domain="*""#, r#"to-ports="*""#] {
        assert!(
            text.contains(needle),
            "default policy lacks {needle}:\n{text}"
        );
    }

    // The daemon serves the same bytes and logs a warning-level line at startup.
    let d = Daemon::start_local(&[]);
    let got = fetch_policy(d.addr());
    assert!(got == out.stdout, "served {}", show(&got));
    let warn = d
        .lines()
        .into_iter()
        .find(|l| is_permissive_warning(l))
        .unwrap_or_else(|| panic!("no permissive warning at startup:\n{}", d.stderr()));
    assert!(
        warn.contains(" WARN "),
        "not a warning-level line: {warn:?}"
    );
}

#[test]
fn check_config_on_the_default_warns_that_it_is_permissive() {
    // `--check-config` is where an operator looks before deploying: the permissive
    // default is exactly what it should point out, as it does for dubious files.
    let out = run(&["--check-config"], QUICK);
    assert_eq!(out.code(), 0, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.lines().any(is_permissive_warning),
        "--check-config on the default must warn it is permissive:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// Policy validation

const HEAD: &str = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n"; // lines 1-2
const TAIL: &str = "</cross-domain-policy>\n";
const GRANT: &str = "  <allow-access-from domain=\"*.example.com\" to-ports=\"843\"/>\n";

/// A document whose line 3 is `line3` (lines 1–2 are the declaration and root).
fn doc_with_line3(line3: &str) -> String {
    format!("{HEAD}{line3}\n{TAIL}")
}

/// Runs an invalid policy through the daemon and through --check-config: exit 2, and
/// a line naming `path:line` (or just the path when `line` is `None`).
fn assert_invalid_policy(what: &str, path: &str, line: Option<usize>) {
    let needle = match line {
        Some(n) => format!("{path}:{n}"),
        None => path.to_string(),
    };
    for check in [false, true] {
        let mut args = vec!["-p", "0", "-b", "127.0.0.1", "-f", path];
        if check {
            args.push("--check-config");
        }
        let out = run(&args, QUICK);
        assert_no_panic(&out);
        assert_eq!(
            out.code(),
            2,
            "{what} ({args:?}) must exit 2; stderr:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&needle),
            "{what} ({args:?}): stderr must name {needle:?}:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("listening on"),
            "{what}: must not start listening:\n{}",
            out.stderr
        );
        if check {
            assert!(
                !out.stdout.contains(&0),
                "{what}: --check-config must not print policy bytes for an invalid policy"
            );
        }
    }
}

#[test]
fn invalid_policies_exit_2_naming_file_and_line() {
    let line3_cases: &[(&str, &str)] = &[
        (
            "unquoted attribute (not well-formed)",
            r#"  <allow-access-from domain=* to-ports="843"/>"#,
        ),
        (
            "mismatched end tag (not well-formed)",
            r#"  <allow-access-from domain="*" to-ports="843"></allow-access-fro>"#,
        ),
        (
            "to-ports open range 80-",
            r#"  <allow-access-from domain="*" to-ports="80-"/>"#,
        ),
        (
            "to-ports 0",
            r#"  <allow-access-from domain="*" to-ports="0"/>"#,
        ),
        (
            "to-ports 65536",
            r#"  <allow-access-from domain="*" to-ports="65536"/>"#,
        ),
        (
            "to-ports reversed range 9-3",
            r#"  <allow-access-from domain="*" to-ports="9-3"/>"#,
        ),
        ("missing domain", r#"  <allow-access-from to-ports="843"/>"#),
        (
            "missing to-ports",
            r#"  <allow-access-from domain="*.example.com"/>"#,
        ),
        (
            "site-control bad value",
            r#"  <site-control permitted-cross-domain-policies="some"/>"#,
        ),
        (
            "embedded NUL",
            "  <allow-access-from domain=\"*\" to-ports=\"843\"/>\0",
        ),
    ];
    for (what, line3) in line3_cases {
        let f = TempPath::with_contents("invalid.xml", doc_with_line3(line3).as_bytes());
        assert_invalid_policy(what, f.as_str(), Some(3));
    }

    // Wrong root, on line 2.
    let wrong_root = "<?xml version=\"1.0\"?>\n<cross-domain-policyx>\n\
                      \x20 <allow-access-from domain=\"*\" to-ports=\"843\"/>\n\
                      </cross-domain-policyx>\n";
    let f = TempPath::with_contents("wrong-root.xml", wrong_root.as_bytes());
    assert_invalid_policy("wrong root", f.as_str(), Some(2));

    // site-control twice: the second one, on line 4, is the fault.
    let twice = format!(
        "{HEAD}  <site-control permitted-cross-domain-policies=\"all\"/>\n  \
         <site-control permitted-cross-domain-policies=\"all\"/>\n{GRANT}{TAIL}"
    );
    let f = TempPath::with_contents("site-control-twice.xml", twice.as_bytes());
    assert_invalid_policy("site-control twice", f.as_str(), Some(4));
}

#[test]
fn policy_over_10000_bytes_is_rejected_and_10000_accepted() {
    let ok = policy_of_size(10_000);
    let f = TempPath::with_contents("10000.xml", &ok);
    let out = run(&["-f", f.as_str(), "--check-config"], QUICK);
    assert_no_panic(&out);
    assert_eq!(
        out.code(),
        0,
        "a 10,000-byte policy is allowed:\n{}",
        out.stderr
    );
    assert!(
        out.stdout == with_nul(&ok),
        "stdout {} bytes",
        out.stdout.len()
    );

    // Served whole over the wire too.
    let d = Daemon::start_local(&["-f", f.as_str()]);
    let got = fetch_policy(d.addr());
    assert!(
        got == with_nul(&ok),
        "served {} bytes, expected 10,001",
        got.len()
    );
    drop(d);

    let big = policy_of_size(10_001);
    let f = TempPath::with_contents("10001.xml", &big);
    assert_invalid_policy("10,001-byte policy", f.as_str(), None);
}

#[test]
fn nonexistent_policy_file_exits_2_naming_it() {
    let missing = TempPath::new("does-not-exist.xml");
    assert!(!missing.exists());
    assert_invalid_policy("nonexistent file", missing.as_str(), None);
}

#[test]
fn dubious_policies_warn_but_pass() {
    let bom_doc = {
        let mut v = b"\xEF\xBB\xBF".to_vec();
        v.extend_from_slice(format!("{HEAD}{GRANT}{TAIL}").as_bytes());
        v
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "by-content-type",
            format!(
                "{HEAD}  <site-control permitted-cross-domain-policies=\"by-content-type\"/>\n\
                 {GRANT}{TAIL}"
            )
            .into_bytes(),
            &["by-content-type"],
        ),
        (
            "unknown element",
            format!("{HEAD}  <custom-thing/>\n{GRANT}{TAIL}").into_bytes(),
            &["custom-thing"],
        ),
        (
            "UTF-8 BOM",
            bom_doc,
            &["BOM", "bom", "byte order mark", "byte-order mark"],
        ),
    ];
    for (what, doc, needles) in cases {
        let f = TempPath::with_contents("dubious.xml", &doc);
        let out = run(&["-f", f.as_str(), "--check-config"], QUICK);
        assert_no_panic(&out);
        assert_eq!(
            out.code(),
            0,
            "{what}: a warning must not fail:\n{}",
            out.stderr
        );
        assert!(
            out.stdout == with_nul(&doc),
            "{what}: stdout must be the file plus one NUL, got {}",
            show(&out.stdout)
        );
        let warning = out
            .stderr
            .lines()
            .find(|l| l.to_lowercase().contains("warn") && needles.iter().any(|n| l.contains(n)));
        assert!(
            warning.is_some(),
            "{what}: stderr needs a warning mentioning one of {needles:?}:\n{}",
            out.stderr
        );
    }
}

/// A note (true, nothing to fix) is not a warning: `--check-config` prints it only
/// with -v, as a note.
#[test]
fn notes_print_only_with_verbose() {
    let doc = doc_with_line3(
        r#"  <allow-access-from domain="*.example.com" to-ports="843" secure="true"/>"#,
    );
    let f = TempPath::with_contents("https-only.xml", doc.as_bytes());
    let out = run(&["-f", f.as_str(), "-p", "843", "--check-config"], QUICK);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(!out.stderr.contains("secure="), "{}", out.stderr);
    let out = run(
        &["-f", f.as_str(), "-p", "843", "--check-config", "-v"],
        QUICK,
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let note = out.stderr.lines().find(|l| l.contains("secure="));
    assert!(
        note.is_some_and(|l| l.contains("note:") && !l.contains("warning")),
        "{}",
        out.stderr
    );
}

/// --check-config knows the port it would serve on: site-control away from 843 and a
/// policy on a high port granting low ports are Lightspark/Adobe hazards there, not
/// on 843 (protocol.md §7). --check-config binds nothing, so the ports are only named.
#[test]
fn check_config_warns_per_port() {
    let doc = format!(
        "{HEAD}  <site-control permitted-cross-domain-policies=\"all\"/>\n\
         <allow-access-from domain=\"*\" to-ports=\"80,9000-9100\"/>\n{TAIL}"
    );
    let f = TempPath::with_contents("ports.xml", doc.as_bytes());
    let out = run(&["-f", f.as_str(), "-p", "8843", "--check-config"], QUICK);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let warned = |rule: &str| {
        out.stderr
            .lines()
            .any(|l| l.contains("warning: port 8843:") && l.contains(rule))
    };
    assert!(
        warned("[lightspark: site-control-not-master]"),
        "{}",
        out.stderr
    );
    assert!(warned("remove site-control"), "{}", out.stderr);
    assert!(warned("[lightspark: no-low-port-rule]"), "{}", out.stderr);
    assert!(warned("Flash Player refuses"), "{}", out.stderr);
    assert!(warned("[lightspark: range-first-port]"), "{}", out.stderr);
    let out = run(&["-f", f.as_str(), "-p", "843", "--check-config"], QUICK);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("site-control-not-master"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("no-low-port-rule"), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: port 843:") && out.stderr.contains("range-first-port"),
        "{}",
        out.stderr
    );
}

/// Only a regular file is a policy (issue 22): a FIFO (whose plain `open` would block
/// until a writer comes), a directory or a device is refused at once, exit 2, naming
/// the path and what it is, at start and under --check-config.
#[cfg(unix)]
#[test]
fn a_policy_path_that_is_not_a_regular_file_exits_2_naming_what_it_is() {
    let fifo = TempPath::new("policy.fifo");
    nix::unistd::mkfifo(fifo.path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .expect("mkfifo");
    let dir = TempDir::new("policy-dir");
    let dir_path = dir.0.to_str().expect("UTF-8 temp path").to_string();
    for (path, what) in [
        (fifo.as_str(), "is a FIFO, not a regular file"),
        (dir_path.as_str(), "is a directory, not a regular file"),
        ("/dev/null", "is a character device, not a regular file"),
    ] {
        assert_invalid_policy(what, path, None);
        let out = run(&["-f", path, "--check-config"], QUICK);
        assert!(
            out.stderr.contains(&format!("{path}: {what}")),
            "{path}: the message must say what it is:\n{}",
            out.stderr
        );
    }
}
