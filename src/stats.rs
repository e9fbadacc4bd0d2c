//! Connection counters shared by the accept threads and the workers, how a connection
//! that got no policy is classified ([`Ending::of`]), and the counters' one-line
//! rendering (`served=N rejected=N empty=N ...`).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::request::Outcome;

/// Counters, updated with relaxed atomics: they are statistics, not synchronisation.
///
/// Every accepted connection is counted exactly once, under one of the six [`Ending`]s;
/// `fd_exhausted` counts failed `accept` calls, not connections.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Clients that got the policy.
    pub served: AtomicU64,
    /// Clients that sent bytes that are not the request, or closed part-way through it.
    pub rejected: AtomicU64,
    /// Clients that closed, reset or timed out without sending a byte (TCP health
    /// checks, load-balancer probes, port scans).
    pub empty: AtomicU64,
    /// Clients that sent part of the request, then nothing until the deadline (or that
    /// did not take the policy in time).
    pub timed_out: AtomicU64,
    /// Connections that failed with an I/O error (reset after some bytes, write failure...).
    pub io_errors: AtomicU64,
    /// Connections closed at once because `--max-pending` were already waiting.
    pub overflow: AtomicU64,
    /// Times `accept` failed because the process or system ran out of descriptors.
    pub fd_exhausted: AtomicU64,
}

/// How one connection ended: each accepted connection is counted under exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// See [`Stats::served`].
    Served,
    /// See [`Stats::rejected`].
    Rejected,
    /// See [`Stats::empty`].
    Empty,
    /// See [`Stats::timed_out`].
    TimedOut,
    /// See [`Stats::io_errors`].
    IoError,
    /// See [`Stats::overflow`].
    Overflow,
}

impl Ending {
    /// Every ending, in the order of the stats line.
    pub(crate) const ALL: [Ending; 6] = [
        Ending::Served,
        Ending::Rejected,
        Ending::Empty,
        Ending::TimedOut,
        Ending::IoError,
        Ending::Overflow,
    ];

    /// Its name in the stats line and in the `outcome` label of the `--stats-file`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ending::Served => "served",
            Ending::Rejected => "rejected",
            Ending::Empty => "empty",
            Ending::TimedOut => "timed_out",
            Ending::IoError => "io_errors",
            Ending::Overflow => "overflow",
        }
    }

    /// A connection whose deadline passed (or that the readiness gate closed early)
    /// after `received` request bytes: [`Ending::Empty`] when it sent none.
    pub(crate) fn timed_out(received: usize) -> Ending {
        if received == 0 {
            Ending::Empty
        } else {
            Ending::TimedOut
        }
    }

    /// How a connection that got no policy ended, from what reading the request
    /// decided (with the request bytes received before that): `None` for a complete
    /// request (it is counted once the policy is sent, or fails to be).
    ///
    /// A client that sent nothing is [`Ending::Empty`] whether it closed, timed out or
    /// reset the connection: that is what a TCP health check or a port scan does, and
    /// it says nothing about players.
    pub(crate) fn of(outcome: &Outcome) -> Option<Ending> {
        Some(match outcome {
            Outcome::Request { .. } => return None,
            Outcome::Junk { .. } => Ending::Rejected,
            Outcome::Closed { received: 0 } => Ending::Empty,
            Outcome::Closed { .. } => Ending::Rejected,
            Outcome::TimedOut { received } => Ending::timed_out(*received),
            Outcome::Failed { error, received: 0 } if reset_or_aborted(error) => Ending::Empty,
            Outcome::Failed { .. } => Ending::IoError,
        })
    }
}

/// A reset (or an abort) by the peer: a probe that closes with `SO_LINGER` 0.
fn reset_or_aborted(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// See [`Stats::served`].
    pub served: u64,
    /// See [`Stats::rejected`].
    pub rejected: u64,
    /// See [`Stats::empty`].
    pub empty: u64,
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
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one connection that ended as `ending`.
    pub(crate) fn count(&self, ending: Ending) {
        Stats::bump(self.counter(ending));
    }

    fn counter(&self, ending: Ending) -> &AtomicU64 {
        match ending {
            Ending::Served => &self.served,
            Ending::Rejected => &self.rejected,
            Ending::Empty => &self.empty,
            Ending::TimedOut => &self.timed_out,
            Ending::IoError => &self.io_errors,
            Ending::Overflow => &self.overflow,
        }
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            served: r(&self.served),
            rejected: r(&self.rejected),
            empty: r(&self.empty),
            timed_out: r(&self.timed_out),
            io_errors: r(&self.io_errors),
            overflow: r(&self.overflow),
            fd_exhausted: r(&self.fd_exhausted),
        }
    }
}

