//! `flashpolicy-bench`: a load client for Flash socket policy servers (connections/s,
//! latency, errors by kind, resets; idle and trickle floods). Everything lives in
//! `flashpolicyd::bench`; this only passes the arguments and exits.

fn main() {
    // Lossy: a non-UTF-8 argument is reported as a usage error, never a panic.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(flashpolicyd::bench::main_with(&args));
}
