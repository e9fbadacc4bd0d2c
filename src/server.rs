//! Bind, the accept loop (one named thread per listener), dispatch of each accepted
//! connection to a fixed `threadpool` with `pool.execute`, and shutdown: a flag, a
//! wake-up of every accept thread, then `pool.join()`. One addition to the card: on
//! Unix each accept thread waits for its listener or the shared wake pipe
//! (`sys::Wake`) before `accept()`, so a stop never touches a listening socket, and an
//! inherited one (systemd's) stays usable by the next daemon. What a worker does with its
//! connection is in `conn.rs`; on Linux, a connection whose request has not arrived yet
//! waits in the readiness gate (`gate.rs`) before it is dispatched. One tuning beyond
//! the card, kept because alone it saves over 10 % server CPU per connection
//! (docs/performance.md): the serving threads run under `SCHED_BATCH` (Linux).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use threadpool::ThreadPool;

use crate::config::Config;
use crate::conn::{self, Conn};
use crate::error::{Error, Result};
#[cfg(target_os = "linux")]
use crate::gate::Gate;
use crate::stats::{Ending, Snapshot, Stats};
use crate::sys;

/// Stack size of each worker: a worker needs a few kilobytes; small stacks keep the
/// resident size low with many workers.
const WORKER_STACK: usize = 128 * 1024;
/// Pause after `accept` fails for lack of descriptors, doubled up to the maximum.
const FD_BACKOFF_MIN: Duration = Duration::from_millis(5);
const FD_BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Held connections the gate closes (oldest first) each time `accept` runs out of
/// descriptors.
#[cfg(target_os = "linux")]
const EVICT_ON_FD_EXHAUSTION: usize = 64;
/// Descriptors kept out of the gate's share (listeners, logs, stdio, epoll...), at most
/// half the limit.
#[cfg(target_os = "linux")]
const RESERVED_FDS: u64 = 64;
/// Gate size when the descriptor limit is unknown.
#[cfg(target_os = "linux")]
const DEFAULT_GATE: usize = 4096;
/// Rate limit of the repeated warnings of the accept loop.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// State shared by the accept threads, the workers and the [`Handle`].
struct Shared {
    policy: RwLock<Arc<[u8]>>,
    timeout: Duration,
    max_pending: usize,
    stopping: AtomicBool,
    /// Wakes the accept threads at a stop.
    wake: sys::Wake,
    stats: Arc<Stats>,
}

impl Shared {
    fn policy(&self) -> Arc<[u8]> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// What an accept thread needs: the pool, the shared state and (Linux) the gate.
struct Accept {
    pool: ThreadPool,
    shared: Arc<Shared>,
    #[cfg(target_os = "linux")]
    gate: Option<Arc<Gate>>,
}

/// A bound server, ready to [`run`](Server::run).
pub(crate) struct Server {
    listeners: Vec<TcpListener>,
    workers: usize,
    shared: Arc<Shared>,
}

/// Controls a running server from another thread (signal handler, reloader).
#[derive(Clone)]
pub(crate) struct Handle {
    shared: Arc<Shared>,
    listeners: Arc<Vec<TcpListener>>,
}

/// The addresses to listen on: the `--bind` list, or every IPv4 and IPv6 address.
pub(crate) fn bind_addresses(config: &Config) -> Vec<SocketAddr> {
    let ips: Vec<IpAddr> = if config.binds.is_empty() {
        vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()]
    } else {
        config.binds.clone()
    };
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, config.port))
        .collect()
}

