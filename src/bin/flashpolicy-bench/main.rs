//! `flashpolicy-bench`: a load client for any Flash socket policy server. C client
//! threads connect, send the request, read to EOF and close, back to back, for D
//! seconds, optionally beside K held connections (idle or trickling); the run reports
//! connections/s, latency, errors by kind and replies that ended in a reset.
//!
//! Flow: [`cli::parse`] → [`run::run`] (resolve, hold, measure with
//! [`client::transact`]) → [`report::Report`]. It is not part of the library: from
//! `flashpolicyd` it takes only the request bytes, the error type and the flag-value
//! parsers, so that its messages read like the daemon's.

mod cli;
mod client;
mod held;
mod net;
mod report;
mod run;

use cli::Command;

fn main() {
    // Lossy: a non-UTF-8 argument is reported as a usage error, never a panic.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(main_with(&args));
}

/// Runs `args` (without the program name): prints the summary and then the `RESULT`
/// line on stdout, errors on stderr; returns the exit code (0 the run completed, 1
/// nothing succeeded or it could not run, 2 usage error).
fn main_with(args: &[String]) -> i32 {
    let config = match cli::parse(args) {
        Ok(Command::Run(c)) => c,
        Ok(Command::Help(text)) | Ok(Command::Version(text)) => {
            println!("{text}");
            return 0;
        }
        Err(e) => {
            eprintln!("flashpolicy-bench: {e}");
            return e.exit_code();
        }
    };
    match run::run(&config) {
        Ok(report) => {
            print!("{report}");
            println!("{}", report.result_line());
            i32::from(!report.succeeded())
        }
        Err(e) => {
            eprintln!("flashpolicy-bench: {e}");
            e.exit_code()
        }
    }
}
