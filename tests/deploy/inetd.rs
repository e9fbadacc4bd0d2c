//! `--inetd`, black-box, set up the way inetd does it: the test accepts a loopback
//! connection and starts the daemon with that socket as its stdin, stdout and stderr.
//! The client must get exactly the policy and its NUL, then EOF, and never a log line
//! (not even at -v, not even for a start-up error); the daemon exits after the one
//! connection. Log lines go to --log-file or nowhere.

#![cfg(unix)]

use crate::support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// Like inetd: accepts one client and starts the daemon with `args` on that socket
/// (stdin, stdout and stderr). Returns the daemon and the client's end.
fn start_under_inetd(args: &[&str]) -> (Daemon, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = connect(listener.local_addr().unwrap());
    let (server_side, _) = listener.accept().expect("accept");
    let fd = |s: &TcpStream| Stdio::from(OwnedFd::from(s.try_clone().expect("clone socket")));
    let mut cmd = command(args);
    cmd.stdin(fd(&server_side))
        .stdout(fd(&server_side))
        .stderr(fd(&server_side));
    // Daemon::spawn drops `cmd`, and with it our copies of the accepted socket: the
    // daemon then holds the connection's only descriptors, as under inetd.
    let d = Daemon::spawn(cmd);
    drop(server_side);
    (d, client)
}

#[test]
fn serves_the_one_connection_on_stdin_and_exits_0() {
    let file = fixture("policy.xml");
    // -vv would log every byte: none of it may reach the socket without --log-file.
    let (mut d, mut client) = start_under_inetd(&["--inetd", "-f", &file, "-vv"]);
    client.write_all(REQUEST).unwrap();
    let reply = read_to_end(&mut client);
    assert_eq!(reply.end, End::Eof, "{reply:?}");
    assert!(reply.bytes == fixture_reply(), "got {}", show(&reply.bytes));
    d.expect_exit(0, EXIT);
}

#[test]
fn the_request_without_its_nul_is_enough() {
    let (mut d, mut client) = start_under_inetd(&["--inetd", "-a", "*.example.com:843"]);
    client.write_all(REQUEST_TEXT).unwrap();
    let reply = read_to_end(&mut client);
    assert_eq!(reply.end, End::Eof, "{reply:?}");
    assert_one_trailing_nul(&reply.bytes);
    let text = String::from_utf8_lossy(&reply.bytes);
    assert!(
        text.contains("domain=\"*.example.com\" to-ports=\"843\""),
        "{text}"
    );
    assert!(!text.contains("INFO") && !text.contains("WARN"), "{text}");
    d.expect_exit(0, EXIT);
}

#[test]
fn log_lines_go_to_the_log_file_only() {
    let log = TempPath::new("inetd.log");
    let file = fixture("policy.xml");
    let (mut d, mut client) =
        start_under_inetd(&["--inetd", "-f", &file, "-v", "--log-file", log.as_str()]);
    client.write_all(REQUEST).unwrap();
    let reply = read_to_end(&mut client);
    assert!(reply.bytes == fixture_reply(), "got {}", show(&reply.bytes));
    d.expect_exit(0, EXIT);
    let text = String::from_utf8_lossy(&log.read().expect("log file written")).into_owned();
    assert!(
        text.contains(&format!("served {} bytes", fixture_reply().len())),
        "{text}"
    );
}

#[test]
fn junk_gets_nothing_and_the_daemon_still_exits_0() {
    let (mut d, mut client) = start_under_inetd(&["--inetd", "-a", "*", "-v"]);
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reply = read_to_end(&mut client);
    assert!(reply.bytes.is_empty(), "got {}", show(&reply.bytes));
    d.expect_exit(0, EXIT);
}

#[test]
fn an_invalid_policy_reaches_the_log_file_not_the_client() {
    let bad = TempPath::with_contents(
        "bad.xml",
        b"<cross-domain-policy>\n<allow-access-from domain=\"*\"/>\n</cross-domain-policy>\n",
    );
    let log = TempPath::new("inetd-bad.log");
    let (mut d, mut client) =
        start_under_inetd(&["--inetd", "-f", bad.as_str(), "--log-file", log.as_str()]);
    let _ = client.write_all(REQUEST);
    let reply = read_to_end(&mut client);
    assert!(reply.bytes.is_empty(), "got {}", show(&reply.bytes));
    d.expect_exit(2, EXIT);
    let text = String::from_utf8_lossy(&log.read().expect("log file written")).into_owned();
    assert!(
        text.contains(&format!("ERROR invalid policy {}:2:", bad.as_str())),
        "{text}"
    );
}

