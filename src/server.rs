//! Bind, accept loop (one named thread per listener), dispatch to a fixed pool of
//! workers (each pool thread takes connections from one queue), and shutdown: a flag, a
//! wake-up of every blocked `accept()`, a wait for the connections in flight, closing
//! the queue, then `pool.join()`. What one connection does is in `conn.rs`;
//! on Linux, connections that must wait for their client wait in `waiting.rs`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::Config;
use crate::conn::{self, Conn, InFlight};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::stats::{Snapshot, Stats};
use crate::sys;

/// Stack size of each worker: a worker needs a few kilobytes; small stacks keep the
/// resident size low with many workers.
const WORKER_STACK: usize = 128 * 1024;
/// Pause after `accept` fails for lack of descriptors, doubled up to the maximum.
const FD_BACKOFF_MIN: Duration = Duration::from_millis(5);
const FD_BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Waiting connections closed (oldest first) each time `accept` runs out of descriptors.
#[cfg(target_os = "linux")]
const EVICT_ON_FD_EXHAUSTION: usize = 64;
/// Descriptors kept out of the waiting room's share (listeners, logs, stdio, epoll...),
/// at most half the limit.
const RESERVED_FDS: u64 = 64;
/// Waiting-room size when the descriptor limit is unknown.
const DEFAULT_ROOM: usize = 4096;
/// Rate limit of the repeated warnings of the accept loop.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// Extra time shutdown grants beyond the connection deadline before giving up waiting.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// State shared by the accept threads, the workers and the [`Handle`].
struct Shared {
    policy: RwLock<Arc<[u8]>>,
    timeout: Duration,
    max_pending: usize,
    pending: AtomicUsize,
    stopping: AtomicBool,
    stats: Stats,
    flight: Arc<InFlight>,
}

impl Shared {
    fn policy(&self) -> Arc<[u8]> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// One unit of work for a worker.
enum Job {
    /// A fresh connection, still counted in `pending`.
    Fresh(Conn),
    /// A connection whose request the waiting room has read.
    #[cfg(target_os = "linux")]
    Decided(Conn, crate::request::Outcome),
}

/// What a worker needs: the shared state, the queue it takes jobs from, and (Linux) the
/// waiting room.
struct Ctx {
    shared: Arc<Shared>,
    queue: Queue<Job>,
    #[cfg(target_os = "linux")]
    parker: Option<crate::waiting::Parker>,
    /// How long the kernel keeps a silent connection from `accept()` (`TCP_DEFER_ACCEPT`
    /// on every listener), if it does.
    #[cfg(target_os = "linux")]
    deferral: Option<Duration>,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<TcpListener>,
    workers: usize,
    /// See [`defer_silent_clients`].
    deferral: Option<Duration>,
    shared: Arc<Shared>,
}

/// Controls a running server from another thread (signal handler, reloader).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    listeners: Arc<Vec<TcpListener>>,
}

/// The addresses to listen on: the `--bind` list, or every IPv4 and IPv6 address.
pub fn bind_addresses(config: &Config) -> Vec<SocketAddr> {
    let ips: Vec<IpAddr> = if config.binds.is_empty() {
        vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()]
    } else {
        config.binds.clone()
    };
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, config.port))
        .collect()
}

/// Has the kernel keep clients that send nothing from `accept()` for a while (Linux:
/// `TCP_DEFER_ACCEPT`), set before the daemon says it is listening. Returns that while,
/// which then counts against such a client's deadline, if every listener has it.
fn defer_silent_clients(listeners: &[TcpListener], timeout: Duration) -> Option<Duration> {
    let mut deferral = Some(Duration::ZERO);
    for l in listeners {
        match sys::defer_accept(l, timeout) {
            Ok(d) => deferral = deferral.map(|_| d),
            Err(e) => {
                debug!("TCP_DEFER_ACCEPT not set on {}: {e}", local(l));
                deferral = None;
            }
        }
    }
    deferral
}

