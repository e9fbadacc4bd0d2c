//! `flashpolicyd`: parse the command line, start the logger, load the policy, bind,
//! install the one signal handler, serve, and map errors to exit codes
//! (0 clean stop, 1 run-time failure, 2 usage or configuration error).

use std::io::Write;

use flashpolicyd::cli::{self, Command};
use flashpolicyd::config::{Config, PolicySource};
use flashpolicyd::pidfile::PidFile;
use flashpolicyd::policy::{Policy, Source};
use flashpolicyd::server::{self, Server};
use flashpolicyd::{logging, sys, Error, Result};
use log::{error, info, warn};

const PERMISSIVE: &str =
    "serving the embedded allow-all policy, which is permissive: SWFs from any \
    domain may connect to any port; restrict it with --file or --allow";

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Err(e) = run(&args) {
        eprintln!("flashpolicyd: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(args: &[String]) -> Result<()> {
    let config = match cli::parse(args)? {
        Command::Help(text) => return print_out(text.as_bytes()),
        Command::Version(v) => return print_out(format!("{v}\n").as_bytes()),
        Command::Run(c) => c,
    };
    let policy = match &config.policy {
        PolicySource::File(path) => Policy::from_file(path)?,
        PolicySource::Allow(specs, given) => Policy::from_allow(specs, given.clone()),
        PolicySource::Default => Policy::allow_all(),
    };
    if config.check_config {
        return check_config(&config, &policy);
    }
    let file = config
        .log_file
        .as_deref()
        .map(logging::open_log_file)
        .transpose()?;
    logging::init(config.verbosity, file)?;
    serve(&config, &policy).map_err(|e| {
        if config.log_file.is_some() {
            error!("{e}");
        }
        e
    })
}

fn serve(config: &Config, policy: &Policy) -> Result<()> {
    info!(
        "flashpolicyd {} starting: {}",
        env!("CARGO_PKG_VERSION"),
        policy.describe()
    );
    for w in policy.warnings() {
        warn!("policy: {}", policy.locate(w));
    }
    if *policy.source() == Source::Default {
        warn!("{PERMISSIVE}");
    }
    let server = Server::bind(config, policy.bytes().clone())?;
    for addr in server.local_addrs() {
        info!("listening on {addr}");
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
    let hup_ignored = sys::sighup_ignored();
    let handle = server.handle()?;
    ctrlc::set_handler(move || {
        info!("stop signal received: finishing connections in flight");
        handle.shutdown();
    })
    .map_err(|e| Error::Setup(format!("cannot install the signal handler: {e}")))?;
    if hup_ignored {
        sys::ignore_sighup().map_err(|e| Error::io("cannot keep SIGHUP ignored", e))?;
        info!("SIGHUP was ignored at start (nohup): a hangup will not stop the daemon");
    }
    let stats = server.run()?;
    info!("stopped: {stats}");
    if let Some(p) = pid_file {
        p.remove();
    }
    Ok(())
}

/// `--check-config`: the summary on stderr, the exact served bytes on stdout.
fn check_config(config: &Config, policy: &Policy) -> Result<()> {
    let mut summary = format!("flashpolicyd: policy {}\n", policy.describe());
    for w in policy.warnings() {
        summary += &format!("flashpolicyd: warning: {}\n", policy.locate(w));
    }
    if *policy.source() == Source::Default {
        summary += &format!("flashpolicyd: warning: {PERMISSIVE}\n");
    }
    let addrs: Vec<String> = server::bind_addresses(config)
        .iter()
        .map(|a| a.to_string())
        .collect();
    summary += &format!(
        "flashpolicyd: would listen on {} with {} workers, {:?} per connection\nflashpolicyd: configuration ok\n",
        addrs.join(", "), config.workers, config.timeout
    );
    eprint!("{summary}");
    print_out(policy.bytes())
}

fn print_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to stdout", e))
}
