#!/usr/bin/env python3
"""Side-by-side A/B of policy servers, for work on performance.

    scripts/ab.py [-r ROUNDS] [-d SECS] [-c 16,64,256] [-m rate|idle|trickle] [-k HELD]
                  NAME='CMD with {port}' NAME='...' ...

Each round starts every server in turn (in its own session, as the shared harness
does with `setsid`), on a free 127.0.0.1 port put in place of {port} (checked to be
the server's own listener, another port tried if not), runs
target/release/flashpolicy-bench at each concurrency, stops it (SIGTERM to its
session, SIGKILL after 5 s), and goes on to the next: rounds are interleaved, so a
busy spell of the machine hits every server alike. Prints the median over the rounds
of conn/s, p99, the server's CPU per connection (utime + stime of every process in
its session), its context switches per connection (voluntary + involuntary, every
thread), the client's CPU per connection, and the peak RSS (largest VmHWM).

Example (two builds and nginx's peer from the shared harness):
    scripts/ab.py -r 5 A='/tmp/old/flashpolicyd -p {port} -b 127.0.0.1 -q' \\
        B='target/release/flashpolicyd -p {port} -b 127.0.0.1 -q'

AB_CLIENT=PATH uses another flashpolicy-bench binary. Loopback only; every step has
a deadline.
"""

import argparse
import glob
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

# The load client: AB_CLIENT, or the release build of this checkout.
CLIENT = os.environ.get("AB_CLIENT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "flashpolicy-bench")


def free_port():
    """A port that was free a moment ago; start() copes with losing it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_inodes(port):
    """Socket inodes of every TCP listener on `port` (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in read(table).splitlines()[1:]:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def owns_listener(pids, port):
    """True when one of `pids` holds a listener on `port`, so that the server measured
    is the one started, not a stranger that took the port first."""
    if not os.path.exists("/proc/net/tcp"):
        return True
    targets = {"socket:[%s]" % i for i in listening_inodes(port)}
    for pid in pids:
        for fd in glob.glob("/proc/%d/fd/*" % pid):
            try:
                if os.readlink(fd) in targets:
                    return True
            except OSError:
                pass
    return False


def start(cmd, tries=5):
    """Starts `cmd` on a free port in its own session; returns (process, port). A port
    taken by someone else before the server bound it costs one more try."""
    for _ in range(tries):
        port = free_port()
        proc = subprocess.Popen(["sh", "-c", "exec " + cmd.replace("{port}", str(port))],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        if wait_listening(port, proc) and owns_listener(session_pids(proc.pid), port):
            return proc, port
        stop(proc)
    return None, None


def session_pids(sid):
    out = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out] or [sid]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_ticks(pid):
    fields = read("/proc/%d/stat" % pid).rsplit(")", 1)[-1].split()
    return int(fields[11]) + int(fields[12]) if len(fields) > 12 else 0


def switches(pid):
    n = 0
    for status in glob.glob("/proc/%d/task/*/status" % pid):
        for line in read(status).splitlines():
            if "ctxt_switches" in line:
                n += int(line.split()[1])
    return n


def hwm_kb(pid):
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_listening(port, proc, secs=10):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-d", "--secs", type=int, default=3)
    ap.add_argument("-c", "--conc", default="16,64,256")
    ap.add_argument("-m", "--mode", default="rate", choices=["rate", "idle", "trickle"])
    ap.add_argument("-k", "--held", type=int, default=2000)
    ap.add_argument("servers", nargs="+", metavar="NAME=CMD")
    a = ap.parse_args()
    servers = []
    for s in a.servers:
        name, sep, cmd = s.partition("=")
        if not sep or "{port}" not in cmd:
            sys.exit("ab.py: %r: want NAME='command with {port}'" % s)
        servers.append((name, cmd))
    if not os.access(CLIENT, os.X_OK):
        sys.exit("ab.py: %s not found: run `make release` first" % CLIENT)
    results = {}
    for r in range(a.rounds):
        for name, cmd in servers:
            proc, port = start(cmd)
            if proc is None:
                sys.exit("ab.py: %s did not listen on a free 127.0.0.1 port within 10 s (5 tries)" % name)
            try:
                for c in a.conc.split(","):
                    pids = session_pids(proc.pid)
                    t0 = sum(cpu_ticks(p) for p in pids)
                    x0 = sum(switches(p) for p in pids)
                    args = [CLIENT, a.mode, "-p", str(port), "-c", c, "-d", str(a.secs)]
                    if a.mode != "rate":
                        args += ["-k", str(a.held)]
                    out = subprocess.run(args, capture_output=True, text=True, timeout=a.secs + 60).stdout
                    t1 = sum(cpu_ticks(p) for p in pids)
                    x1 = sum(switches(p) for p in pids)
                    line = [l for l in out.splitlines() if l.startswith("RESULT ")]
                    if not line:
                        print("ab.py: %s c=%s: no RESULT line" % (name, c), file=sys.stderr)
                        continue
                    kv = dict(f.split("=", 1) for f in line[0].split()[1:] if "=" in f)
                    ok = max(int(kv["ok"]), 1)
                    results.setdefault((name, int(c)), []).append((
                        float(kv["rate"]), int(kv["p99_us"]),
                        (t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / ok,
                        (x1 - x0) / ok,
                        float(kv["client_cpu_s"]) * 1e6 / ok,
                        max(hwm_kb(p) for p in pids),
                    ))
                    print("ab.py: round %d %s c=%s done" % (r + 1, name, c), file=sys.stderr)
            finally:
                stop(proc)
    print("| server | clients | conn/s | p99 | server CPU/conn | switches/conn | client CPU/conn | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, c), xs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = lambda i: statistics.median(x[i] for x in xs)
        print("| %s | %d | %.0f | %.2f ms | %.1f µs | %.2f | %.1f µs | %.1f MB |" % (
            name, c, med(0), med(1) / 1000, med(2), med(3), med(4), max(x[5] for x in xs) / 1024))
    print("\nmedians of %d interleaved rounds of %d s (%s mode)" % (a.rounds, a.secs, a.mode))


if __name__ == "__main__":
    main()
