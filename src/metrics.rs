//! `--stats-file`: the counters in the Prometheus text exposition format, for
//! node_exporter's textfile collector. [`render`] is pure; [`StatsFile::write`] replaces
//! the file atomically (a temporary file in the same directory, then a rename), so the
//! collector never reads half a file; [`Textfile`] puts the two together for the daemon.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use log::{info, warn};

use crate::error::{describe_io, Error, Result};
use crate::stats::{Ending, Snapshot};

/// Everything the textfile shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sample<'a> {
    /// The connection counters.
    pub counters: Snapshot,
    /// Size of the policy served now, NUL included.
    pub policy_bytes: u64,
    /// Times a changed `--file` policy was loaded and served.
    pub reloads: u64,
    /// Times a changed `--file` policy was refused (invalid, unreadable or vanished).
    pub reload_failures: u64,
    /// When the daemon started, in seconds since the Unix epoch.
    pub start_time: u64,
    /// The daemon's version.
    pub version: &'a str,
}

/// One metric family: its `# HELP` and `# TYPE` lines, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP flashpolicyd_{name} {help}");
    let _ = writeln!(out, "# TYPE flashpolicyd_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "flashpolicyd_{name}{labels} {value}");
    }
}

/// The one sample of a family without labels.
fn plain(value: u64) -> [(String, u64); 1] {
    [(String::new(), value)]
}

/// Escapes a label value: backslash, double quote and line feed.
fn label_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The whole textfile: `# HELP` and `# TYPE` before each family, names prefixed
/// `flashpolicyd_`, counters ending in `_total`, and a final line feed.
pub(crate) fn render(s: &Sample<'_>) -> String {
    let mut out = String::new();
    let outcomes: Vec<(String, u64)> = Ending::ALL
        .iter()
        .map(|&e| (format!("{{outcome=\"{}\"}}", e.name()), s.counters.get(e)))
        .collect();
    family(
        &mut out,
        "connections_total",
        "counter",
        "Connections accepted and finished, by how they ended: served (got the policy), \
         rejected (sent bytes that are not the request), empty (sent nothing), timed_out \
         (sent part of the request), io_errors, overflow (closed at once: --max-pending).",
        &outcomes,
    );
    family(
        &mut out,
        "accept_fd_exhausted_total",
        "counter",
        "Times accept() failed for lack of file descriptors (the connection waits in the \
         kernel's queue; it is not a connection outcome).",
        &plain(s.counters.fd_exhausted),
    );
    family(
        &mut out,
        "policy_bytes",
        "gauge",
        "Size of the policy served now, in bytes, its final NUL included.",
        &plain(s.policy_bytes),
    );
    family(
        &mut out,
        "policy_reloads_total",
        "counter",
        "Times a changed --file policy was loaded and served.",
        &plain(s.reloads),
    );
    family(
        &mut out,
        "policy_reload_failures_total",
        "counter",
        "Times a changed --file policy was refused (invalid, unreadable or vanished); the \
         previous policy stays in service.",
        &plain(s.reload_failures),
    );
    family(
        &mut out,
        "start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
        &plain(s.start_time),
    );
    family(
        &mut out,
        "build_info",
        "gauge",
        "The running daemon's version, as a label; the value is always 1.",
        &[(format!("{{version=\"{}\"}}", label_value(s.version)), 1)],
    );
    out
}

/// The `--stats-file` and the temporary file beside it.
#[derive(Debug, Clone)]
pub(crate) struct StatsFile {
    path: PathBuf,
    temp: PathBuf,
}

impl StatsFile {
    /// The file at `path`; nothing is written yet. The temporary file is
    /// `.NAME.tmp` in the same directory (a rename does not cross file systems; the
    /// textfile collector reads only `*.prom`, so it never sees the temporary file).
    pub(crate) fn new(path: &Path) -> StatsFile {
        let name = path.file_name().unwrap_or(path.as_os_str());
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(".tmp");
        StatsFile {
            path: path.to_path_buf(),
            temp: path.with_file_name(temp_name),
        }
    }

