//! `--stats-file`: the counters in the Prometheus text exposition format, for
//! node_exporter's textfile collector. [`render`] is pure; [`StatsFile::write`] replaces
//! the file atomically (a temporary file in the same directory, then a rename), so the
//! collector never reads half a file.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::stats::{Ending, Snapshot};

/// Everything the textfile shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample<'a> {
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
pub fn render(s: &Sample<'_>) -> String {
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
pub struct StatsFile {
    path: PathBuf,
    temp: PathBuf,
}

impl StatsFile {
    /// The file at `path`; nothing is written yet. The temporary file is
    /// `.NAME.tmp` in the same directory (a rename does not cross file systems; the
    /// textfile collector reads only `*.prom`, so it never sees the temporary file).
    pub fn new(path: &Path) -> StatsFile {
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
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to the temporary file, then renames it over the file. On failure
    /// the temporary file is removed and the previous file (if any) is left as it was.
    ///
    /// # Errors
    ///
    /// The `io::Error` of the step that failed (directory missing or not writable, the
    /// path is a directory, disk full...).
    pub fn write(&self, text: &str) -> io::Result<()> {
        let result = fs::File::create(&self.temp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&self.temp, &self.path));
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
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
