//! What a run measured and how it is printed: a latency histogram with bounded
//! memory, the per-thread tallies and their sum, the human summary and the
//! machine-readable `RESULT key=value ...` line.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::Mode;
use crate::client::Failure;
use crate::held;

/// Values below this many microseconds get a bucket each.
const EXACT: u64 = 128;
/// Sub-buckets per power of two above [`EXACT`]: a relative error under 1/64.
const SUB: u64 = 64;
/// Latencies are capped at 2^36 µs (19 hours), far beyond any deadline.
const CAP: u64 = (1 << 36) - 1;

/// Latency histogram in microseconds: exact below 128 µs, then 64 buckets per
/// power of two, so a million or a billion samples take the same few kilobytes.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn index(us: u64) -> usize {
        if us < EXACT {
            return us as usize;
        }
        let e = u64::from(63 - us.leading_zeros()); // >= 7
        let shift = e - 6;
        (EXACT + (e - 7) * SUB + ((us >> shift) - SUB)) as usize
    }

    /// The largest value that falls into bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let e = 7 + (i - EXACT) / SUB;
        let m = SUB + (i - EXACT) % SUB;
        ((m + 1) << (e - 6)) - 1
    }

    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(CAP).min(CAP);
        let i = Histogram::index(us);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample, exact, in microseconds (0 when empty).
    pub fn max_us(&self) -> u64 {
        self.max
    }

    /// The `q` quantile (0 < q <= 1) in microseconds, rounded up to its bucket's
    /// upper bound (never above the maximum): it never understates. 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Histogram::upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// What the measuring client threads saw.
#[derive(Debug, Default, Clone)]
pub struct ClientTally {
    /// Good transactions: a policy ending in a NUL.
    pub ok: u64,
    /// Junk transactions the server closed without a policy.
    pub junk_ok: u64,
    /// Of `ok`, those whose request was sent in two writes (`mix`).
    pub split_ok: u64,
    /// Good transactions whose close was a TCP reset.
    pub resets: u64,
    /// Failed transactions, by [`Failure`] index.
    pub errors: [u64; Failure::ALL.len()],
    /// Latency of the good transactions, connect included.
    pub latency: Histogram,
}

impl ClientTally {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ClientTally) {
        self.ok += other.ok;
        self.junk_ok += other.junk_ok;
        self.split_ok += other.split_ok;
        self.resets += other.resets;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.latency.merge(&other.latency);
    }

    /// Failed transactions of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// The held connections over the measured phase.
#[derive(Debug, Default, Clone)]
pub struct HeldReport {
    /// Connections asked for (`-k`).
    pub target: usize,
    /// Time taken by the initial opening.
    pub setup: Duration,
    /// Open when the measured phase started.
    pub open_start: usize,
    /// Fewest open during the measured phase (sampled every 100 ms).
    pub open_min: usize,
    /// Average open during the measured phase.
    pub open_avg: usize,
    /// Open when the last client finished.
    pub open_end: usize,
    /// Successful connects, the initial ones included.
    pub opened: u64,
    /// What the holder threads counted.
    pub tally: held::Tally,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The mode run.
    pub mode: Mode,
    /// `--label`.
    pub label: String,
    /// The address the host resolved to.
    pub target: SocketAddr,
    /// Client threads asked for.
    pub clients: usize,
    /// Client threads that could be started.
    pub clients_started: usize,
    /// The `-d` asked for.
    pub duration: Duration,
    /// From the start of the clients until the last one finished.
    pub elapsed: Duration,
    /// The clients' results.
    pub tally: ClientTally,
    /// The held connections, if any were asked for.
    pub held: Option<HeldReport>,
    /// CPU time of this process during the measured phase.
    pub client_cpu: Duration,
    /// Open-files limit in force, where there is one.
    pub nofile: Option<u64>,
    /// Things that make the figures less trustworthy (limits too low, threads missing).
    pub warnings: Vec<String>,
}

impl Report {
    /// Good transactions per second.
    pub fn rate(&self) -> f64 {
        per_sec(self.tally.ok, self.elapsed)
    }

    /// True if anything worked: a good or junk transaction, or with no clients, a
    /// held connection.
    pub fn succeeded(&self) -> bool {
        let held = self.held.as_ref().map_or(0, |h| h.opened);
        self.tally.ok + self.tally.junk_ok > 0 || (self.clients == 0 && held > 0)
    }

    /// Connections attempted in all: transactions and held connects.
    pub fn connections(&self) -> u64 {
        let t = &self.tally;
        let held = self
            .held
            .as_ref()
            .map_or(0, |h| h.opened + h.tally.connect_errors.iter().sum::<u64>());
        t.ok + t.junk_ok + t.error_count() + held
    }