    /// The path it replaces.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to the temporary file, then renames it over the file. On failure
    /// the temporary file is removed and the previous file (if any) is left as it was.
    ///
    /// # Errors
    ///
    /// The `io::Error` of the step that failed (directory missing or not writable, the
    /// path is a directory, disk full...).
    pub(crate) fn write(&self, text: &str) -> io::Result<()> {
        let result = fs::File::create(&self.temp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&self.temp, &self.path));
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

/// What the textfile shows of the policy, kept up to date by the reloader thread.
#[derive(Debug, Default)]
pub(crate) struct PolicyFigures {
    bytes: AtomicU64,
    /// Changed policies loaded and served.
    pub reloads: AtomicU64,
    /// Changed policies refused (invalid, unreadable or vanished).
    pub refused: AtomicU64,
}

impl PolicyFigures {
    /// The figures at start: `policy` is served, nothing reloaded yet.
    pub(crate) fn new(policy: &[u8]) -> PolicyFigures {
        let f = PolicyFigures::default();
        f.set_policy_bytes(policy);
        f
    }

    /// Records the size of the policy served from now on.
    pub(crate) fn set_policy_bytes(&self, policy: &[u8]) {
        let len = u64::try_from(policy.len()).unwrap_or(u64::MAX);
        self.bytes.store(len, Ordering::Relaxed);
    }
}

/// The daemon's `--stats-file`: where it goes and what it shows besides the counters.
#[derive(Debug)]
pub(crate) struct Textfile {
    file: StatsFile,
    figures: Arc<PolicyFigures>,
    start_time: u64,
    /// The last write failed (warned once, until a write succeeds again).
    failing: Mutex<bool>,
}

impl Textfile {
    /// Writes the file for the first time (every counter at 0), so that an unwritable
    /// path stops the daemon at start rather than at the first interval. The start
    /// time shown is now.
    ///
    /// # Errors
    ///
    /// [`Error::StatsFile`] naming the path when it cannot be written.
    pub(crate) fn create(path: &Path, figures: &Arc<PolicyFigures>) -> Result<Textfile> {
        let start_time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let t = Textfile {
            file: StatsFile::new(path),
            figures: Arc::clone(figures),
            start_time,
            failing: Mutex::new(false),
        };
        t.write(Snapshot::default())
            .map_err(|source| Error::StatsFile {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(t)
    }

    /// The path given to `--stats-file`.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    fn write(&self, counters: Snapshot) -> io::Result<()> {
        let f = &self.figures;
        let text = render(&Sample {
            counters,
            policy_bytes: f.bytes.load(Ordering::Relaxed),
            reloads: f.reloads.load(Ordering::Relaxed),
            reload_failures: f.refused.load(Ordering::Relaxed),
            start_time: self.start_time,
            version: env!("CARGO_PKG_VERSION"),
        });
        self.file.write(&text)
    }

    /// Writes the file with `counters`; a failure is a warning (once, until a write
    /// succeeds again): the daemon goes on serving.
    pub(crate) fn update(&self, counters: Snapshot) {
        let result = self.write(counters);
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Err(e) if !*failing => {
                warn!(
                    "cannot write --stats-file {}: {}",
                    self.path().display(),
                    describe_io(&e)
                );
                *failing = true;
            }
            Ok(()) if *failing => {
                info!("--stats-file {} written again", self.path().display());
                *failing = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmetrics_parser::prometheus::parse_prometheus;
    use openmetrics_parser::PrometheusValue;

    fn sample() -> Sample<'static> {
        Sample {
            counters: Snapshot {
                served: 7,
                rejected: 3,
                empty: 5,
                timed_out: 2,
                io_errors: 1,
                overflow: 4,
                fd_exhausted: 6,
            },
            policy_bytes: 212,
            reloads: 8,
            reload_failures: 9,
            start_time: 1_764_900_000,
            version: "0.1.0",
        }
    }

    /// The value of the sample of family `name` whose labels include `labels`, read
    /// through a real parser of the text format.
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let exposition = parse_prometheus(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let family = exposition
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in\n{text}"));
        let found: Vec<f64> = family
            .iter_samples()
            .filter(|s| {
                let set = s.get_labelset().expect("a sample of a family");
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .map(|s| match &s.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(g) => g.as_f64(),
                other => panic!("{name}: unexpected value {other:?}"),
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in\n{text}");
        found[0]
    }

    #[test]
    fn every_counter_is_in_the_file_under_its_outcome() {
        let text = render(&sample());
        let c = sample().counters;
        for e in Ending::ALL {
            assert_eq!(
                value(
                    &text,
                    "flashpolicyd_connections_total",
                    &[("outcome", e.name())]
                ),
                c.get(e) as f64,
                "{}",
                e.name()
            );
        }
        assert_eq!(
            value(&text, "flashpolicyd_accept_fd_exhausted_total", &[]),
            6.0
        );
        assert_eq!(value(&text, "flashpolicyd_policy_bytes", &[]), 212.0);
        assert_eq!(value(&text, "flashpolicyd_policy_reloads_total", &[]), 8.0);
        assert_eq!(
            value(&text, "flashpolicyd_policy_reload_failures_total", &[]),
            9.0
        );
        assert_eq!(
            value(&text, "flashpolicyd_start_time_seconds", &[]),
            1_764_900_000.0
        );
        assert_eq!(
            value(&text, "flashpolicyd_build_info", &[("version", "0.1.0")]),
            1.0
        );
    }

    #[test]
    fn types_follow_the_naming_rules() {
        let text = render(&sample());
        let exposition = parse_prometheus(&text).unwrap();
        assert_eq!(exposition.families.len(), 7, "{text}");
        for (name, family) in &exposition.families {
            assert!(name.starts_with("flashpolicyd_"), "{name}");
            let kind = format!("{:?}", family.family_type);
            assert_eq!(
                kind == "Counter",
                name.ends_with("_total"),
                "{name} is a {kind}: counters and only counters end in _total"
            );
            assert!(!family.help.is_empty(), "{name} has no help");
        }
    }

    #[test]
    fn each_family_has_its_help_and_type_before_its_samples_and_the_file_ends_in_a_newline() {
        let text = render(&sample());
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let name = lines[i]
                .strip_prefix("# HELP ")
                .and_then(|r| r.split(' ').next())
                .unwrap_or_else(|| panic!("line {i} should be a HELP line: {:?}", lines[i]));
            assert!(
                lines[i + 1].starts_with(&format!("# TYPE {name} ")),
                "{:?}",
                lines[i + 1]
            );
            i += 2;
            let mut samples = 0;
            while i < lines.len() && !lines[i].starts_with('#') {
                assert!(lines[i].starts_with(name), "{:?} under {name}", lines[i]);
                samples += 1;
                i += 1;
            }
            assert!(samples > 0, "{name} has no sample");
        }
    }

    #[test]
    fn a_label_value_is_escaped() {
        let mut s = sample();
        s.version = "1.0 \"beta\"\\\n";
        let text = render(&s);
        assert_eq!(
            value(&text, "flashpolicyd_build_info", &[("version", s.version)]),
            1.0,
            "{text}"
        );
        assert!(text.contains(r#"{version="1.0 \"beta\"\\\n"}"#), "{text}");
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_and_the_next_one_recovers() {
        let dir = std::env::temp_dir().join(format!("flashpolicyd-metrics-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.prom");
        let figures = Arc::new(PolicyFigures::new(b"<cross-domain-policy/>\0"));
        let t = Textfile::create(&path, &figures).unwrap();
        let first = fs::read_to_string(&path).unwrap();
        assert_eq!(value(&first, "flashpolicyd_policy_bytes", &[]), 23.0);
        // The temporary file's place taken by a directory: the write fails, the file
        // keeps what it had.
        fs::create_dir(&t.file.temp).unwrap();
        let counters = Snapshot {
            empty: 3,
            ..Snapshot::default()
        };
        t.update(counters);
        assert_eq!(fs::read_to_string(&path).unwrap(), first);
        assert!(*t.failing.lock().unwrap());
        fs::remove_dir(&t.file.temp).unwrap();
        figures.reloads.fetch_add(1, Ordering::Relaxed);
        t.update(counters);
        let now = fs::read_to_string(&path).unwrap();
        assert_eq!(
            value(
                &now,
                "flashpolicyd_connections_total",
                &[("outcome", "empty")]
            ),
            3.0
        );
        assert_eq!(value(&now, "flashpolicyd_policy_reloads_total", &[]), 1.0);
        assert!(!*t.failing.lock().unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_temporary_file_is_beside_the_file_and_hidden() {
        let f = StatsFile::new(Path::new("/var/lib/node_exporter/flashpolicyd.prom"));
        assert_eq!(
            f.temp,
            Path::new("/var/lib/node_exporter/.flashpolicyd.prom.tmp")
        );
        let f = StatsFile::new(Path::new("x.prom"));
        assert_eq!(f.temp, Path::new(".x.prom.tmp"));
    }
}
