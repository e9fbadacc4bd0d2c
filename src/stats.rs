//! Connection counters shared by the accept threads and the workers, and their
//! one-line rendering (`served=N rejected=N ...`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters, updated with relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients that got the policy.
    pub served: AtomicU64,
    /// Clients that sent junk or closed before completing the request.
    pub rejected: AtomicU64,
    /// Clients that did not complete the request before the deadline.
    pub timed_out: AtomicU64,
    /// Connections that failed with an I/O error (reset, write failure...).
    pub io_errors: AtomicU64,
    /// Connections closed at once because `--max-pending` were already waiting.
    pub overflow: AtomicU64,
    /// Times `accept` failed because the process or system ran out of descriptors.
    pub fd_exhausted: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::served`].
    pub served: u64,
    /// See [`Stats::rejected`].
    pub rejected: u64,
    /// See [`Stats::timed_out`].
    pub timed_out: u64,
    /// See [`Stats::io_errors`].
    pub io_errors: u64,
    /// See [`Stats::overflow`].
    pub overflow: u64,
    /// See [`Stats::fd_exhausted`].
    pub fd_exhausted: u64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            served: r(&self.served),
            rejected: r(&self.rejected),
            timed_out: r(&self.timed_out),
            io_errors: r(&self.io_errors),
            overflow: r(&self.overflow),
            fd_exhausted: r(&self.fd_exhausted),
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "served={} rejected={} timed_out={} io_errors={} overflow={} fd_exhausted={}",
            self.served,
            self.rejected,
            self.timed_out,
            self.io_errors,
            self.overflow,
            self.fd_exhausted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_in_order() {
        let s = Stats::default();
        Stats::bump(&s.served);
        Stats::bump(&s.served);
        Stats::bump(&s.rejected);
        Stats::bump(&s.timed_out);
        Stats::bump(&s.fd_exhausted);
        assert_eq!(
            s.snapshot().to_string(),
            "served=2 rejected=1 timed_out=1 io_errors=0 overflow=0 fd_exhausted=1"
        );
    }
}
