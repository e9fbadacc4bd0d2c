//! One run of the load client: resolve the target, open the held connections, run the
//! measuring clients until the duration or the connection budget is spent, and sum what
//! every thread counted into a [`Report`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flashpolicyd::{Error, Result};

use crate::cli::{Config, Mode};
use crate::client::{self, Kind};
use crate::report::{self, Report};
use crate::{held, net};

/// Threads that open and service the held connections.
const HOLDERS: usize = 4;
/// Stack of a client thread: a transaction needs a few kilobytes.
const CLIENT_STACK: usize = 128 * 1024;
/// Stack of a holder thread.
const HOLDER_STACK: usize = 256 * 1024;
/// Pause after a failed transaction, so that instant failures (refused, out of
/// descriptors) do not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(1);
/// How often the runner samples the number of held connections open.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Slack after the measured phase before the holders give up on their own.
const HOLD_SLACK: Duration = Duration::from_secs(5);

/// Resolves `host` (a name, an IPv4 or IPv6 literal, brackets allowed) and `port`;
/// the first address wins.
///
/// # Errors
///
/// [`Error::Io`] when the name does not resolve.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let context = format!("cannot resolve {host}");
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(context.clone(), e))?
        .next()
        .ok_or_else(|| Error::io(context, std::io::ErrorKind::NotFound.into()))
}

