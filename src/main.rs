//! `flashpolicyd`: parse the command line, hand the configuration to the daemon, and
//! map errors to exit codes (0 clean stop, 1 run-time failure, 2 usage or
//! configuration error). The run itself is in `flashpolicyd::daemon`.

use flashpolicyd::cli::{self, Command};
use flashpolicyd::{daemon, Result};

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Err(e) = run(&args) {
        // Under inetd, stderr is the client's socket: the error goes to the log file
        // or nowhere.
        if cfg!(unix) && cli::inetd_requested(&args) {
            daemon::report_inetd_failure(&args, &e);
        } else {
            eprintln!("flashpolicyd: {e}");
        }
        std::process::exit(e.exit_code());
    }
}

fn run(args: &[String]) -> Result<()> {
    match cli::parse(args)? {
        Command::Help(text) => daemon::print_out(text.as_bytes()),
        Command::Version(v) => daemon::print_out(format!("{v}\n").as_bytes()),
        Command::Run(config) => daemon::run(&config),
    }
}