impl Server {
    /// Binds every listen address of `config` and prepares to serve `policy` (the
    /// exact bytes, ending in one NUL).
    ///
    /// With the default binds, a host without IPv6 is served on IPv4 alone.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] naming the address and port that failed.
    pub fn bind(config: &Config, policy: Arc<[u8]>) -> Result<Server> {
        let mut listeners = Vec::new();
        for addr in bind_addresses(config) {
            match sys::listen(addr) {
                Ok(l) => listeners.push(l),
                Err(e) if config.binds.is_empty() && addr.is_ipv6() && no_ipv6(&e) => {
                    info!(
                        "no IPv6 on this host ({}): listening on IPv4 only",
                        crate::error::describe_io(&e)
                    );
                }
                Err(source) => return Err(Error::Bind { addr, source }),
            }
        }
        Ok(Server::from_listeners(listeners, config, policy))
    }

    /// Serves on listeners made elsewhere (inherited sockets, tests).
    pub fn from_listeners(
        listeners: Vec<TcpListener>,
        config: &Config,
        policy: Arc<[u8]>,
    ) -> Server {
        let deferral = defer_silent_clients(&listeners, config.timeout);
        Server {
            listeners,
            workers: config.workers,
            deferral,
            shared: Arc::new(Shared {
                policy: RwLock::new(policy),
                timeout: config.timeout,
                max_pending: config.max_pending,
                pending: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                stats: Stats::default(),
                flight: Arc::new(InFlight::default()),
            }),
        }
    }

    /// The addresses actually bound (with the port the OS chose for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// A handle to stop the server or swap its policy from another thread.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a listening socket cannot be duplicated.
    pub fn handle(&self) -> Result<Handle> {
        let mut clones = Vec::with_capacity(self.listeners.len());
        for l in &self.listeners {
            clones.push(
                l.try_clone()
                    .map_err(|e| Error::io("cannot duplicate a listening socket", e))?,
            );
        }
        Ok(Handle {
            shared: Arc::clone(&self.shared),
            listeners: Arc::new(clones),
        })
    }

