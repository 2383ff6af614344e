//! lb's log: a small `log::Log` that writes each record as one line on stderr, with an
//! RFC 3339 timestamp in UTC to the millisecond, as text or as JSON (`--log-format`).
//! Ours rather than simple_logger's, which cannot write JSON. The timestamp and the
//! escaping are shared with the access log.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Metadata, Record};

use crate::config::LogFormat;

struct Logger {
    /// lb's own lines.
    level: LevelFilter,
    /// The lines of the libraries lb uses (mio, rustls): their warnings and errors unless
    /// asked for more (`-vvv`).
    others: LevelFilter,
    format: LogFormat,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let target = metadata.target();
        let ours = ["lb", "backend"].iter().any(|crate_name| {
            target
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        });
        metadata.level() <= if ours { self.level } else { self.others }
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = String::with_capacity(160);
        format_record(
            &mut line,
            self.format,
            SystemTime::now(),
            record.level(),
            record.args(),
        );
        // One write per line, so that lines from threads (the demo backend) never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger for the whole process; once only. The libraries' lines come at
/// `level` too with `dependencies`, else only their warnings and errors.
pub fn init(
    level: LevelFilter,
    format: LogFormat,
    dependencies: bool,
) -> Result<(), log::SetLoggerError> {
    let others = if dependencies {
        level
    } else {
        level.min(LevelFilter::Warn)
    };
    log::set_logger(Box::leak(Box::new(Logger {
        level,
        others,
        format,
    })))?;
    log::set_max_level(level);
    Ok(())
}

fn format_record(
    out: &mut String,
    format: LogFormat,
    at: SystemTime,
    level: Level,
    message: &fmt::Arguments,
) {
    let mut text = String::new();
    let _ = write!(text, "{message}");
    let _ = match format {
        LogFormat::Text => writeln!(out, "{} {level:<5} {}", Timestamp(at), Escaped(&text)),
        LogFormat::Json => writeln!(
            out,
            "{{\"time\":\"{}\",\"level\":\"{}\",\"msg\":\"{}\"}}",
            Timestamp(at),
            level.as_str().to_ascii_lowercase(),
            Json(&text)
        ),
    };
}

/// A time as RFC 3339 in UTC with milliseconds: `2026-11-21T14:03:07.123Z`.
pub struct Timestamp(pub SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            since.subsec_millis()
        )
    }
}

/// Year, month and day of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Text for a one-line record: control characters become escapes, so that nothing can
/// end a line or forge another.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Text inside a JSON string: quote, backslash and control characters escaped.
pub struct Json<'a>(pub &'a str);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms)
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(Timestamp(at(0, 0)).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(at(951_827_696, 7)).to_string(),
            "2000-02-29T12:34:56.007Z",
            "a leap day"
        );
        assert_eq!(
            Timestamp(at(1_795_000_000, 999)).to_string(),
            "2026-11-18T11:06:40.999Z"
        );
        assert_eq!(
            Timestamp(at(4_107_542_399, 0)).to_string(),
            "2100-02-28T23:59:59.000Z",
            "2100 is not a leap year"
        );
    }

    #[test]
    fn records_are_one_line_in_either_format() {
        let mut out = String::new();
        let msg = "backend \"a\"\nDOWN\x01";
        format_record(
            &mut out,
            LogFormat::Text,
            at(0, 5),
            Level::Warn,
            &format_args!("{msg}"),
        );
        assert_eq!(
            out,
            "1970-01-01T00:00:00.005Z WARN  backend \"a\"\\nDOWN\\x01\n"
        );
        out.clear();
        format_record(
            &mut out,
            LogFormat::Json,
            at(0, 5),
            Level::Info,
            &format_args!("{msg}"),
        );
        assert_eq!(
            out,
            "{\"time\":\"1970-01-01T00:00:00.005Z\",\"level\":\"info\",\
             \"msg\":\"backend \\\"a\\\"\\nDOWN\\u0001\"}\n"
        );
    }
}
