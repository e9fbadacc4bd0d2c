//! `flashpolicy-check` answering allow/deny questions: the fallback to the destination
//! port, the master's meta-policy, the low-port rule, `secure`, `--file`, and usage
//! errors. Expected answers follow protocol.md §4–5.

mod support;

use support::check::*;
use support::fake::*;
use support::{closed_port, TempPath};

fn policy(body: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<cross-domain-policy>\n{body}\n</cross-domain-policy>\n")
}

fn remote(master: u16, domain: &str, to_port: u16) -> Run {
    check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &master.to_string(),
        "-d",
        domain,
        "-P",
        &to_port.to_string(),
    ])
}

fn offline(body: &str, extra: &[&str]) -> Run {
    let path = TempPath::with_contents("policy.xml", policy(body).as_bytes());
    let mut args = vec!["--file", path.as_str()];
    args.extend_from_slice(extra);
    check(&args)
}

#[test]
fn fallback_to_the_destination_port_grants() {
    // Both ports are >= 1024, so the destination policy may grant its own port.
    let master = policy_server(&policy(
        r#"<allow-access-from domain="other.org" to-ports="*"/>"#,
    ));
    let dest = policy_server(&policy(
        r#"<allow-access-from domain="*.example.com" to-ports="*"/>"#,
    ));
    let run = remote(master.port, "www.example.com", dest.port);
    expect(&run, 0);
    assert!(
        run.first_line().contains("access allowed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("the player asks port {} itself", dest.port)),
        "{}",
        run.stdout
    );
    assert_eq!(dest.accepted(), 1);
}

#[test]
fn fallback_denies_when_the_destination_does_not_grant() {
    let master = policy_server(&policy(
        r#"<allow-access-from domain="other.org" to-ports="*"/>"#,
    ));
    let dest = policy_server(&policy(
        r#"<allow-access-from domain="www.example.com" to-ports="1-2"/>"#,
    ));
    let run = remote(master.port, "www.example.com", dest.port);
    expect(&run, 2);
    assert!(run.first_line().contains("access denied"), "{}", run.stdout);
    assert!(
        run.first_line().contains(&format!(
            "matches domain \"www.example.com\" but not port {} (to-ports \"1-2\")",
            dest.port
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn master_grant_needs_no_fallback() {
    let master = policy_server(GOOD);
    let dest = policy_server(&policy(r#"<allow-access-from domain="*" to-ports="*"/>"#));
    let run = remote(master.port, "a.example.com", 9050);
    expect(&run, 0);
    assert!(run.first_line().contains("line 3"), "{}", run.stdout);
    assert_eq!(dest.accepted(), 0);
}

#[test]
fn master_only_forbids_the_fallback() {
    let master = policy_server(&policy(
        r#"<site-control permitted-cross-domain-policies="master-only"/>
<allow-access-from domain="other.org" to-ports="*"/>"#,
    ));
    let dest = policy_server(&policy(r#"<allow-access-from domain="*" to-ports="*"/>"#));
    let run = remote(master.port, "www.example.com", dest.port);
    expect(&run, 2);
    assert!(
        run.first_line().contains(&format!(
            "site-control master-only (line 3): the policy on port {} is not consulted",
            dest.port
        )),
        "{}",
        run.stdout
    );
    // The binary has exited, so any connection it made has been accepted or is queued.
    assert_eq!(dest.accepted(), 0);
}

#[test]
fn site_control_none_denies_even_the_masters_grants() {
    let master = policy_server(&policy(
        r#"<site-control permitted-cross-domain-policies="none"/>
<allow-access-from domain="*" to-ports="*"/>"#,
    ));
    let dest = policy_server(&policy(r#"<allow-access-from domain="*" to-ports="*"/>"#));
    let run = remote(master.port, "www.example.com", dest.port);
    expect(&run, 2);
    assert!(
        run.first_line().contains("site-control none"),
        "{}",
        run.stdout
    );
    assert_eq!(dest.accepted(), 0);
}

#[test]
fn unreachable_master_still_falls_back() {
    let dest = policy_server(&policy(
        r#"<allow-access-from domain="www.example.com" to-ports="*"/>"#,
    ));
    let master = closed_port();
    let run = remote(master.port(), "www.example.com", dest.port);
    // Allowed, but the player had to fall back past a missing master: WARNING.
    expect(&run, 1);
    assert!(
        run.first_line().contains("access allowed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("the player falls back to the destination port"),
        "{}",
        run.stdout
    );
}

#[test]
fn nothing_anywhere_is_denied() {
    let (master, dest) = (closed_port(), closed_port());
    let run = remote(master.port(), "www.example.com", dest.port());
    expect(&run, 2);
    assert!(run.first_line().contains("access denied"), "{}", run.stdout);
}

#[test]
fn low_port_rule_applies_by_the_serving_port() {
    let body = r#"<allow-access-from domain="*" to-ports="*"/>"#;
    let run = offline(body, &["-p", "9000", "-d", "a.com", "-P", "80"]);
    expect(&run, 2);
    assert!(
        run.first_line().contains(
            "policy served from port 9000 (>= 1024) cannot grant port 80 (low-port rule)"
        ),
        "{}",
        run.stdout
    );
    let run = offline(body, &["-p", "9000", "-d", "a.com", "-P", "1024"]);
    expect(&run, 0);
    let run = offline(body, &["-d", "a.com", "-P", "80"]);
    expect(&run, 0);
}

#[test]
fn secure_grants_need_secure_swfs() {
    let body = r#"<allow-access-from domain="*.example.com" to-ports="443" secure="true"/>"#;
    let run = offline(body, &["-d", "example.com", "-P", "443"]);
    expect(&run, 2);
    assert!(
        run.first_line()
            .contains("grant at line 3 requires secure (HTTPS) SWFs"),
        "{}",
        run.stdout
    );
    let run = offline(body, &["-d", "example.com", "-P", "443", "--secure"]);
    // Allowed; the validator may add a warning about secure="true" (exit 1), never 2.
    assert!(
        run.first_line().contains("access allowed"),
        "{}",
        run.stdout
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stdout);
}

#[test]
fn domains_wildcards_and_ips_offline() {
    let body = r#"<allow-access-from domain="*.example.com" to-ports="80,443,9000-9100"/>
<allow-access-from domain="10.1.2.3" to-ports="*"/>"#;
    for (domain, port, code) in [
        ("example.com", "80", 0),
        ("a.b.EXAMPLE.com", "9100", 0),
        ("badexample.com", "80", 2),
        ("a.example.com", "8080", 2),
        ("10.1.2.3", "22", 0),
        ("10.1.2.4", "22", 2),
    ] {
        let run = offline(body, &["-d", domain, "-P", port]);
        assert_eq!(run.code, code, "{domain} port {port}:\n{}", run.stdout);
    }
}

#[test]
fn offline_mode_does_not_fall_back() {
    let run = offline(
        r#"<allow-access-from domain="other.org" to-ports="*"/>"#,
        &["-d", "a.com", "-P", "9000"],
    );
    expect(&run, 2);
    assert!(run.stdout.contains("--file is offline"), "{}", run.stdout);
}

#[test]
fn offline_validation_without_a_question() {
    let run = offline(
        r#"<allow-access-from domain="*.example.com" to-ports="80"/>"#,
        &[],
    );
    expect(&run, 0);
    assert!(
        run.first_line().contains(" | time=0.000000s;;;0 size="),
        "{}",
        run.stdout
    );
    let path = TempPath::with_contents("bad.xml", b"<not-a-policy/>");
    let run = check(&["--file", path.as_str()]);
    expect(&run, 2);
}

#[test]
fn usage_errors_are_unknown_and_name_the_flag() {
    let run = check(&["-H", "127.0.0.1", "-p", "70000"]);
    expect(&run, 3);
    assert_eq!(
        run.stdout,
        "FLASHPOLICY UNKNOWN - invalid --port \"70000\": must be 1-65535\n"
    );
    let run = check(&["-H", "127.0.0.1", "-d", "a.com"]);
    expect(&run, 3);
    assert!(
        run.first_line().contains("--domain needs --to-port"),
        "{}",
        run.stdout
    );
    let run = check(&["-H", "127.0.0.1", "-t", "soon"]);
    expect(&run, 3);
    assert!(
        run.first_line().contains("invalid --timeout \"soon\""),
        "{}",
        run.stdout
    );
    let run = check(&["--file", "/nonexistent/policy.xml"]);
    expect(&run, 3);
    assert!(
        run.first_line()
            .contains("cannot read policy file /nonexistent/policy.xml"),
        "{}",
        run.stdout
    );
}

#[test]
fn help_and_version_exit_zero() {
    let run = check(&["-h"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--to-port"), "{}", run.stdout);
    let run = check(&["--version"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("flashpolicy-check"),
        "{}",
        run.stdout
    );
}

/// The checker reads only a regular file (issue 22): a FIFO without a writer, whose
/// plain `open` would block forever, is refused at once, naming the path and what it
/// is (UNKNOWN, as for a file that cannot be read).
#[cfg(unix)]
#[test]
fn a_fifo_as_file_is_refused_without_hanging() {
    let fifo = TempPath::new("check.fifo");
    nix::unistd::mkfifo(fifo.path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .expect("mkfifo");
    let run = check(&["--file", fifo.as_str()]);
    expect(&run, 3);
    assert!(
        run.first_line().contains(&format!(
            "cannot read policy file {}: is a FIFO, not a regular file",
            fifo.as_str()
        )),
        "{}",
        run.stdout
    );
}
