//! Logger set-up: env_logger with our level policy (see the crate docs), an RFC 3339
//! UTC timestamp on every line, and output to stderr or an appended `--log-file` that
//! is reopened when logrotate (or anyone) has moved or removed it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter};

use crate::config::Verbosity;
use crate::error::{Error, Result};

/// The level used when `RUST_LOG` is not set.
pub(crate) fn level_for(verbosity: Verbosity) -> LevelFilter {
    match verbosity {
        Verbosity::Quiet => LevelFilter::Warn,
        Verbosity::Normal => LevelFilter::Info,
        Verbosity::Debug => LevelFilter::Debug,
        Verbosity::Trace => LevelFilter::Trace,
    }
}

/// Opens `path` for appending log lines, creating it if needed.
///
/// # Errors
///
/// [`Error::Io`] naming the file.
pub(crate) fn open_log_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open log file {}", path.display()), e))
}

/// After a failed reopen of a moved log file, wait this long before trying again (the
/// lines meanwhile go on to the moved file).
const REOPEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// An open `--log-file`, with its path so that it can be reopened after rotation.
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
}

impl LogFile {
    /// Opens `path` for appending log lines, creating it if needed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file.
    pub(crate) fn open(path: &Path) -> Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: open_log_file(path)?,
        })
    }
}

/// Appends one line, formatted like the logger's, straight to the file at `path`:
/// for errors that happen where no logger may be installed yet and stderr must stay
/// silent (under `--inetd`). Failures are ignored: there is nowhere left to report them.
pub(crate) fn append_line(path: &Path, level: Level, message: &str) {
    if let Ok(mut f) = open_log_file(path) {
        let line = format!("{} {level} {message}\n", timestamp(SystemTime::now()));
        let _ = f.write_all(line.as_bytes());
    }
}

/// Installs the global logger. `RUST_LOG`, when set, wins over `verbosity`. Lines go to
/// `file` when given, else to stderr.
///
/// # Errors
///
/// [`Error::Setup`] if a logger was already installed.
pub(crate) fn init(verbosity: Verbosity, file: Option<LogFile>) -> Result<()> {
    let mut b = env_logger::Builder::new();
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            b.parse_filters(&spec);
        }
        _ => {
            b.filter_level(level_for(verbosity));
        }
    }
    b.format(|buf, record| {
        writeln!(
            buf,
            "{} {} {}",
            timestamp(SystemTime::now()),
            record.level(),
            record.args()
        )
    });
    match file {
        Some(f) => b.target(env_logger::Target::Pipe(Box::new(LineFile::new(f)))),
        None => b.target(env_logger::Target::Stderr),
    };
    b.try_init()
        .map_err(|e| Error::Setup(format!("cannot install the logger: {e}")))
}

/// A log file written one whole line per `write` (env_logger formats each record into
/// one buffer, and calls us under its lock), so lines from several threads never
/// interleave.
///
/// Rotation: before each line, the path is looked up again (one `stat`, cheap next to
/// the `write` itself); when it is gone or names another file (`mv log log.1`, `rm`),
/// the path is reopened, so the first line after the move already lands in the new
/// file and nothing is written to a moved file that logrotate may be compressing. The
/// file is opened in append mode, so `copytruncate` works as well.
struct LineFile {
    log: LogFile,
    /// Set after a failed reopen: do not retry before this instant.
    retry_at: Option<Instant>,
}

impl LineFile {
    fn new(log: LogFile) -> LineFile {
        LineFile {
            log,
            retry_at: None,
        }
    }

    /// Reopens the path if it no longer names the open file.
    fn follow_rotation(&mut self) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) || !moved(&self.log) {
            return;
        }
        match open_log_file(&self.log.path) {
            Ok(file) => {
                self.log.file = file;
                self.retry_at = None;
            }
            Err(e) => {
                if self.retry_at.is_none() {
                    // Said once per failure, in the file we still hold.
                    let line = format!(
                        "{} {} {e}; lines go on to the moved file until it can be reopened\n",
                        timestamp(SystemTime::now()),
                        Level::Warn
                    );
                    let _ = self.log.file.write_all(line.as_bytes());
                }
                self.retry_at = Some(Instant::now() + REOPEN_RETRY);
            }
        }
    }
}

/// True when the log file's path is gone or names another file than the one open.
#[cfg(unix)]
fn moved(log: &LogFile) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(&log.path), log.file.metadata()) {
        (Ok(now), Ok(open)) => now.dev() != open.dev() || now.ino() != open.ino(),
        (Err(e), _) => e.kind() == io::ErrorKind::NotFound,
        (_, Err(_)) => false,
    }
}

/// Not followed outside Unix: Rust opens files with `FILE_SHARE_DELETE`, so Windows can
/// rename the open log, and the daemon keeps writing into the renamed file; rotate with
/// `copytruncate` there.
#[cfg(not(unix))]
fn moved(_log: &LogFile) -> bool {
    false
}

impl Write for LineFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.follow_rotation();
        self.log.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.log.file.flush()
    }
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (leap day) 12:34:56.789, computed by hand: 11016 days after the epoch.
        let t = UNIX_EPOCH + Duration::from_millis(11_016 * 86_400_000 + 45_296_789);
        assert_eq!(timestamp(t), "2000-02-29T12:34:56.789Z");
        // 2026-11-21 is day 20778.
        let t = UNIX_EPOCH + Duration::from_secs(20_778 * 86_400);
        assert_eq!(timestamp(t), "2026-11-21T00:00:00.000Z");
    }
}
