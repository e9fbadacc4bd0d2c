//! `flashpolicy-check --player` against fake policy servers on 127.0.0.1:0: every
//! Lightspark rule of protocol.md §7 (each test names its rule), `--player all`, and
//! the exit codes of warnings against notes. The master plays port 843 (`-p`); the
//! destination is a second fake server whose port is the question's `-P`.

mod support;

use std::io::Write;
use std::thread;
use std::time::Duration;

use support::check::*;
use support::closed_port;
use support::fake::*;

fn policy(body: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<cross-domain-policy>\n{body}\n</cross-domain-policy>\n")
}

/// A master that grants nothing and lets every port serve its own policy.
fn open_master() -> Fake {
    policy_server(&policy(""))
}

/// Asks whether a SWF from localhost may connect to `dest`, master on `master`.
fn ask(master: u16, dest: u16, player: &str, extra: &[&str]) -> Run {
    let (m, d) = (master.to_string(), dest.to_string());
    let mut args = vec![
        "-H",
        "127.0.0.1",
        "-p",
        &m,
        "-d",
        "localhost",
        "-P",
        &d,
        "--player",
        player,
    ];
    args.extend_from_slice(extra);
    check(&args)
}

/// Runs the question under both players and returns (flash, lightspark).
fn both(master: u16, dest: u16) -> (Run, Run) {
    (
        ask(master, dest, "flash", &[]),
        ask(master, dest, "lightspark", &[]),
    )
}

fn dest_policy(body: &str) -> Fake {
    policy_server(&policy(body))
}

fn has(run: &Run, needle: &str) {
    assert!(
        run.stdout.contains(needle),
        "{needle:?} not in:\n{}",
        run.stdout
    );
}

#[test]
fn notes_do_not_warn_and_print_with_verbose() {
    let fake = policy_server(&policy(
        r#"<allow-access-from domain="*" to-ports="*" secure="true"/>"#,
    ));
    let port = fake.port.to_string();
    let run = check(&["-H", "127.0.0.1", "-p", &port]);
    expect(&run, 0);
    assert!(!run.stdout.contains("secure"), "{}", run.stdout);
    let run = check(&["-H", "127.0.0.1", "-p", &port, "-v"]);
    expect(&run, 0);
    has(&run, "note: 127.0.0.1:");
    has(&run, "secure=\"true\" grants only SWFs served over HTTPS");
}

#[test]
fn warnings_exit_warning() {
    let fake = policy_server(&policy(
        r#"<allow-access-from domain="*" to-ports="80, 81"/>"#,
    ));
    let run = check(&["-H", "127.0.0.1", "-p", &fake.port.to_string()]);
    expect(&run, 1);
    assert!(
        run.first_line().contains("to-ports \"80, 81\""),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_player_is_a_usage_error() {
    let run = check(&["-H", "127.0.0.1", "--player", "gnash"]);
    expect(&run, 3);
    has(&run, "invalid --player \"gnash\"");
}

#[test]
fn both_players_allow_a_plain_grant() {
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 0);
    expect(&light, 0);
    has(&light, "access allowed");
}

#[test]
fn lightspark_rule_site_control_not_master() {
    let master = open_master();
    let dest = dest_policy(
        r#"<site-control permitted-cross-domain-policies="all"/>
<allow-access-from domain="*" to-ports="*"/>"#,
    );
    let (flash, light) = both(master.port, dest.port);
    // Flash Player ignores site-control outside the master.
    expect(&flash, 0);
    expect(&light, 2);
    has(&light, "[lightspark: site-control-not-master]");
}

#[test]
fn lightspark_rule_range_first_port() {
    let master = open_master();
    // The range covers the destination but does not start with it: Lightspark reads
    // port 1 alone.
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="1-65535"/>"#);
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 0);
    expect(&light, 2);
    has(&light, "[lightspark: range-first-port]");
}

#[test]
fn lightspark_rule_range_first_port_grants_its_first_port() {
    // A listener first, so that the policy can name its port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = policy(&format!(
        r#"<allow-access-from domain="*" to-ports="{port}-65535"/>"#
    ));
    let mut reply = body.into_bytes();
    reply.push(0);
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            read_request(&mut s);
            let _ = s.write_all(&reply);
        }
    });
    let master = open_master();
    let light = ask(master.port, port, "lightspark", &[]);
    // Allowed, and warned about: the range grants its first port alone.
    expect(&light, 1);
    has(&light, "access allowed");
    has(&light, "[lightspark: range-first-port]");
}

#[test]
fn lightspark_rule_star_lost() {
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*,1-2"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: star-lost]");
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="1-2,*"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    assert!(
        light.first_line().contains("access allowed"),
        "{}",
        light.stdout
    );
}