/// Has the kernel keep clients that send nothing from `accept()` for up to `timeout`
/// (Linux: `TCP_DEFER_ACCEPT`), set before the daemon says it is listening.
fn defer_silent_clients(listeners: &[TcpListener], timeout: Duration) {
    for l in listeners {
        if let Err(e) = sys::defer_accept(l, timeout) {
            debug!("TCP_DEFER_ACCEPT not set on {}: {e}", local(l));
        }
    }
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
    pub(crate) fn bind(config: &Config, policy: Arc<[u8]>) -> Result<Server> {
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
        Server::from_listeners(listeners, config, policy)
    }

    /// Serves on listeners made elsewhere (inherited sockets, tests).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the wake pipe cannot be made (out of descriptors).
    pub(crate) fn from_listeners(
        listeners: Vec<TcpListener>,
        config: &Config,
        policy: Arc<[u8]>,
    ) -> Result<Server> {
        defer_silent_clients(&listeners, config.timeout);
        let wake = sys::Wake::new()
            .map_err(|e| Error::io("cannot make the pipe that wakes the accept threads", e))?;
        Ok(Server {
            listeners,
            workers: config.workers,
            shared: Arc::new(Shared {
                policy: RwLock::new(policy),
                timeout: config.timeout,
                max_pending: config.max_pending,
                stopping: AtomicBool::new(false),
                wake,
                stats: Arc::new(Stats::default()),
            }),
        })
    }

    /// The addresses actually bound (with the port the OS chose for port 0).
    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
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
    pub(crate) fn handle(&self) -> Result<Handle> {
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
    pub(crate) fn run(self) -> Result<Snapshot> {
        // Before the pool, accept and gate threads are made: they inherit it. Alone it
        // saves 22-32 % server CPU per connection (docs/performance.md): a woken worker
        // waits for the accept thread's time slice instead of preempting it.
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
        #[cfg(target_os = "linux")]
        let (gate, gate_thread) = start_gate(&pool, &self.shared);
        let accept = Arc::new(Accept {
            pool: pool.clone(),
            shared: Arc::clone(&self.shared),
            #[cfg(target_os = "linux")]
            gate: gate.clone(),
        });
        let mut threads = Vec::new();
        for listener in self.listeners {
            let name = match listener.local_addr() {
                Ok(a) => format!("accept-{a}"),
                Err(_) => "accept".to_string(),
            };
            let accept = Arc::clone(&accept);
            let t = thread::Builder::new()
                .name(name)
                .spawn(move || accept_loop(&listener, &accept))
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
        // Held connections are dispatched or expire within their deadline, then every
        // queued and running connection is finished by its worker.
        #[cfg(target_os = "linux")]
        if let (Some(gate), Some(thread)) = (gate, gate_thread) {
            gate.stop();
            let _ = thread.join();
        }
        pool.join();
        if pool.panic_count() > 0 {
            warn!(
                "{} workers panicked while serving a connection",
                pool.panic_count()
            );
        }
        Ok(self.shared.stats.snapshot())
    }
}

/// Starts the readiness gate, sized to most of the descriptors we may open; without it
/// (epoll unavailable) workers wait for slow clients themselves.
#[cfg(target_os = "linux")]
fn start_gate(
    pool: &ThreadPool,
    shared: &Arc<Shared>,
) -> (Option<Arc<Gate>>, Option<thread::JoinHandle<()>>) {
    let capacity = match sys::open_files_limit() {
        Some(limit) => {
            let reserved = RESERVED_FDS.min(limit / 2);
            usize::try_from(limit.saturating_sub(reserved) * 3 / 4).unwrap_or(usize::MAX)
        }
        None => DEFAULT_GATE,
    };
    let (pool, to_pool) = (pool.clone(), Arc::clone(shared));
    let dispatch = move |conn| dispatch(&pool, &to_pool, conn);
    match Gate::start(capacity, Arc::clone(&shared.stats), dispatch) {
        Ok((gate, thread)) => (Some(gate), Some(thread)),
        Err(e) => {
            warn!("no readiness gate ({e}): slow clients will occupy workers");
            (None, None)
        }
    }
}

/// Raises the soft open-files limit to the hard one, and logs the result. Call it at
/// start, before binding.
pub(crate) fn raise_open_files_limit() {
    match sys::raise_open_files_limit() {
        Some((old, new)) if new > old => info!("raised the open-files limit from {old} to {new}"),
        Some((_, limit)) => info!("open-files limit: {limit}"),
        None => {}
    }
}

impl Handle {
    /// Stops accepting; [`Server::run`] returns once the connections in flight are done.
    pub(crate) fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.wake(&self.listeners);
    }

    /// Replaces the served bytes; connections already answering keep the old ones.
    pub(crate) fn set_policy(&self, bytes: Arc<[u8]>) {
        match self.shared.policy.write() {
            Ok(mut p) => *p = bytes,
            Err(poisoned) => *poisoned.into_inner() = bytes,
        }
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> Snapshot {
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

fn accept_loop(listener: &TcpListener, accept: &Accept) {
    let shared = &accept.shared;
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
        // A stop leaves the connections still queued to the listener's next owner
        // (systemd passes an inherited socket on to the next daemon).
        if shared.stopping.load(Ordering::SeqCst)
            || shared.wake.wait_accept(listener) == sys::AcceptReady::Stop
        {
            break;
        }
        let accepted = listener.accept();
        // Without the wake pipe (Windows) a stop connects to the listener: that
        // connection is the wake-up, not a client. A connection accepted on Unix is
        // served even if the stop came meanwhile.
        if cfg!(not(unix)) && shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                backoff = FD_BACKOFF_MIN;
                admit(accept, stream, peer, &mut may_warn);
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
                if let Some(gate) = &accept.gate {
                    gate.evict(EVICT_ON_FD_EXHAUSTION);
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

/// Hands a fresh connection to the pool, unless `--max-pending` already wait for a
/// worker; on Linux one whose request has not arrived yet waits in the gate first.
fn admit(
    accept: &Accept,
    stream: TcpStream,
    peer: SocketAddr,
    may_warn: &mut impl FnMut() -> bool,
) {
    let shared = &accept.shared;
    if accept.pool.queued_count() >= shared.max_pending {
        shared.stats.count(Ending::Overflow);
        if may_warn() {
            warn!(
                "{} connections already wait for a worker (--max-pending): closing new ones",
                shared.max_pending
            );
        }
        debug!("{peer} overflow: closed at once");
        return; // dropping the stream closes it
    }
    let conn = Conn::new(stream, peer, shared.timeout);
    #[cfg(target_os = "linux")]
    let conn = match &accept.gate {
        Some(gate) => match gate.admit(conn) {
            Some(ready) => ready,
            None => return, // held until its request has arrived
        },
        None => conn,
    };
    dispatch(&accept.pool, shared, conn);
}

/// Gives `conn` to a pool worker, which owns it from here to its close.
fn dispatch(pool: &ThreadPool, shared: &Arc<Shared>, conn: Conn) {
    let shared = Arc::clone(shared);
    pool.execute(move || conn::serve(conn, &shared.policy(), &shared.stats));
}

/// The whole life of one connection made elsewhere (inetd's socket on stdin), within
/// `timeout`, as a pool worker would serve it; the outcome is counted in `stats`.
pub(crate) fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    policy: &[u8],
    stats: &Stats,
) {
    conn::serve(Conn::new(stream, peer, timeout), policy, stats);
}
