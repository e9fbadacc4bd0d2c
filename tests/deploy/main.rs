//! Running the daemon the ways it is deployed: systemd socket activation, inetd, log
//! files, non-UTF-8 paths, pid files, dropping privileges, policy reload, and the init and cron
//! scripts of scripts/. Unix only. One test binary (`cargo test --test deploy`).
#![cfg(unix)]

#[path = "../support/served.rs"]
mod served;
#[path = "../support/mod.rs"]
mod shared;

mod helpers;

/// Every helper a test module reaches as `support::`.
mod support {
    pub use crate::helpers::*;
    pub use crate::served::*;
    pub use crate::shared::*;
}

mod activation;
mod inetd;
mod logs;
mod paths;
mod pidfile;
mod privilege;
mod reload;
mod scripts;