    /// The `RESULT key=value ...` line: every key always present, times in
    /// microseconds or seconds as the key says.
    pub fn result_line(&self) -> String {
        let t = &self.tally;
        let l = &t.latency;
        let secs = self.elapsed.as_secs_f64();
        let mut s = format!(
            "RESULT mode={} label={} host={} port={} clients={} clients_started={} secs={} \
             elapsed_s={secs:.3} ok={} rate={:.1} p50_us={} p90_us={} p99_us={} p999_us={} \
             max_us={} errors={}",
            self.mode.as_str(),
            self.label,
            self.target.ip(),
            self.target.port(),
            self.clients,
            self.clients_started,
            self.duration.as_secs_f64(),
            t.ok,
            self.rate(),
            l.quantile_us(0.50),
            l.quantile_us(0.90),
            l.quantile_us(0.99),
            l.quantile_us(0.999),
            l.max_us(),
            t.error_count(),
        );
        for f in Failure::ALL {
            let _ = write!(s, " err_{}={}", f.as_str(), t.errors[f.index()]);
        }
        let _ = write!(
            s,
            " resets={} junk_ok={} junk_rate={:.1} split_ok={}",
            t.resets,
            t.junk_ok,
            per_sec(t.junk_ok, self.elapsed),
            t.split_ok
        );
        let h = self.held.clone().unwrap_or_default();
        let _ = write!(
            s,
            " held={} held_setup_ms={} held_open_start={} held_open_min={} held_open_avg={} \
             held_open_end={} held_opened={} held_server_closed={} held_replies={} \
             held_reopens={} held_connect_errors={}",
            h.target,
            h.setup.as_millis(),
            h.open_start,
            h.open_min,
            h.open_avg,
            h.open_end,
            h.opened,
            h.tally.server_closed,
            h.tally.replies,
            h.tally.reopens,
            h.tally.connect_errors.iter().sum::<u64>(),
        );
        let _ = write!(
            s,
            " connections={} client_cpu_s={:.2} client_cores={:.2} nofile={}",
            self.connections(),
            self.client_cpu.as_secs_f64(),
            if secs > 0.0 {
                self.client_cpu.as_secs_f64() / secs
            } else {
                0.0
            },
            self.nofile
                .map_or_else(|| "-".to_string(), |n| n.to_string())
        );
        s
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// `850 µs`, `1.25 ms`, `12.5 ms`, `250 ms`, `3.01 s`.
pub fn fmt_us(us: u64) -> String {
    let v = us as f64;
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=9_999 => format!("{:.2} ms", v / 1e3),
        10_000..=99_999 => format!("{:.1} ms", v / 1e3),
        100_000..=999_999 => format!("{:.0} ms", v / 1e3),
        _ => format!("{:.2} s", v / 1e6),
    }
}

/// The human summary, a few lines (the `RESULT` line is separate).
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let l = &t.latency;
        writeln!(
            f,
            "{} {}: {} clients for {:.1} s: {:.0} conn/s ({} good)",
            self.mode.as_str(),
            self.target,
            self.clients_started,
            self.elapsed.as_secs_f64(),
            self.rate(),
            t.ok
        )?;
        if l.count() > 0 {
            writeln!(
                f,
                "latency, connect to close: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
                fmt_us(l.quantile_us(0.50)),
                fmt_us(l.quantile_us(0.90)),
                fmt_us(l.quantile_us(0.99)),
                fmt_us(l.quantile_us(0.999)),
                fmt_us(l.max_us())
            )?;
        }
        if matches!(self.mode, Mode::Junk | Mode::Mix) {
            writeln!(
                f,
                "junk closed without a policy: {} ({:.0}/s)",
                t.junk_ok,
                per_sec(t.junk_ok, self.elapsed)
            )?;
        }
        if self.mode == Mode::Mix {
            writeln!(f, "of the good ones, sent in two writes: {}", t.split_ok)?;
        }
        let kinds: Vec<String> = Failure::ALL
            .iter()
            .filter(|k| t.errors[k.index()] > 0)
            .map(|k| format!("{}={}", k.as_str(), t.errors[k.index()]))
            .collect();
        if kinds.is_empty() {
            writeln!(f, "errors: none")?;
        } else {
            writeln!(f, "errors: {} ({})", t.error_count(), kinds.join(" "))?;
        }
        writeln!(f, "replies that ended in a reset: {}", t.resets)?;
        if let Some(h) = &self.held {
            writeln!(
                f,
                "held: {} asked, {} open at start (set up in {} ms), min {}, avg {}, {} at end; \
                 server closed {} ({} with a policy), {} reopened, {} connect errors",
                h.target,
                h.open_start,
                h.setup.as_millis(),
                h.open_min,
                h.open_avg,
                h.open_end,
                h.tally.server_closed,
                h.tally.replies,
                h.tally.reopens,
                h.tally.connect_errors.iter().sum::<u64>()
            )?;
        }
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            writeln!(
                f,
                "client cpu: {:.2} cores",
                self.client_cpu.as_secs_f64() / secs
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = None;
        for us in (0..5000).chain([1 << 20, (1 << 20) + 12345, CAP]) {
            let i = Histogram::index(us);
            assert!(Histogram::upper(i) >= us, "{us} above bucket {i}");
            if i > 0 {
                assert!(Histogram::upper(i - 1) < us, "{us} below bucket {i}");
            }
            let width = Histogram::upper(i) - if i > 0 { Histogram::upper(i - 1) } else { 0 };
            assert!(width <= us / 64 + 1, "bucket of {us} is {width} wide");
            if let Some(p) = prev {
                assert!(i >= p);
            }
            prev = Some(i);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!((h.quantile_us(0.5), h.max_us()), (0, 0));
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let mut other = Histogram::default();
        other.record(Duration::from_secs(3));
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        let p50 = h.quantile_us(0.5);
        assert!((500..=509).contains(&p50), "p50 {p50}");
        let p99 = h.quantile_us(0.99);
        assert!((990..=1007).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile_us(1.0), 3_000_000);
        assert_eq!(h.max_us(), 3_000_000);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(1250), "1.25 ms");
        assert_eq!(fmt_us(12_500), "12.5 ms");
        assert_eq!(fmt_us(250_000), "250 ms");
        assert_eq!(fmt_us(3_010_000), "3.01 s");
    }
}