impl Snapshot {
    /// The connections that ended as `ending`.
    pub(crate) fn get(&self, ending: Ending) -> u64 {
        match ending {
            Ending::Served => self.served,
            Ending::Rejected => self.rejected,
            Ending::Empty => self.empty,
            Ending::TimedOut => self.timed_out,
            Ending::IoError => self.io_errors,
            Ending::Overflow => self.overflow,
        }
    }

    /// Every connection accepted and finished: the sum over [`Ending::ALL`].
    #[cfg(test)]
    pub(crate) fn connections(&self) -> u64 {
        Ending::ALL.iter().map(|&e| self.get(e)).sum()
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in Ending::ALL {
            write!(f, "{}={} ", e.name(), self.get(e))?;
        }
        write!(f, "fd_exhausted={}", self.fd_exhausted)
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
        s.count(Ending::Rejected);
        s.count(Ending::Empty);
        s.count(Ending::Empty);
        s.count(Ending::Empty);
        Stats::bump(&s.timed_out);
        Stats::bump(&s.fd_exhausted);
        assert_eq!(
            s.snapshot().to_string(),
            "served=2 rejected=1 empty=3 timed_out=1 io_errors=0 overflow=0 fd_exhausted=1"
        );
    }

    #[test]
    fn each_ending_has_its_own_counter_and_the_sum_is_the_connections() {
        let s = Stats::default();
        for (i, e) in Ending::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                s.count(e);
            }
        }
        Stats::bump(&s.fd_exhausted); // not a connection
        let snap = s.snapshot();
        for (i, e) in Ending::ALL.into_iter().enumerate() {
            assert_eq!(snap.get(e), i as u64 + 1, "{}", e.name());
        }
        assert_eq!(snap.connections(), 1 + 2 + 3 + 4 + 5 + 6);
    }

    fn failed(error: io::Error, received: usize) -> Outcome {
        Outcome::Failed { error, received }
    }

    #[test]
    fn a_client_that_sent_nothing_is_empty_however_it_went() {
        let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
        let aborted = || io::Error::from(io::ErrorKind::ConnectionAborted);
        for outcome in [
            Outcome::Closed { received: 0 },
            Outcome::TimedOut { received: 0 },
            failed(reset(), 0),
            failed(aborted(), 0),
        ] {
            assert_eq!(Ending::of(&outcome), Some(Ending::Empty), "{outcome:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_the_request_are_rejected_and_part_of_it_times_out() {
        let cases = [
            (Outcome::Junk { at: 0, byte: b'G' }, Ending::Rejected),
            (Outcome::Junk { at: 5, byte: b'x' }, Ending::Rejected),
            (Outcome::Closed { received: 1 }, Ending::Rejected),
            (Outcome::Closed { received: 21 }, Ending::Rejected),
            (Outcome::TimedOut { received: 1 }, Ending::TimedOut),
            (Outcome::TimedOut { received: 12 }, Ending::TimedOut),
            (
                failed(io::Error::from(io::ErrorKind::ConnectionReset), 3),
                Ending::IoError,
            ),
            (
                failed(io::Error::from(io::ErrorKind::Other), 0),
                Ending::IoError,
            ),
        ];
        for (outcome, want) in cases {
            assert_eq!(Ending::of(&outcome), Some(want), "{outcome:?}");
        }
    }

    #[test]
    fn a_complete_request_is_not_counted_until_it_is_answered() {
        let request = Outcome::Request {
            nul: true,
            extra: false,
        };
        assert_eq!(Ending::of(&request), None);
    }

    #[test]
    fn names_are_unique_and_label_safe() {
        let names: Vec<&str> = Ending::ALL.iter().map(|e| e.name()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{n}"
            );
        }
    }
}