    /// Serves until [`Handle::shutdown`] is called, then waits for the connections in
    /// flight (each bounded by its deadline) and returns the final counters.
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if a thread cannot be started.
    pub fn run(self) -> Result<Snapshot> {
        sys::single_malloc_arena();
        // Before the pool, accept and waiting-room threads are made: they inherit it.
        match sys::batch_scheduling() {
            Ok(sys::Scheduling::Batch) => debug!("serving threads run under SCHED_BATCH"),
            Ok(sys::Scheduling::Kept) => debug!("scheduling policy left as it is"),
            Err(e) => debug!("cannot set SCHED_BATCH: {e}"),
        }
        let pool = threadpool::Builder::new()
            .num_threads(self.workers)
            .thread_name("policy-worker".into())
            .thread_stack_size(WORKER_STACK)
            .build();
        let room_size = open_files_budget();
        let deferral = self.deferral;
        #[cfg(target_os = "linux")]
        let (ctx, room) = start_room(&self.shared, self.workers, room_size, deferral)?;
        #[cfg(not(target_os = "linux"))]
        let ctx = {
            let _ = (room_size, deferral);
            Arc::new(Ctx {
                shared: Arc::clone(&self.shared),
                queue: Queue::new(self.workers, false),
            })
        };
        for me in 0..self.workers {
            let ctx = Arc::clone(&ctx);
            pool.execute(move || worker_loop(&ctx, me));
        }
        let mut threads = Vec::new();
        for listener in self.listeners {
            let name = match listener.local_addr() {
                Ok(a) => format!("accept-{a}"),
                Err(_) => "accept".to_string(),
            };
            let ctx = Arc::clone(&ctx);
            let t = thread::Builder::new()
                .name(name)
                .spawn(move || accept_loop(&listener, &ctx))
                .map_err(|e| Error::Setup(format!("cannot start an accept thread: {e}")));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.shared.stopping.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        for t in threads {
            let _ = t.join();
        }
        let limit = self.shared.timeout + SHUTDOWN_SLACK;
        if !self.shared.flight.wait_idle(limit) {
            warn!(
                "{} connections still open {limit:?} after the stop: closing them",
                self.shared.flight.count()
            );
        }
        #[cfg(target_os = "linux")]
        {
            if let Some(p) = &ctx.parker {
                p.stop();
            }
            if let Some(room) = room {
                let _ = room.join();
            }
        }
        ctx.queue.close();
        pool.join();
        Ok(self.shared.stats.snapshot())
    }
}

/// How many connections may wait in the waiting room: most of the descriptors we may
/// open, the rest kept for accepting.
fn open_files_budget() -> usize {
    match sys::open_files_limit() {
        Some(limit) => {
            let reserved = RESERVED_FDS.min(limit / 2);
            usize::try_from(limit.saturating_sub(reserved) * 3 / 4)
                .unwrap_or(usize::MAX)
                .max(1)
        }
        None => DEFAULT_ROOM,
    }
}

/// Raises the soft open-files limit to the hard one, and logs the result. Call it at
/// start, before binding.
pub fn raise_open_files_limit() {
    match sys::raise_open_files_limit() {
        Some((old, new)) if new > old => info!("raised the open-files limit from {old} to {new}"),
        Some((_, limit)) => info!("open-files limit: {limit}"),
        None => {}
    }
}

/// Starts the waiting room thread; without it (epoll unavailable) workers fall back to
/// blocking reads.
#[cfg(target_os = "linux")]
fn start_room(
    shared: &Arc<Shared>,
    workers: usize,
    size: usize,
    deferral: Option<Duration>,
) -> Result<(Arc<Ctx>, Option<thread::JoinHandle<()>>)> {
    let (parker, room) = match crate::waiting::channel(size) {
        Ok(pair) => pair,
        Err(e) => {
            warn!("no waiting room ({e}): slow clients will occupy workers");
            return Ok((Ctx::new(shared, workers, None, deferral), None));
        }
    };
    let ctx = Ctx::new(shared, workers, Some(parker), deferral);
    let room_ctx = Arc::clone(&ctx);
    let handle = thread::Builder::new()
        .name("waiting-room".into())
        .spawn(move || {
            let stats = &room_ctx.shared.stats;
            let run = room.run(stats, |conn, outcome| dispatch(&room_ctx, conn, outcome));
            if let Err(e) = run {
                log::error!("waiting room failed: {e}");
            }
        })
        .map_err(|e| Error::Setup(format!("cannot start the waiting-room thread: {e}")))?;
    Ok((ctx, Some(handle)))
}

/// Queues a connection whose request the waiting room has read, for a worker to answer.
#[cfg(target_os = "linux")]
fn dispatch(ctx: &Arc<Ctx>, conn: Conn, outcome: crate::request::Outcome) {
    ctx.queue.push(Job::Decided(conn, outcome));
}

/// What each pool thread runs: jobs from the queue until it is closed. A panic while
/// serving one connection (none is known) ends that connection, not the worker.
fn worker_loop(ctx: &Arc<Ctx>, me: usize) {
    while let Some(job) = ctx.queue.pop(me) {
        let run = std::panic::AssertUnwindSafe(|| run_job(ctx, job));
        if std::panic::catch_unwind(run).is_err() {
            log::error!("a worker panicked while serving a connection; it goes on");
        }
    }
}

fn run_job(ctx: &Arc<Ctx>, job: Job) {
    match job {
        Job::Fresh(conn) => {
            ctx.shared.pending.fetch_sub(1, Ordering::SeqCst);
            work(ctx, conn);
        }
        #[cfg(target_os = "linux")]
        Job::Decided(conn, outcome) => {
            let policy = ctx.shared.policy();
            let next = conn::decide(conn, outcome, &policy, &ctx.shared.stats);
            ctx.wait(next);
        }
    }
}

/// A worker's turn with a connection: what has arrived is read and answered at once;
/// on Linux a connection that must wait for its client, its time silent in the kernel
/// counted, goes to the waiting room (or, without one, is waited for here).
fn work(ctx: &Arc<Ctx>, conn: Conn) {
    let policy = ctx.shared.policy();
    let stats = &ctx.shared.stats;
    #[cfg(target_os = "linux")]
    {
        let next = match (conn::advance(conn, &policy, stats), ctx.deferral) {
            (conn::Next::Wait(conn), Some(deferral)) => {
                conn::charge_deferral(conn, deferral, stats)
            }
            (next, _) => next,
        };
        ctx.wait(next);
    }
    #[cfg(not(target_os = "linux"))]
    conn::serve_blocking(conn, &policy, stats);
}

impl Ctx {
    /// A worker's context; its queue is lazy exactly when there is a waiting room.
    #[cfg(target_os = "linux")]
    fn new(
        shared: &Arc<Shared>,
        workers: usize,
        parker: Option<crate::waiting::Parker>,
        deferral: Option<Duration>,
    ) -> Arc<Ctx> {
        // With the waiting room, workers never wait for a client: an awake one comes
        // back for the next job, so the queue need not wake another (a lazy queue).
        let lazy = parker.is_some();
        Arc::new(Ctx {
            shared: Arc::clone(shared),
            queue: Queue::new(workers, lazy),
            parker,
            deferral,
        })
    }

