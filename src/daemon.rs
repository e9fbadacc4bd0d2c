//! The daemon's run-time orchestration, from a validated `Config` to a clean stop, in
//! the order that matters: load the policy and look up `--user` (configuration errors
//! first), open the log, bind or take inherited sockets, write the pid file, drop
//! privileges, and only then start threads (signal handler, reloader, stats, server).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::config::{self, Config, PolicySource, Verbosity};
use crate::error::{describe_io, Error, Result};
use crate::evaluate::lightspark::served_hazards;
use crate::inherit::{self, Activation};
use crate::logging::{self, LogFile};
use crate::metrics::{PolicyFigures, Textfile};
use crate::pidfile::PidFile;
use crate::policy::{Policy, Source};
use crate::privilege::{self, Target};
use crate::reload::{Check, Reloader, Stamp};
use crate::server::{self, Server};
use crate::stats::Stats;
use crate::sys;

const PERMISSIVE: &str = "serving the embedded allow-all policy, which is permissive: SWFs \
    from any domain may connect to any port; restrict it with --file or --allow";

/// Runs the daemon (or `--check-config`, or one `--inetd` connection) until a clean stop.
///
/// Under `--inetd` nothing is ever written to stdout or stderr (they are the client's
/// socket): lines go to `--log-file` or nowhere, and the caller must report an error
/// the same way (see `cli::inetd_requested`).
///
/// # Errors
///
/// Any [`Error`]; its [`Error::exit_code`] is the process's exit status.
pub fn run(config: &Config) -> Result<()> {
    // Before any thread exists: the environment is not thread-safe.
    let activation = inherit::take_from_env();
    if config.inetd && !cfg!(unix) {
        return Err(Error::Usage("--inetd is not available on Windows".into()));
    }
    // Stamp before reading, so that a change during the first read is seen.
    let stamp = match &config.policy {
        PolicySource::File(path) => Stamp::of(path),
        _ => None,
    };
    let policy = match &config.policy {
        PolicySource::File(path) => Policy::from_file(path)?,
        PolicySource::Allow(specs, given) => Policy::from_allow(specs, given.clone()),
        PolicySource::Default => Policy::allow_all(),
    };
    let target = match &config.user {
        Some(user) => Some(privilege::lookup(user, config.group.as_deref())?),
        None => None,
    };
    if config.check_config {
        return check_config(config, &policy, target.as_ref(), &activation);
    }
    if let Some(t) = &target {
        privilege::check_can_switch(t)?;
    }
    let log_file = config.log_file.as_deref().map(LogFile::open).transpose()?;
    if config.inetd {
        // Without a log file, no logger at all: every line is dropped.
        if log_file.is_some() {
            logging::init(config.verbosity, log_file)?;
        }
        return serve_inetd(config, &policy, target.as_ref());
    }
    logging::init(config.verbosity, log_file)?;
    serve(config, &policy, stamp, activation, target.as_ref()).map_err(|e| {
        if config.log_file.is_some() {
            error!("{e}");
        }
        e
    })
}

fn serve(
    config: &Config,
    policy: &Policy,
    stamp: Option<Stamp>,
    activation: Activation,
    target: Option<&Target>,
) -> Result<()> {
    info!(
        "flashpolicyd {} starting: {}",
        env!("CARGO_PKG_VERSION"),
        policy.describe()
    );
    log_policy_warnings(policy, false);
    crate::server::raise_open_files_limit();
    let activated = matches!(activation, Activation::Sockets { .. });
    let server = listen(config, policy, activation)?;
    let ports: Vec<u16> = server.local_addrs().iter().map(|a| a.port()).collect();
    for line in served_hazards(policy, &ports) {
        warn!("policy: {line}");
    }
    info!(
        "{} workers, {:?} per connection, at most {} waiting",
        config.workers, config.timeout, config.max_pending
    );
    let pid_file = config
        .pid_file
        .as_deref()
        .map(PidFile::create)
        .transpose()?;
    let result = target
        .map_or(Ok(()), privilege::switch)
        .and_then(|()| run_server(config, policy, stamp, server, activated));
    if let Some(p) = pid_file {
        p.remove();
    }
    result
}

/// Binds as configured, or takes the sockets systemd handed over.
fn listen(config: &Config, policy: &Policy, activation: Activation) -> Result<Server> {
    let bytes = Arc::clone(policy.bytes());
    match activation {
        Activation::Sockets { count } => {
            let server = Server::from_listeners(inherit::listeners(count)?, config, bytes)?;
            if config.port != config::DEFAULT_PORT || !config.binds.is_empty() {
                info!("socket activation: --port and --bind are ignored");
            }
            Ok(server)
        }
        Activation::Invalid { listen_fds } => Err(Error::Usage(format!(
            "invalid LISTEN_FDS \"{listen_fds}\": must be a number of sockets from 0 to {}",
            inherit::MAX_LISTEN_FDS
        ))),
        Activation::NotOurs { listen_pid } => {
            info!(
                "ignoring LISTEN_FDS: LISTEN_PID={listen_pid} is not our pid ({})",
                std::process::id()
            );
            bind(config, bytes)
        }
        Activation::Off => bind(config, bytes),
    }
}

