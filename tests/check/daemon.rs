//! `flashpolicy-check` against the real daemon, started on 127.0.0.1 port 0: the two
//! binaries must agree on the protocol and on the policy's meaning.

use crate::support;

use crate::checker::*;
use support::{closed_port, Daemon, TempPath};

/// Starts `flashpolicyd -p 0 -b 127.0.0.1 ARGS` and learns its port from the
/// `listening on 127.0.0.1:PORT` log line.
fn daemon(args: &[&str]) -> Daemon {
    Daemon::start_local(args)
}

#[test]
fn daemon_policy_is_valid_and_grants_what_it_says() {
    let d = daemon(&["-a", "*.example.com:9000-9100"]);
    let port = d.port().to_string();
    let run = check(&["-H", "127.0.0.1", "-p", &port]);
    expect(&run, 0);
    assert!(run.stdout.contains("ended with one NUL"), "{}", run.stdout);

    let run = check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "www.example.com",
        "-P",
        "9100",
    ]);
    expect(&run, 0);
    assert!(
        run.first_line().contains("access allowed"),
        "{}",
        run.stdout
    );

    // The daemon serves from a port >= 1024 here, so even a matching grant could not
    // reach a low port; this one does not list it anyway, and nothing listens on it.
    let run = check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "example.org",
        "-P",
        "9000",
    ]);
    expect(&run, 2);
    assert!(run.first_line().contains("access denied"), "{}", run.stdout);
}

#[test]
fn daemon_allow_all_default_grants_high_ports_only_from_a_high_port() {
    let d = daemon(&[]);
    let port = d.port().to_string();
    let run = check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "10.0.0.1",
        "-P",
        "9000",
    ]);
    expect(&run, 0);
    let low = closed_port_below_1024();
    let run = check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "10.0.0.1",
        "-P",
        &low.to_string(),
    ]);
    expect(&run, 2);
    assert!(run.stdout.contains("(low-port rule)"), "{}", run.stdout);
}

/// A port below 1024 where nothing should listen on a test machine (tcpmux).
fn closed_port_below_1024() -> u16 {
    1
}

/// The start-up log warns, per listening port, about what Lightspark will refuse there
/// (docs/protocol.md §7), and the checker's two players disagree on that same policy.
#[test]
fn daemon_warns_per_port_and_players_disagree() {
    let policy = "<cross-domain-policy>\n\
         <site-control permitted-cross-domain-policies=\"all\"/>\n\
         <allow-access-from domain=\"*\" to-ports=\"*\"/>\n\
         </cross-domain-policy>\n";
    let path = TempPath::with_contents("site-control.xml", policy.as_bytes());
    let d = daemon(&["-f", path.as_str()]);
    let port = d.port().to_string();
    let log = d.lines();
    let warned = log.iter().any(|l| {
        l.contains("WARN")
            && l.contains(&format!("policy: port {port}:"))
            && l.contains("[lightspark: site-control-not-master]")
    });
    assert!(warned, "{}", log.join("\n"));
    // A SWF connecting to the daemon's own port: Flash Player ignores the site-control
    // of a policy that is not the master; Lightspark voids it. Master: nothing there.
    let closed = closed_port();
    let master = closed.port().to_string();
    let run = check(&[
        "-H",
        "127.0.0.1",
        "-p",
        &master,
        "-d",
        "localhost",
        "-P",
        &port,
        "--player",
        "all",
    ]);
    expect(&run, 2);
    assert!(
        run.stdout.contains("flash: WARNING - access allowed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("lightspark: CRITICAL - access denied"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("differs: ") && run.stdout.contains("site-control-not-master"),
        "{}",
        run.stdout
    );
}
