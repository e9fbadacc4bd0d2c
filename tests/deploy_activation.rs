//! systemd socket activation, black-box: the test binds a loopback listener and starts
//! the daemon with it as descriptor 3 and `LISTEN_PID`/`LISTEN_FDS` set, as systemd
//! does (see `support::activated` for how), and once under systemd's own tool.

#![cfg(unix)]

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn serves_on_the_inherited_socket_instead_of_binding() {
    let (fd3, addr) = loopback_listener();
    // -p and -b name another address: they must be ignored, with an info line.
    let mut d = Daemon::start_cmd(
        activated(fd3, &["-p", "0", "-b", "::1", "-a", "*.example.com:843"]),
        1,
    );
    assert_eq!(d.listen_addrs(), vec![addr], "stderr:\n{}", d.stderr());
    d.expect_line(
        &format!("listening on {addr} (socket activation, descriptor 3)"),
        READY,
    );
    d.expect_line(
        "INFO socket activation: --port and --bind are ignored",
        READY,
    );
    let reply = fetch_policy(addr);
    assert_one_trailing_nul(&reply);
    assert!(String::from_utf8_lossy(&reply).contains("*.example.com"));
    let stopped = d.stop();
    assert_counters(&stopped, &[("served", 1)]);
}

/// `--check-config` under socket activation looks at the sockets systemd hands over
/// (without taking them): it names their address, and the per-port warnings are about
/// their port, not about `--port`.
#[test]
fn check_config_names_the_inherited_socket_and_warns_for_its_port() {
    let (fd3, addr) = loopback_listener();
    let out = run_cmd(
        activated(fd3, &["--check-config", "-p", "843", "-a", "*:80"]),
        Duration::from_secs(10),
    );
    let stderr = &out.stderr;
    assert_eq!(out.code(), 0, "{stderr}");
    assert!(
        stderr.contains(&format!("would listen on {addr} ")),
        "{stderr}"
    );
    // A policy served from a port >= 1024 that grants port 80: Flash Player refuses it.
    assert!(
        stderr.contains(&format!("warning: port {}:", addr.port())),
        "{stderr}"
    );
    assert!(!stderr.contains("port 843:"), "{stderr}");
}

#[test]
fn listen_pid_of_another_process_is_ignored() {
    let mut cmd = command(&["-p", "0", "-b", "127.0.0.1", "-a", "*"]);
    // pid 1 is never the daemon.
    cmd.env("LISTEN_PID", "1").env("LISTEN_FDS", "1");
    let mut d = Daemon::start_cmd(cmd, 1);
    d.expect_line("ignoring LISTEN_FDS: LISTEN_PID=1 is not our pid", READY);
    assert_eq!(fetch_policy(d.addr()).last(), Some(&0));
    d.stop();
}