/// Performs the run described by `config`. Bounded: clients start no transaction
/// after `duration` (or after `max_conns` in total), each transaction ends within
/// `timeout`, and the holders close everything once the clients are done.
///
/// # Errors
///
/// [`Error::Io`] when the host does not resolve. Everything that goes wrong on a
/// connection is counted in the report instead.
pub fn run(config: &Config) -> Result<Report> {
    let target = resolve(&config.host, config.port)?;
    let mut warnings = Vec::new();
    let nofile = net::raise_nofile();
    let need = config.held + config.clients + 64;
    if let Some(n) = nofile.filter(|&n| n < need as u64) {
        warnings.push(format!(
            "open-files limit {n} is below the {need} this run needs"
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(held::Shared::default());
    let hold = config.mode.holds() && config.held > 0;
    let (holders, setup) = if hold {
        start_holders(config, target, &shared, &stop)
    } else {
        (Vec::new(), Duration::ZERO)
    };
    let open_start = shared.open.load(Relaxed);

    let cpu0 = net::cpu_time();
    let start = Instant::now();
    let deadline = start + config.duration;
    let budget = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(config.clients);
    for i in 0..config.clients {
        let (cfg, budget) = (config.clone(), Arc::clone(&budget));
        let spawned = thread::Builder::new()
            .name(format!("bench-client-{i}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || client_loop(&cfg, target, i, deadline, &budget));
        match spawned {
            Ok(h) => clients.push(h),
            Err(e) => {
                warnings.push(format!("started only {i} client threads: {e}"));
                break;
            }
        }
    }
    let clients_started = clients.len();
    let (mut open_min, mut open_sum, mut samples) = (open_start, 0usize, 0usize);
    loop {
        let now = Instant::now();
        let done = !clients.is_empty() && clients.iter().all(JoinHandle::is_finished);
        if done || (clients.is_empty() && now >= deadline) {
            break;
        }
        if hold {
            let open = shared.open.load(Relaxed);
            open_min = open_min.min(open);
            open_sum += open;
            samples += 1;
        }
        // After the deadline, the clients finish their last transaction (bounded
        // by the timeout); keep polling until they have.
        let nap = deadline.saturating_duration_since(now).min(SAMPLE_EVERY);
        thread::sleep(if nap.is_zero() {
            Duration::from_millis(5)
        } else {
            nap
        });
    }
    let mut tally = report::ClientTally::default();
    for h in clients {
        match h.join() {
            Ok(t) => tally.merge(&t),
            Err(_) => warnings.push("a client thread panicked".to_string()),
        }
    }
    let elapsed = start.elapsed();
    let client_cpu = net::cpu_time().saturating_sub(cpu0);
    let open_end = shared.open.load(Relaxed);

    stop.store(true, Relaxed);
    let mut held_tally = held::Tally::default();
    for h in holders {
        match h.join() {
            Ok(t) => held_tally.merge(&t),
            Err(_) => warnings.push("a holder thread panicked".to_string()),
        }
    }
    let held = hold.then(|| report::HeldReport {
        target: config.held,
        setup,
        open_start,
        open_min,
        open_avg: open_sum.checked_div(samples).unwrap_or(open_start),
        open_end,
        opened: shared.opened.load(Relaxed),
        tally: held_tally,
    });
    Ok(Report {
        mode: config.mode,
        label: config.label.clone(),
        target,
        clients: config.clients,
        clients_started,
        duration: config.duration,
        elapsed,
        tally,
        held,
        client_cpu,
        nofile,
        warnings,
    })
}

/// Starts the holder threads and waits (bounded) until they have opened their
/// slots; returns them and the time the opening took.
fn start_holders(
    config: &Config,
    target: SocketAddr,
    shared: &Arc<held::Shared>,
    stop: &Arc<AtomicBool>,
) -> (Vec<JoinHandle<held::Tally>>, Duration) {
    let t = Instant::now();
    let setup_deadline = t + config.setup_timeout;
    let hard_deadline = setup_deadline + config.duration + config.timeout + HOLD_SLACK;
    let style = match config.mode {
        Mode::Idle => Some(held::Style::Idle),
        Mode::Trickle => Some(held::Style::Trickle),
        _ => None,
    };
    let n = config.held.min(HOLDERS);
    let per = config.held / n + usize::from(config.held % n != 0);
    let mut handles = Vec::with_capacity(n);
    for h in 0..n {
        let first = h * per;
        let plan = held::Plan {
            target,
            src_ips: config.src_ips,
            first,
            count: per.min(config.held.saturating_sub(first)),
            style,
            setup_deadline,
            hard_deadline,
        };
        let (sh, stop) = (Arc::clone(shared), Arc::clone(stop));
        let spawned = thread::Builder::new()
            .name(format!("bench-hold-{h}"))
            .stack_size(HOLDER_STACK)
            .spawn(move || held::hold(&plan, &sh, &stop));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(_) => {
                shared.setup_done.fetch_add(1, Relaxed); // do not wait for it
            }
        }
    }
    // Holders give up opening at the setup deadline; a connect in progress then
    // takes at most a few seconds more.
    let wait_until = setup_deadline + Duration::from_secs(3);
    while shared.setup_done.load(Relaxed) < n && Instant::now() < wait_until {
        thread::sleep(Duration::from_millis(20));
    }
    (handles, t.elapsed())
}

/// What transaction number `k` of a client sends: in `mix` mode, junk is spread
/// evenly at `junk` percent (with 25, every fourth transaction), and `split` percent of
/// the good requests that remain, evenly too, are sent in two writes.
fn kind_of(mode: Mode, junk: u8, split: u8, k: u64) -> Kind {
    match mode {
        Mode::Junk => Kind::Junk(k),
        Mode::Mix => match spread(k, junk) {
            Ok(n) => Kind::Junk(n),
            Err(good) if spread(good, split).is_ok() => Kind::Split,
            Err(_) => Kind::Good,
        },
        _ => Kind::Good,
    }
}

/// Item `n` of a sequence of which `percent` % are picked, evenly: `Ok(i)` if it is
/// the i-th picked item, `Err(i)` if it is the i-th of the others.
fn spread(n: u64, percent: u8) -> std::result::Result<u64, u64> {
    let p = u64::from(percent);
    let before = n * p / 100;
    if (n + 1) * p / 100 > before {
        Ok(before)
    } else {
        Err(n - before)
    }
}

fn client_loop(
    config: &Config,
    target: SocketAddr,
    index: usize,
    deadline: Instant,
    budget: &AtomicU64,
) -> report::ClientTally {
    let mut tally = report::ClientTally::default();
    let mut k: u64 = 0;
    while Instant::now() < deadline {
        if let Some(max) = config.max_conns {
            if budget.fetch_add(1, Relaxed) >= max {
                break;
            }
        }
        let kind = kind_of(config.mode, config.junk_percent, config.split_percent, k);
        let src = net::source_for(&target, config.src_ips, index as u64 + k);
        let t0 = Instant::now();
        match client::transact(target, src, kind, config.timeout) {
            Ok(done) if kind.is_request() => {
                tally.ok += 1;
                tally.split_ok += u64::from(kind == Kind::Split);
                tally.resets += u64::from(done.reset);
                tally.latency.record(t0.elapsed());
            }
            Ok(_) => tally.junk_ok += 1,
            Err(f) => {
                tally.errors[f.index()] += 1;
                thread::sleep(ERROR_PAUSE);
            }
        }
        k += 1;
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashpolicyd::request::REQUEST;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Against a well-behaved server in this process (read the request, answer, close),
    /// a run stops at its budget and times every good reply exactly once. The binary's
    /// behaviour against the daemon is tested in tests/check/bench_client.rs.
    #[test]
    fn every_good_reply_is_counted_and_timed_once() {
        const N: usize = 20;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let server = thread::spawn(move || {
            let (mut served, deadline) = (0, Instant::now() + Duration::from_secs(30));
            while served < N && Instant::now() < deadline {
                let Ok((mut s, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                };
                s.set_nonblocking(false).expect("blocking");
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut request = [0u8; REQUEST.len()];
                s.read_exact(&mut request).expect("the request");
                assert_eq!(&request, REQUEST);
                s.write_all(b"<cross-domain-policy></cross-domain-policy>\0")
                    .expect("reply");
                served += 1;
            }
        });
        let mut c = Config::new(Mode::Rate, "127.0.0.1", port);
        (c.clients, c.max_conns) = (2, Some(N as u64));
        c.duration = Duration::from_secs(60);
        let r = run(&c).expect("run");
        server.join().expect("server thread");
        assert_eq!((r.tally.ok, r.tally.error_count()), (N as u64, 0), "{r}");
        assert_eq!(r.tally.latency.count(), r.tally.ok, "{r}");
        assert_eq!(r.tally.resets, 0, "{r}");
        assert!(r.elapsed < c.duration, "the budget ended the run: {r}");
    }

    #[test]
    fn mix_spreads_junk_evenly() {
        let junk = |p, n| {
            (0..n)
                .filter(|&k| matches!(kind_of(Mode::Mix, p, 0, k), Kind::Junk(_)))
                .count()
        };
        assert_eq!(junk(25, 100), 25);
        assert_eq!(junk(0, 100), 0);
        assert_eq!(junk(100, 100), 100);
        assert_eq!(kind_of(Mode::Mix, 25, 0, 3), Kind::Junk(0));
        assert_eq!(kind_of(Mode::Mix, 25, 0, 7), Kind::Junk(1));
        assert_eq!(kind_of(Mode::Rate, 25, 20, 3), Kind::Good);
        assert_eq!(kind_of(Mode::Junk, 25, 20, 5), Kind::Junk(5));
    }

    #[test]
    fn mix_splits_a_share_of_the_good_requests() {
        let count = |junk, split, kind: Kind| {
            (0..400)
                .filter(|&k| kind_of(Mode::Mix, junk, split, k) == kind)
                .count()
        };
        // 400 transactions, 100 junk, 300 good: 20 % of those are split.
        assert_eq!(count(25, 20, Kind::Split), 60);
        assert_eq!(count(25, 20, Kind::Good), 240);
        assert_eq!(count(25, 0, Kind::Split), 0);
        assert_eq!(count(0, 100, Kind::Split), 400);
        assert_eq!(count(100, 100, Kind::Split), 0);
        // Junk keeps its place in the sequence whatever the split share.
        for k in 0..400 {
            assert_eq!(
                matches!(kind_of(Mode::Mix, 25, 20, k), Kind::Junk(_)),
                matches!(kind_of(Mode::Mix, 25, 0, k), Kind::Junk(_))
            );
        }
    }

    #[test]
    fn resolves_literals() {
        assert_eq!(
            resolve("[::1]", 843).ok(),
            Some("[::1]:843".parse().expect("literal"))
        );
        assert_eq!(
            resolve("127.0.0.1", 9).ok(),
            Some("127.0.0.1:9".parse().expect("literal"))
        );
    }
}