#[test]
fn lightspark_rule_allow_attributes() {
    let master = open_master();
    let four = dest_policy(r#"<allow-access-from domain="*" to-ports="*" secure="false" x="1"/>"#);
    let light = ask(master.port, four.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: allow-attributes]");
    // Three attributes, one unknown: Lightspark reads it, Flash Player's grammar does not.
    let three = dest_policy(r#"<allow-access-from domain="*" to-ports="*" x="1"/>"#);
    let (flash, light) = both(master.port, three.port);
    expect(&flash, 2);
    expect(&light, 0);
}

#[test]
fn lightspark_rule_allow_empty() {
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain="" to-ports="*"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: allow-empty]");
}

#[test]
fn lightspark_rule_http_headers_element() {
    let master = open_master();
    let dest = dest_policy(
        r#"<allow-access-from domain="*" to-ports="*"/>
<allow-http-request-headers-from domain="*" headers="*"/>"#,
    );
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 0);
    expect(&light, 2);
    has(&light, "[lightspark: http-headers-element]");
}

#[test]
fn lightspark_rule_nested_element() {
    let master = open_master();
    let dest = dest_policy(
        r#"<allow-access-from domain="*" to-ports="*"><port>1</port></allow-access-from>"#,
    );
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 0);
    // Read as if the child were not there (protocol.md §7, checked): it grants, with a
    // note that is not a warning.
    expect(&light, 0);
    has(&light, "access allowed");
    has(&light, "note: ");
    has(&light, "[lightspark: nested-element]");
    let all = ask(master.port, dest.port, "all", &[]);
    expect(&all, 0);
    assert!(!all.stdout.contains("differs:"), "{}", all.stdout);
}

#[test]
fn lightspark_rule_nested_element_in_a_grant_that_decides() {
    // The only grant has a child: Lightspark still grants by it.
    let master = policy_server(&policy(
        r#"<allow-access-from domain="localhost" to-ports="*"><x/></allow-access-from>"#,
    ));
    let closed = closed_port();
    let light = ask(master.port, closed.port(), "lightspark", &[]);
    expect(&light, 0);
    has(&light, "access allowed");
    has(&light, "[lightspark: nested-element]");
}

#[test]
fn lightspark_rule_untrimmed_value() {
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain=" localhost" to-ports="*"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: untrimmed-value]");
}

#[test]
fn lightspark_rule_meta_unknown() {
    let master = policy_server(&policy(
        r#"<site-control permitted-cross-domain-policies="everything"/>"#,
    ));
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: meta-unknown]");
    assert_eq!(dest.accepted(), 0, "the destination must not be asked");
}

#[test]
fn lightspark_rule_fetch_order() {
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let master = policy_server(&policy(
        r#"<site-control permitted-cross-domain-policies="master-only"/>"#,
    ));
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: fetch-order]");
    assert_eq!(dest.accepted(), 0);
    let master = policy_server(&policy(
        r#"<site-control permitted-cross-domain-policies="all"/>"#,
    ));
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 0);
    assert_eq!(dest.accepted(), 1);
}

#[test]
fn lightspark_void_master_still_lets_the_destination_decide() {
    let master = policy_server(&policy(
        r#"<allow-access-from domain="*" to-ports="*" a="1" b="2"/>"#,
    ));
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let light = ask(master.port, dest.port, "lightspark", &[]);
    // Allowed by the destination; WARNING because the master was of no use.
    expect(&light, 1);
    has(&light, "access allowed");
    assert_eq!(dest.accepted(), 1);
}

#[test]
fn lightspark_rule_framing_bytes_after_the_nul() {
    let master = open_master();
    let mut reply = policy(r#"<allow-access-from domain="*" to-ports="*"/>"#).into_bytes();
    reply.extend_from_slice(b"\0junk");
    let dest = replying(reply);
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 1);
    expect(&light, 2);
    has(&light, "[lightspark: framing]");
}

#[test]
fn lightspark_rule_framing_accepts_a_final_gt_without_nul() {
    let master = open_master();
    let reply = "<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>";
    let dest = replying(reply.as_bytes().to_vec());
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 0);
    // A final byte that is not NUL, ">" or newline is refused.
    let dest = replying(format!("{reply} ").into_bytes());
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 2);
    has(&light, "[lightspark: framing]");
}

