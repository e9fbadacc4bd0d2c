//! Bind, accept loop (one named thread per listener), dispatch to a fixed pool of
//! workers, the per-connection exchange, and shutdown: a flag, a wake-up of every
//! blocked `accept()`, then `pool.join()`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use threadpool::ThreadPool;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::request::{self, time_left, Outcome};
use crate::stats::{Snapshot, Stats};
use crate::sys;

/// Stack size of each worker: a worker needs a few kilobytes; small stacks keep the
/// resident size low with many workers.
const WORKER_STACK: usize = 128 * 1024;
/// After the policy is sent, read and discard at most this much before closing.
const DRAIN_MAX_BYTES: usize = 16 * 1024;
/// ... and for at most this long (and never past the connection's deadline).
const DRAIN_MAX_TIME: Duration = Duration::from_secs(1);
/// Pause after `accept` fails for lack of descriptors, doubled up to the maximum.
const FD_BACKOFF_MIN: Duration = Duration::from_millis(5);
const FD_BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Rate limit of the repeated warnings of the accept loop.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// State shared by the accept threads, the workers and the [`Handle`].
struct Shared {
    policy: RwLock<Arc<[u8]>>,
    timeout: Duration,
    max_pending: usize,
    pending: AtomicUsize,
    stopping: AtomicBool,
    stats: Stats,
}

impl Shared {
    fn policy(&self) -> Arc<[u8]> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<TcpListener>,
    workers: usize,
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
        Server {
            listeners,
            workers: config.workers,
            shared: Arc::new(Shared {
                policy: RwLock::new(policy),
                timeout: config.timeout,
                max_pending: config.max_pending,
                pending: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                stats: Stats::default(),
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
    /// [`Error::Setup`] if an accept thread cannot be started.
    pub fn run(self) -> Result<Snapshot> {
        let pool = threadpool::Builder::new()
            .num_threads(self.workers)
            .thread_name("policy-worker".into())
            .thread_stack_size(WORKER_STACK)
            .build();
        let mut threads = Vec::new();
        for listener in self.listeners {
            let name = match listener.local_addr() {
                Ok(a) => format!("accept-{a}"),
                Err(_) => "accept".to_string(),
            };
            let (shared, pool) = (Arc::clone(&self.shared), pool.clone());
            let t = thread::Builder::new()
                .name(name)
                .spawn(move || accept_loop(&listener, &shared, &pool))
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
        pool.join();
        Ok(self.shared.stats.snapshot())
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

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, pool: &ThreadPool) {
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
                dispatch(stream, peer, shared, pool, &mut may_warn);
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

fn dispatch(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    pool: &ThreadPool,
    may_warn: &mut impl FnMut() -> bool,
) {
    let accepted = Instant::now();
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
    let shared = Arc::clone(shared);
    pool.execute(move || {
        shared.pending.fetch_sub(1, Ordering::SeqCst);
        let policy = shared.policy();
        serve_connection(
            &stream,
            peer,
            accepted + shared.timeout,
            &policy,
            &shared.stats,
        );
    });
}

/// The whole life of one connection: read the request, send `policy`, close cleanly,
/// everything before `deadline`; the outcome is logged at debug level and counted in
/// `stats`. Used by the pool workers, and directly for a single inherited connection
/// (inetd).
pub fn serve_connection(
    stream: &TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    policy: &[u8],
    stats: &Stats,
) {
    let accepted = Instant::now();
    match request::read_request(&mut &*stream, deadline) {
        Outcome::Request { nul, extra } => {
            match send(stream, policy, deadline) {
                Ok(()) => {
                    Stats::bump(&stats.served);
                    let _ = stream.shutdown(Shutdown::Write);
                    // A late NUL or stray bytes still in flight would turn close() into
                    // a reset that can destroy the reply: read them first.
                    if !nul || extra {
                        drain(stream, deadline);
                    }
                    debug!(
                        "{peer} served {} bytes in {:?}",
                        policy.len(),
                        accepted.elapsed()
                    );
                }
                Err(e) if request::is_timeout(&e) => {
                    Stats::bump(&stats.timed_out);
                    debug!(
                        "{peer} timed out sending the policy after {:?}",
                        accepted.elapsed()
                    );
                }
                Err(e) => {
                    Stats::bump(&stats.io_errors);
                    debug!("{peer} io error sending the policy: {e}");
                }
            }
        }
        Outcome::Junk { at, byte } => {
            Stats::bump(&stats.rejected);
            debug!(
                "{peer} rejected: byte 0x{byte:02x} at offset {at} is not <policy-file-request/>"
            );
        }
        Outcome::Closed { received } => {
            Stats::bump(&stats.rejected);
            debug!("{peer} rejected: closed after {received} of 22 request bytes");
        }
        Outcome::TimedOut { received } => {
            Stats::bump(&stats.timed_out);
            debug!(
                "{peer} timed out after {:?} with {received} of 22 request bytes",
                accepted.elapsed()
            );
        }
        Outcome::Failed(e) => {
            Stats::bump(&stats.io_errors);
            debug!("{peer} io error reading the request: {e}");
        }
    }
}

/// Writes the policy in one write (the kernel takes 10 kB at once), bounded by the
/// deadline.
fn send(mut stream: &TcpStream, policy: &[u8], deadline: Instant) -> io::Result<()> {
    let left = time_left(deadline).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
    stream.set_write_timeout(Some(left))?;
    stream.write_all(policy)
}

/// Reads and discards until EOF, bounded in bytes and time.
fn drain(mut stream: &TcpStream, deadline: Instant) {
    let until = deadline.min(Instant::now() + DRAIN_MAX_TIME);
    let mut buf = [0u8; 512];
    let mut total = 0;
    while total < DRAIN_MAX_BYTES {
        let Some(left) = time_left(until) else { return };
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