    /// Parks a connection that must wait for its client in the waiting room; if the room
    /// is gone, waits for it here with blocking reads.
    #[cfg(target_os = "linux")]
    fn wait(&self, next: conn::Next) {
        let conn::Next::Wait(conn) = next else { return };
        let conn = match &self.parker {
            Some(parker) => match parker.park(conn) {
                Ok(()) => return,
                Err(conn) => conn,
            },
            None => conn,
        };
        let policy = self.shared.policy();
        self.queue.blocking(|| match conn.phase {
            conn::Phase::Request => conn::serve_blocking(conn, &policy, &self.shared.stats),
            conn::Phase::Linger { .. } => conn::linger_blocking(conn),
        });
    }
}

impl Handle {
    /// Stops accepting; [`Server::run`] returns once the connections in flight are done.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for l in self.listeners.iter() {
            sys::wake_accept(l);
        }
    }

    /// Replaces the served bytes; connections already answering keep the old ones.
    pub fn set_policy(&self, bytes: Arc<[u8]>) {
        match self.shared.policy.write() {
            Ok(mut p) => *p = bytes,
            Err(poisoned) => *poisoned.into_inner() = bytes,
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::libc;
        matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::AddrNotAvailable
    }
}

fn accept_loop(listener: &TcpListener, ctx: &Arc<Ctx>) {
    let shared = &ctx.shared;
    let mut backoff = FD_BACKOFF_MIN;
    let mut last_warn: Option<Instant> = None;
    let mut may_warn = move || {
        let now = Instant::now();
        let ok = last_warn.map_or(true, |t| now.duration_since(t) >= WARN_EVERY);
        if ok {
            last_warn = Some(now);
        }
        ok
    };
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                backoff = FD_BACKOFF_MIN;
                admit(ctx, stream, peer, &mut may_warn);
            }
            Err(e) if sys::is_resource_exhaustion(&e) => {
                Stats::bump(&shared.stats.fd_exhausted);
                if may_warn() {
                    warn!(
                        "cannot accept on {}: {} (out of file descriptors?); backing off",
                        local(listener),
                        crate::error::describe_io(&e)
                    );
                }
                #[cfg(target_os = "linux")]
                if let Some(p) = &ctx.parker {
                    p.evict(EVICT_ON_FD_EXHAUSTION);
                }
                thread::sleep(backoff);
                backoff = (backoff * 2).min(FD_BACKOFF_MAX);
            }
            Err(e) if transient_accept_error(&e) => {}
            Err(e) => {
                if may_warn() {
                    warn!(
                        "accept on {} failed: {}",
                        local(listener),
                        crate::error::describe_io(&e)
                    );
                }
                thread::sleep(FD_BACKOFF_MAX);
            }
        }
    }
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}