fn bind(config: &Config, bytes: Arc<[u8]>) -> Result<Server> {
    Server::bind(config, bytes)
}

/// Installs the signal handler, starts the reloader and stats threads, serves until a
/// stop signal, then stops the threads and logs the counters.
fn run_server(
    config: &Config,
    policy: &Policy,
    stamp: Option<Stamp>,
    server: Server,
    activated: bool,
) -> Result<()> {
    let hup_ignored = sys::sighup_ignored();
    let handle = server.handle()?;
    let stopper = handle.clone();
    ctrlc::set_handler(move || {
        info!("stop signal received: finishing connections in flight");
        stopper.shutdown();
    })
    .map_err(|e| Error::Setup(format!("cannot install the signal handler: {e}")))?;
    if hup_ignored {
        sys::ignore_sighup().map_err(|e| Error::io("cannot keep SIGHUP ignored", e))?;
        info!("SIGHUP was ignored at start (nohup): a hangup will not stop the daemon");
    }
    let figures = Arc::new(PolicyFigures::new(policy.bytes()));
    let textfile = match &config.stats_file {
        Some(path) => Some(Arc::new(Textfile::create(path, &figures)?)),
        None => None,
    };
    // The readiness lines come last: once a script sees them, the daemon is bound, has
    // written its pid file (and its stats file), dropped its privileges and handles
    // stop signals.
    let queue = sys::listen_queue_limit();
    for (addr, fd) in server.local_addrs().iter().zip(inherit::LISTEN_FDS_START..) {
        match queue {
            _ if activated => info!("listening on {addr} (socket activation, descriptor {fd})"),
            Some(q) => info!("listening on {addr} (listen queue {q}: net.core.somaxconn)"),
            None => info!("listening on {addr}"),
        }
    }
    let mut periodic = Vec::new();
    if let (PolicySource::File(path), Some(every)) = (&config.policy, config.reload_interval) {
        let h = handle.clone();
        let f = Arc::clone(&figures);
        let ports: Vec<u16> = server.local_addrs().iter().map(|a| a.port()).collect();
        let mut reloader = Reloader::new(path, stamp, policy, &ports, move |b| {
            f.set_policy_bytes(&b);
            h.set_policy(b);
        });
        let f = Arc::clone(&figures);
        periodic.push(Periodic::start("policy-reload", every, move || {
            match reloader.check() {
                Check::Reloaded => f.reloads.fetch_add(1, Ordering::Relaxed),
                Check::Refused | Check::Vanished => f.refused.fetch_add(1, Ordering::Relaxed),
                Check::Unchanged | Check::SameBytes => 0,
            };
        })?);
        info!("checking {} for changes every {every:?}", path.display());
    }
    if let Some(every) = config.stats_interval {
        let h = handle.clone();
        let t = textfile.clone();
        periodic.push(Periodic::start("stats", every, move || {
            let now = h.stats();
            info!("stats: {now}");
            if let Some(t) = &t {
                t.update(now);
            }
        })?);
        if let Some(t) = &textfile {
            info!(
                "writing the counters to {} every {every:?}",
                t.path().display()
            );
        }
    }
    let result = server.run();
    for p in periodic {
        p.stop();
    }
    let counters = result?;
    if let Some(t) = &textfile {
        t.update(counters);
    }
    info!("stopped: {counters}");
    Ok(())
}

/// `--inetd`: serve the one connection on standard input, then return.
fn serve_inetd(config: &Config, policy: &Policy, target: Option<&Target>) -> Result<()> {
    let stream = sys::stdin_connection(config.timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => Error::Usage(format!("--inetd: {}", describe_io(&e))),
        _ => Error::io("--inetd: cannot use standard input", e),
    })?;
    sys::detach_stdio()
        .map_err(|e| Error::io("--inetd: cannot point stdout and stderr at /dev/null", e))?;
    if let Some(t) = target {
        privilege::switch(t)?;
    }
    // Every connection is a process: policy warnings would repeat on each line.
    log_policy_warnings(policy, true);
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let stats = Stats::default();
    server::serve_connection(stream, peer, config.timeout, policy.bytes(), &stats);
    debug!("inetd connection done: {}", stats.snapshot());
    Ok(())
}

