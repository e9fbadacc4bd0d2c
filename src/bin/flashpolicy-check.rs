//! `flashpolicy-check`: probes a Flash socket policy server, validates its policy and
//! says whether Flash Player would let a SWF connect, as a Nagios/Icinga plugin.
//! Everything lives in `flashpolicyd::check`; this only prints and exits.

use std::io::Write;

fn main() {
    // Lossy: a non-UTF-8 argument is reported as a usage error, never a panic.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (text, code) = flashpolicyd::check::main_with(&args);
    // A closed stdout (e.g. `| head -1`) must not turn into a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    std::process::exit(code);
}
