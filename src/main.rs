//! `flashpolicyd`: parse the command line, hand the configuration to the daemon, and
//! map errors to exit codes (0 clean stop, 1 run-time failure, 2 usage or
//! configuration error). The run itself is in `flashpolicyd::daemon`.

use flashpolicyd::cli::{self, Args, Command};
use flashpolicyd::{daemon, Result};

fn main() {
    // As the OS gives them: a path that is not UTF-8 is opened under exactly its name.
    let args = Args::from_os(std::env::args_os().skip(1));
    if let Err(e) = run(&args) {
        // Under inetd, stderr is the client's socket: the error goes to the log file
        // or nowhere.
        if cfg!(unix) && cli::inetd_requested(args.texts()) {
            daemon::report_inetd_failure(&args, &e);
        } else {
            eprintln!("flashpolicyd: {e}");
        }
        std::process::exit(e.exit_code());
    }
}

fn run(args: &Args) -> Result<()> {
    match cli::parse_args(args)? {
        Command::Help(text) => daemon::print_out(text.as_bytes()),
        Command::Version(v) => daemon::print_out(format!("{v}\n").as_bytes()),
        Command::Run(config) => daemon::run(&config),
    }
}