fn log_policy_warnings(policy: &Policy, quietly: bool) {
    let log = |line: String| {
        if quietly {
            debug!("{line}");
        } else {
            warn!("{line}");
        }
    };
    for w in policy.warnings() {
        log(format!("policy: {}", policy.locate(w)));
    }
    for n in policy.notes() {
        debug!("policy: note: {}", policy.locate(n));
    }
    if *policy.source() == Source::Default {
        log(PERMISSIVE.to_string());
    }
}

/// `--check-config`: the summary on stderr, the exact served bytes on stdout.
fn check_config(
    config: &Config,
    policy: &Policy,
    target: Option<&Target>,
    activation: &Activation,
) -> Result<()> {
    let mut summary = format!("flashpolicyd: policy {}\n", policy.describe());
    for w in policy.warnings() {
        summary += &format!("flashpolicyd: warning: {}\n", policy.locate(w));
    }
    if *policy.source() == Source::Default {
        summary += &format!("flashpolicyd: warning: {PERMISSIVE}\n");
    }
    // Under socket activation, the sockets systemd hands over (looked at, not taken).
    let bind = match activation {
        Activation::Sockets { count } => {
            sys::inherited_addresses(inherit::LISTEN_FDS_START, *count)
        }
        _ => server::bind_addresses(config),
    };
    let ports: Vec<u16> = bind.iter().map(|a| a.port()).collect();
    for line in served_hazards(policy, &ports) {
        summary += &format!("flashpolicyd: warning: {line}\n");
    }
    if matches!(config.verbosity, Verbosity::Debug | Verbosity::Trace) {
        for n in policy.notes() {
            summary += &format!("flashpolicyd: note: {}\n", policy.locate(n));
        }
    }
    let addrs: Vec<String> = bind.iter().map(|a| a.to_string()).collect();
    summary += &format!(
        "flashpolicyd: would listen on {} with {} workers, {:?} per connection\n",
        addrs.join(", "),
        config.workers,
        config.timeout
    );
    if let Some(t) = target {
        summary += &format!("flashpolicyd: would run as {t}\n");
    }
    summary += "flashpolicyd: configuration ok\n";
    eprint!("{summary}");
    print_out(policy.bytes())
}

/// Writes `bytes` to stdout and flushes.
///
/// # Errors
///
/// [`Error::Io`] when stdout cannot be written.
pub fn print_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to stdout", e))
}

/// Reports a failure under `--inetd`, where stderr is the client's socket: one line
/// in the `--log-file` found in `args` (even if they did not parse), or nowhere.
pub fn report_inetd_failure(args: &crate::cli::Args, err: &Error) {
    if let Some(path) = crate::cli::log_file_requested(args) {
        logging::append_line(Path::new(&path), log::Level::Error, &err.to_string());
    }
}

/// A named thread that calls a function every `interval` until [`Periodic::stop`],
/// which wakes it at once (a condition variable, not a sleep).
struct Periodic {
    name: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
    /// Disconnected when the thread ends: lets [`Periodic::stop`] wait with a deadline.
    ended: mpsc::Receiver<()>,
}

/// How long a stop waits for a periodic thread still in its tick (a policy read, a
/// stats write) before leaving it behind: the process exits anyway.
const PERIODIC_STOP_WAIT: Duration = Duration::from_secs(2);

impl Periodic {
    fn start(
        name: &str,
        interval: Duration,
        mut tick: impl FnMut() + Send + 'static,
    ) -> Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ended = ended_tx; // dropped when this thread ends
                let (lock, cv) = &*flag;
                let mut next = Instant::now() + interval;
                loop {
                    let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        let now = Instant::now();
                        if *stopped || now >= next {
                            break;
                        }
                        stopped = cv
                            .wait_timeout(stopped, next - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    tick();
                    // After a slow tick or a suspend, skip the missed ticks rather than
                    // firing them back to back.
                    next += interval;
                    let now = Instant::now();
                    if next <= now {
                        next = now + interval;
                    }
                }
            })
            .map_err(|e| Error::Setup(format!("cannot start the {name} thread: {e}")))?;
        Ok(Periodic {
            name: name.to_string(),
            stop,
            thread,
            ended,
        })
    }

    /// Stops the thread and waits for it, at most [`PERIODIC_STOP_WAIT`]: a tick that
    /// hangs (a file system that does not answer) must not stall the stop.
    fn stop(self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        match self.ended.recv_timeout(PERIODIC_STOP_WAIT) {
            Err(mpsc::RecvTimeoutError::Timeout) => warn!(
                "the {} thread did not finish within {PERIODIC_STOP_WAIT:?}: stopping without it",
                self.name
            ),
            _ => {
                let _ = self.thread.join();
            }
        }
    }
}
