//! The checker's output: the Nagios status, the findings that set it, and the text:
//! one plugin line `FLASHPOLICY STATUS - summary | perfdata`, then detail lines.

use std::fmt::Write as _;
use std::time::Duration;

/// A Nagios/Icinga plugin status; the exit code is its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// Exit 0.
    Ok = 0,
    /// Exit 1.
    Warning = 1,
    /// Exit 2.
    Critical = 2,
    /// Exit 3: the check itself could not run (usage errors).
    Unknown = 3,
}

impl Status {
    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The process exit code.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// What the check found and how to present it.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The answer to the allow/deny question, which leads the summary.
    verdict: Option<(Status, String)>,
    /// Problems, each with the status it calls for, in the order found.
    findings: Vec<(Status, String)>,
    /// The summary when there is no problem.
    ok_summary: String,
    /// Detail lines printed after the first line.
    details: Vec<String>,
    /// Reply time of the master policy (zero offline).
    time: Duration,
    /// Bytes received from the master port (or read from the file).
    size: usize,
    warning: Option<Duration>,
    critical: Option<Duration>,
}

impl Report {
    /// An empty report with the thresholds of the perfdata.
    pub(crate) fn new(warning: Option<Duration>, critical: Option<Duration>) -> Report {
        Report {
            verdict: None,
            findings: Vec::new(),
            ok_summary: String::new(),
            details: Vec::new(),
            time: Duration::ZERO,
            size: 0,
            warning,
            critical,
        }
    }

    /// Records a problem and the status it calls for.
    pub(crate) fn finding(&mut self, status: Status, text: impl Into<String>) {
        self.findings.push((status, text.into()));
    }

    /// Sets the verdict of the allow/deny question: it leads the summary whatever else
    /// is found, and `status` counts like a finding's.
    pub(crate) fn verdict(&mut self, status: Status, text: impl Into<String>) {
        self.verdict = Some((status, text.into()));
    }

    /// Sets the summary used when nothing is wrong and there is no verdict.
    pub(crate) fn summary(&mut self, text: impl Into<String>) {
        self.ok_summary = text.into();
    }

    /// Adds a detail line.
    pub(crate) fn detail(&mut self, text: impl Into<String>) {
        self.details.push(text.into());
    }

    /// Sets the perfdata values.
    pub(crate) fn measure(&mut self, time: Duration, size: usize) {
        self.time = time;
        self.size = size;
    }

    /// Applies `-w`/`-c` to the reply time.
    pub(crate) fn thresholds(&mut self) {
        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        if let Some(c) = self.critical.filter(|c| self.time > *c) {
            let text = format!("reply time {}s over critical {}s", secs(self.time), secs(c));
            self.finding(Status::Critical, text);
        } else if let Some(w) = self.warning.filter(|w| self.time > *w) {
            let text = format!("reply time {}s over warning {}s", secs(self.time), secs(w));
            self.finding(Status::Warning, text);
        }
    }