fn transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Hands a fresh connection to the pool, unless `--max-pending` already wait.
fn admit(ctx: &Arc<Ctx>, stream: TcpStream, peer: SocketAddr, may_warn: &mut impl FnMut() -> bool) {
    let shared = &ctx.shared;
    if shared.pending.fetch_add(1, Ordering::SeqCst) >= shared.max_pending {
        shared.pending.fetch_sub(1, Ordering::SeqCst);
        Stats::bump(&shared.stats.overflow);
        if may_warn() {
            warn!(
                "{} connections already wait for a worker (--max-pending): closing new ones",
                shared.max_pending
            );
        }
        debug!("{peer} overflow: closed at once");
        return; // dropping the stream closes it
    }
    let conn = Conn::new(stream, peer, shared.timeout, Some(&shared.flight));
    ctx.queue.push(Job::Fresh(conn));
}

/// The whole life of one connection made elsewhere (inetd's socket on stdin): read the
/// request, send `policy`, close cleanly, everything before `deadline`, with blocking
/// reads; the outcome is logged at debug level and counted in `stats`.
pub fn serve_connection(
    stream: &TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    policy: &[u8],
    stats: &Stats,
) {
    let stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            Stats::bump(&stats.io_errors);
            debug!("{peer} io error: {e}");
            return;
        }
    };
    let timeout = deadline.saturating_duration_since(Instant::now());
    conn::serve_blocking(Conn::new(stream, peer, timeout, None), policy, stats);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A worker's context as `start_room` makes it when epoll is not available: no
    /// waiting room, blocking workers.
    fn ctx_without_room(timeout: Duration, deferral: Option<Duration>) -> Arc<Ctx> {
        let config = Config {
            timeout,
            ..Config::default()
        };
        let policy = Arc::from(&b"<cross-domain-policy/>\0"[..]);
        let shared = Server::from_listeners(Vec::new(), &config, policy).shared;
        Ctx::new(&shared, 1, None, deferral)
    }

    fn loopback_listener() -> (TcpListener, SocketAddr) {
        let l = sys::listen("127.0.0.1:0".parse().expect("address")).expect("listen");
        let addr = l.local_addr().expect("local address");
        (l, addr)
    }

    #[test]
    fn without_the_waiting_room_a_request_is_answered() {
        let (listener, addr) = loopback_listener();
        let ctx = ctx_without_room(Duration::from_secs(5), None);
        let mut client = TcpStream::connect(addr).expect("connect");
        client.write_all(b"<policy-file-request/>\0").expect("send");
        let (stream, peer) = listener.accept().expect("accept");
        work(&ctx, Conn::new(stream, peer, ctx.shared.timeout, None));
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("reply");
        assert_eq!(got, b"<cross-domain-policy/>\0");
        assert_eq!(ctx.shared.stats.snapshot().served, 1);
    }

    /// With `--timeout 3` the kernel keeps a silent client 3 s (`TCP_DEFER_ACCEPT`):
    /// that is its whole time, so a worker without the waiting room must not wait for
    /// it 3 s more.
    #[test]
    fn without_the_waiting_room_a_silent_client_is_charged_its_time_in_the_kernel() {
        let (listener, addr) = loopback_listener();
        let timeout = Duration::from_secs(3);
        let deferral = sys::defer_accept(&listener, timeout).expect("TCP_DEFER_ACCEPT");
        assert_eq!(deferral, timeout);
        let ctx = ctx_without_room(timeout, Some(deferral));
        let _client = TcpStream::connect(addr).expect("connect");
        let (stream, peer) = listener.accept().expect("accept");
        let start = Instant::now();
        work(&ctx, Conn::new(stream, peer, timeout, None));
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "a worker waited {waited:?} more for a client silent for {deferral:?}"
        );
        assert_eq!(ctx.shared.stats.snapshot().empty, 1, "silent: empty");
    }
}