#[test]
fn a_descriptor_that_is_not_a_socket_exits_1_naming_it() {
    let out = run_cmd(
        activated(Stdio::null(), &["-a", "*"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        out.stderr_lines()
            .iter()
            .filter(|l| l.starts_with("flashpolicyd: "))
            .collect::<Vec<_>>(),
        vec![&"flashpolicyd: socket activation: inherited descriptor 3 is not a socket"],
        "{}",
        out.stderr
    );
}

#[test]
fn a_connected_socket_is_refused_with_a_hint() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = connect(l.local_addr().unwrap());
    let (conn, _) = l.accept().unwrap();
    let out = run_cmd(
        activated(Stdio::from(OwnedFd::from(conn)), &["-a", "*"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("inherited descriptor 3 is a connected socket, not a listening one"),
        "{}",
        out.stderr
    );
}

/// True when systemd's own test tool is installed (package `systemd`).
fn have_socket_activate() -> bool {
    Command::new("systemd-socket-activate")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The real thing: `systemd-socket-activate -l ADDR` binds, and at the first
/// connection starts the daemon with the socket as descriptor 3 and the `LISTEN_*`
/// variables set (LISTEN_FDNAMES too).
#[test]
fn under_systemd_socket_activate() {
    if !have_socket_activate() {
        skip(
            "under_systemd_socket_activate",
            "systemd-socket-activate not installed",
        );
        return;
    }
    let pid_file = TempPath::new("activated.pid");
    // The tool cannot bind port 0: it is told a port, and tried again on another if
    // that one was taken before it could bind it.
    let (tool, addr) = spawn_on_a_free_port(
        |addr| {
            let mut cmd = command_via(
                &["systemd-socket-activate", "-l", &addr.to_string()],
                &["-a", "*", "--pid-file", pid_file.as_str()],
            );
            // command_via puts the daemon's path after the wrapper's arguments: exactly
            // the `systemd-socket-activate -l ADDR PROGRAM ARGS…` form.
            cmd.env_remove("LISTEN_PID");
            cmd
        },
        "Listening on ",
        "Address already in use",
    );
    let reply = poll(READY, || try_fetch(addr, REQUEST))
        .unwrap_or_else(|| panic!("no reply from {addr}; stderr:\n{}", tool.stderr()));
    assert_eq!(reply.end, End::Eof, "{reply:?}");
    assert_one_trailing_nul(&reply.bytes);
    tool.expect_line(
        &format!("listening on {addr} (socket activation, descriptor 3)"),
        READY,
    );
    // The tool forks: stop the daemon itself, by the pid it wrote.
    let pid = poll(READY, || {
        pid_file
            .read()
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u32>().ok())
    })
    .expect("pid file written");
    send_signal(pid, "TERM");
    tool.expect_line("stopped: served=1", EXIT);
}

/// Like `support::activated`, with two listeners: `first` as descriptor 3 (via stdin)
/// and `second` as descriptor 4 (via stdout).
fn activated_two(first: Stdio, second: Stdio, args: &[&str]) -> Command {
    const ACTIVATE_TWO: &str = "exec 3<&0 4>&1 0</dev/null 1>/dev/null; LISTEN_PID=$$; \
         LISTEN_FDS=2; export LISTEN_PID LISTEN_FDS; exec \"$0\" \"$@\"";
    let mut cmd = support::command_via(&["sh", "-c", ACTIVATE_TWO], args);
    cmd.stdin(first).stdout(second);
    cmd
}

fn stdio_of(l: &TcpListener) -> Stdio {
    Stdio::from(OwnedFd::from(l.try_clone().expect("dup listener")))
}

/// A stop must leave the inherited sockets as systemd gave them (issue 22): the same
/// sockets, handed to a second daemon, serve again, and a client that connects while
/// no daemon runs (queued in the kernel, as under systemd between a stop and the
/// reactivation) is served by the second daemon.
#[test]
fn inherited_sockets_survive_a_stop_and_serve_the_next_daemon() {
    // Kept open by the test, as systemd keeps its sockets across runs of the service.
    let a = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];

    let mut first = Daemon::start_cmd(activated_two(stdio_of(&a), stdio_of(&b), &[]), 2);
    for addr in addrs {
        assert_one_trailing_nul(&fetch_policy(addr));
    }
    let stopped = first.stop();
    assert_counters(&stopped, &[("served", 2)]);

    // Between the runs: the sockets still listen (the connect succeeds and waits in
    // the queue), and the request waits with it.
    let mut waiting: Vec<_> = addrs
        .iter()
        .map(|&addr| {
            let mut s = connect(addr);
            s.write_all(b"<policy-file-request/>\0")
                .expect("send request");
            s
        })
        .collect();

    let mut second = Daemon::start_cmd(activated_two(stdio_of(&a), stdio_of(&b), &[]), 2);
    assert_eq!(
        second.listen_addrs(),
        addrs.to_vec(),
        "stderr:\n{}",
        second.stderr()
    );
    for s in &mut waiting {
        let reply = read_to_end(s);
        assert_served_then_eof(&reply);
    }
    for addr in addrs {
        assert_one_trailing_nul(&fetch_policy(addr));
    }
    let stopped = second.stop();
    assert_counters(&stopped, &[("served", 4)]);

    // A third run, with one socket, after a stop with the other socket still queued.
    let mut third = Daemon::start_cmd(activated(stdio_of(&a), &[]), 1);
    assert_one_trailing_nul(&fetch_policy(addrs[0]));
    third.stop();
}