    /// The worst status found.
    pub(crate) fn status(&self) -> Status {
        self.findings
            .iter()
            .chain(self.verdict.iter())
            .map(|(s, _)| *s)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// The answer, warnings aside, for comparing players: whether access is allowed
    /// (with a question: the verdict), or whether the policy is usable (without one:
    /// nothing critical).
    pub(crate) fn allows(&self) -> bool {
        match &self.verdict {
            Some((status, _)) => *status < Status::Critical,
            None => self.status() < Status::Critical,
        }
    }

    /// The summary of the plugin line: the verdict (or the summary when there is
    /// none), then the findings of the worst status.
    pub(crate) fn summary_text(&self) -> String {
        let status = self.status();
        let worst: Vec<&str> = self
            .findings
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, t)| t.as_str())
            .collect();
        match &self.verdict {
            Some((s, text)) if *s == status || worst.is_empty() => text.clone(),
            Some((_, text)) => format!("{text}; {}", worst.join("; ")),
            None if worst.is_empty() => self.ok_summary.clone(),
            None => worst.join("; "),
        }
    }

    /// The lines after the plugin line: findings not in the summary, then details.
    pub(crate) fn body(&self) -> Vec<String> {
        let summary = self.summary_text();
        let mut out: Vec<String> = self
            .findings
            .iter()
            .filter(|(_, t)| !summary.contains(t.as_str()))
            .map(|(s, text)| format!("{}: {}", s.label(), text))
            .collect();
        out.extend(self.details.iter().cloned());
        out
    }

    /// The reports of several players as one (`--player all`): the worst status, one
    /// verdict line per player, the `differs` lines, then each report's body under a
    /// header. The perfdata are those of the first report.
    pub(crate) fn combined(parts: &[(&str, Report)], differs: &[String]) -> Report {
        let mut out = match parts.first() {
            Some((_, first)) => Report::new(first.warning, first.critical),
            None => Report::new(None, None),
        };
        if let Some((_, first)) = parts.first() {
            out.measure(first.time, first.size);
        }
        let worst = parts
            .iter()
            .map(|(_, r)| r.status())
            .max()
            .unwrap_or(Status::Ok);
        let verdicts: Vec<String> = parts
            .iter()
            .map(|(name, r)| format!("{name} {}: {}", r.status().label(), r.summary_text()))
            .collect();
        out.verdict(worst, verdicts.join("; "));
        for (name, r) in parts {
            out.detail(format!(
                "{name}: {} - {}",
                r.status().label(),
                r.summary_text()
            ));
        }
        for line in differs {
            out.detail(format!("differs: {line}"));
        }
        for (name, r) in parts {
            out.detail(format!("--- {name} ---"));
            for line in r.body() {
                out.detail(line);
            }
        }
        out
    }

    /// The whole output: the plugin line, then the findings and the details.
    pub(crate) fn render(&self) -> String {
        let status = self.status();
        let summary = self.summary_text();
        let threshold =
            |d: Option<Duration>| d.map_or(String::new(), |d| format!("{:.6}", d.as_secs_f64()));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "FLASHPOLICY {} - {} | time={:.6}s;{};{};0 size={}B",
            status.label(),
            one_line(&summary),
            self.time.as_secs_f64(),
            threshold(self.warning),
            threshold(self.critical),
            self.size
        );
        // Findings already in the summary are not repeated.
        for line in self.body() {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// The text of an UNKNOWN result (usage errors): one line.
pub(crate) fn unknown(message: &str) -> String {
    format!("FLASHPOLICY UNKNOWN - {}\n", one_line(message))
}

/// Makes text safe for the plugin line: no newlines, no `|` (it starts the perfdata).
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Renders received bytes for a person: UTF-8 where valid, control characters other
/// than newline and tab escaped as `\xNN`.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_line_and_perfdata() {
        let mut r = Report::new(None, Some(Duration::from_secs(2)));
        r.summary("policy is valid");
        r.measure(Duration::from_micros(1500), 120);
        r.thresholds();
        assert_eq!(r.status(), Status::Ok);
        assert_eq!(
            r.render(),
            "FLASHPOLICY OK - policy is valid | time=0.001500s;;2.000000;0 size=120B\n"
        );
    }

    #[test]
    fn worst_findings_make_the_summary() {
        let mut r = Report::new(Some(Duration::ZERO), None);
        r.summary("fine");
        r.measure(Duration::from_millis(1), 1);
        r.thresholds();
        r.finding(Status::Critical, "a|b");
        r.finding(Status::Critical, "c\nd");
        assert_eq!(r.status(), Status::Critical);
        let text = r.render();
        assert!(text
            .starts_with("FLASHPOLICY CRITICAL - a/b; c d | time=0.001000s;0.000000;;0 size=1B\n"));
        assert!(text.contains("\nWARNING: reply time 0.001000s over warning 0.000000s\n"));
        assert!(!text.contains("CRITICAL: a|b"), "{text}");
    }

    #[test]
    fn verdict_leads() {
        let mut r = Report::new(None, None);
        r.verdict(Status::Ok, "access allowed");
        r.finding(Status::Warning, "no NUL");
        assert!(r
            .render()
            .starts_with("FLASHPOLICY WARNING - access allowed; no NUL | "));
        r.verdict(Status::Critical, "access denied");
        assert!(r
            .render()
            .starts_with("FLASHPOLICY CRITICAL - access denied | "));
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable(b"a\x01b\nc\0"), "a\\x01b\nc\\x00");
        assert_eq!(unknown("bad\nthing"), "FLASHPOLICY UNKNOWN - bad thing\n");
    }
}
