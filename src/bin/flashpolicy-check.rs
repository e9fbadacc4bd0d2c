//! `flashpolicy-check`: probes a Flash socket policy server, validates its policy and
//! says whether Flash Player would let a SWF connect, as a Nagios/Icinga plugin.
//! Everything lives in `flashpolicyd::check`; this only prints and exits.

use std::io::Write;

fn main() {
    // As the OS gives them: a --file that is not UTF-8 is read under exactly its name.
    let args = flashpolicyd::cli::Args::from_os(std::env::args_os().skip(1));
    let (text, code) = flashpolicyd::check::main_with_args(&args);
    // A closed stdout (e.g. `| head -1`) must not turn into a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    std::process::exit(code);
}