#[test]
fn a_usage_error_reaches_the_log_file_not_the_client() {
    let log = TempPath::new("inetd-usage.log");
    let (mut d, mut client) =
        start_under_inetd(&["--inetd", "--log-file", log.as_str(), "--bogus"]);
    let _ = client.write_all(REQUEST);
    let reply = read_to_end(&mut client);
    assert!(reply.bytes.is_empty(), "got {}", show(&reply.bytes));
    d.expect_exit(2, EXIT);
    let text = String::from_utf8_lossy(&log.read().expect("log file written")).into_owned();
    assert!(text.contains("ERROR unknown option --bogus"), "{text}");
}

/// Decision: stdin that is not a socket is a configuration error (exit 2), reported
/// in the log file only (stdout and stderr may be anything; they stay silent).
#[test]
fn stdin_that_is_not_a_socket_exits_2_silently() {
    let log = TempPath::new("inetd-nosock.log");
    let out = run(
        &["--inetd", "--log-file", log.as_str()],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let text = String::from_utf8_lossy(&log.read().expect("log file written")).into_owned();
    assert!(
        text.contains("ERROR --inetd: standard input is not a socket"),
        "{text}"
    );

    let out = run(&["--inetd"], Duration::from_secs(10));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

/// inetd's `wait` mode hands over the listening socket: one connection is accepted
/// and served, then the daemon exits for inetd to take the socket back.
#[test]
fn wait_mode_accepts_and_serves_one_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = connect(listener.local_addr().unwrap());
    client.write_all(REQUEST).unwrap();
    let mut cmd = command(&["--inetd", "-a", "*"]);
    cmd.stdin(Stdio::from(OwnedFd::from(listener)))
        .stderr(Stdio::null());
    let mut d = Daemon::spawn(cmd);
    let reply = read_to_end(&mut client);
    assert_eq!(reply.end, End::Eof, "{reply:?}");
    assert_one_trailing_nul(&reply.bytes);
    d.expect_exit(0, EXIT);
}

/// What `socat TCP-LISTEN:843,fork EXEC:…` passes by default: one end of a Unix
/// socket pair, relayed to the TCP client.
#[test]
fn a_unix_socket_pair_works_like_a_tcp_connection() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd =
        |s: &std::os::unix::net::UnixStream| Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
    let mut cmd = command(&["--inetd", "-a", "*", "-vv"]);
    cmd.stdin(fd(&theirs))
        .stdout(fd(&theirs))
        .stderr(fd(&theirs));
    let mut d = Daemon::spawn(cmd);
    drop(theirs);
    let mut ours = ours;
    ours.set_read_timeout(Some(CLIENT)).unwrap();
    ours.write_all(REQUEST).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut ours, &mut got).expect("read until EOF");
    assert_one_trailing_nul(&got);
    assert!(got.starts_with(b"<?xml"), "{}", show(&got));
    d.expect_exit(0, EXIT);
}

#[test]
fn a_pipe_on_stdin_is_not_a_socket() {
    let log = TempPath::new("inetd-pipe.log");
    let mut cmd = command(&["--inetd", "--log-file", log.as_str()]);
    cmd.stdin(Stdio::piped());
    let out = run_cmd(cmd, Duration::from_secs(10));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let text = String::from_utf8_lossy(&log.read().expect("log file written")).into_owned();
    assert!(text.contains("standard input is not a socket"), "{text}");
}

/// The real thing: `systemd-socket-activate --inetd -a -l ADDR` accepts each
/// connection and starts the daemon with it as stdin and stdout.
#[test]
fn under_systemd_socket_activate_inetd() {
    let installed = std::process::Command::new("systemd-socket-activate")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !installed {
        skip(
            "under_systemd_socket_activate_inetd",
            "systemd-socket-activate not installed",
        );
        return;
    }
    let file = fixture("policy.xml");
    // The tool cannot bind port 0: it is told a port, and tried again on another if
    // that one was taken before it could bind it.
    let (tool, addr) = spawn_on_a_free_port(
        |addr| {
            command_via(
                &[
                    "systemd-socket-activate",
                    "--inetd",
                    "-a",
                    "-l",
                    &addr.to_string(),
                ],
                &["--inetd", "-f", &file, "-vv"],
            )
        },
        "Listening on ",
        "Address already in use",
    );
    for _ in 0..2 {
        let reply = poll(READY, || try_fetch(addr, REQUEST))
            .unwrap_or_else(|| panic!("no reply from {addr}; stderr:\n{}", tool.stderr()));
        assert_eq!(reply.end, End::Eof, "{reply:?}");
        assert!(reply.bytes == fixture_reply(), "got {}", show(&reply.bytes));
    }
}