#[test]
fn lightspark_rule_first_read() {
    let master = open_master();
    let dest = serve(|mut s| {
        read_request(&mut s);
        let mut bytes = policy(r#"<allow-access-from domain="*" to-ports="*"/>"#).into_bytes();
        bytes.push(0);
        let (a, b) = bytes.split_at(20);
        let _ = s.write_all(a).and_then(|()| s.flush());
        // The pause is the behaviour under test: two writes arrive as two reads.
        thread::sleep(Duration::from_millis(150));
        let _ = s.write_all(b);
    });
    let (flash, light) = both(master.port, dest.port);
    expect(&flash, 0);
    expect(&light, 2);
    has(&light, "[lightspark: first-read]");
}

#[test]
fn lightspark_rule_reply_size() {
    let master = open_master();
    let padding = format!("<!-- {} -->", "x".repeat(1500));
    let dest = dest_policy(&format!(
        "{padding}\n<allow-access-from domain=\"*\" to-ports=\"*\"/>"
    ));
    let light = ask(master.port, dest.port, "lightspark", &[]);
    expect(&light, 1);
    has(&light, "access allowed");
    has(&light, "[lightspark: reply-size]");
}

#[test]
fn lightspark_rule_no_low_port_rule() {
    // A master on a high port grants every port: Flash Player refuses port 1 from it
    // (nothing listens on port 1 to fall back to), Lightspark grants it.
    let master = policy_server(&policy(r#"<allow-access-from domain="*" to-ports="*"/>"#));
    let (flash, light) = both(master.port, 1);
    expect(&flash, 2);
    has(&flash, "(low-port rule)");
    expect(&light, 0);
    let all = ask(master.port, 1, "all", &[]);
    expect(&all, 2);
    has(&all, "differs: ");
    has(&all, "[lightspark: no-low-port-rule]");
}

#[test]
fn lightspark_unreachable_master_falls_back() {
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let closed = closed_port();
    let light = ask(closed.port(), dest.port, "lightspark", &[]);
    expect(&light, 1);
    has(&light, "access allowed");
}

#[test]
fn lightspark_without_a_question() {
    let fake = policy_server(&policy(
        r#"<allow-access-from domain="*" to-ports="*"/>
<allow-http-request-headers-from domain="*" headers="*"/>"#,
    ));
    let port = fake.port.to_string();
    let run = check(&["-H", "127.0.0.1", "-p", &port, "--player", "lightspark"]);
    expect(&run, 2);
    has(&run, "Lightspark voids the policy");
    let run = check(&["-H", "127.0.0.1", "-p", &port]);
    expect(&run, 0);
}

#[test]
fn all_prints_a_verdict_per_player_and_why_they_differ() {
    let master = open_master();
    let dest = dest_policy(
        r#"<site-control permitted-cross-domain-policies="all"/>
<allow-access-from domain="*" to-ports="*"/>"#,
    );
    let run = ask(master.port, dest.port, "all", &[]);
    // The worst of OK (flash) and CRITICAL (lightspark).
    expect(&run, 2);
    let line = run.first_line();
    assert!(line.contains("flash OK: access allowed"), "{line}");
    assert!(
        line.contains("lightspark CRITICAL: access denied"),
        "{line}"
    );
    assert!(line.contains(" | time="), "{line}");
    assert!(
        line.ends_with(&format!("size={}B", policy("").len() + 1)),
        "{line}"
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("flash: OK - access allowed")),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lightspark: CRITICAL - access denied")),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("differs: ")
                && l.contains("[lightspark: site-control-not-master]")),
        "{}",
        run.stdout
    );
    // One fetch per port, shared by both players.
    assert_eq!(master.accepted(), 1);
    assert_eq!(dest.accepted(), 1);
}

#[test]
fn all_agreeing_players_print_no_difference() {
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*"/>"#);
    let run = ask(master.port, dest.port, "all", &[]);
    expect(&run, 0);
    assert!(!run.stdout.contains("differs:"), "{}", run.stdout);
    let closed = closed_port();
    let run = ask(master.port, closed.port(), "all", &[]);
    expect(&run, 2);
    assert!(!run.stdout.contains("differs:"), "{}", run.stdout);
}

#[test]
fn all_prints_no_difference_when_only_a_warning_differs() {
    // Both players grant; only Lightspark warns (a reply over one TCP segment).
    let master = open_master();
    let padding = format!("<!-- {} -->", "x".repeat(1500));
    let dest = dest_policy(&format!(
        "{padding}\n<allow-access-from domain=\"*\" to-ports=\"*\"/>"
    ));
    let run = ask(master.port, dest.port, "all", &[]);
    expect(&run, 1);
    let line = run.first_line();
    assert!(line.contains("flash OK: access allowed"), "{line}");
    assert!(
        line.contains("lightspark WARNING: access allowed"),
        "{line}"
    );
    assert!(!run.stdout.contains("differs:"), "{}", run.stdout);
}

#[test]
fn all_exit_code_is_the_worst() {
    // Flash Player refuses (unknown attribute), Lightspark grants: CRITICAL.
    let master = open_master();
    let dest = dest_policy(r#"<allow-access-from domain="*" to-ports="*" x="1"/>"#);
    let run = ask(master.port, dest.port, "all", &[]);
    expect(&run, 2);
    has(&run, "differs: Flash Player's rules, not Lightspark's");
}
