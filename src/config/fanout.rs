//! The fan-out's flag values: which answers deliver a write (`--success-status`), which
//! failures are sent again (`--retry-on`), where owed copies are kept (`--journal`) and
//! how the journal syncs (`--journal-sync`), and the bound on what POSTs hold in memory
//! (`--max-buffered-bytes`).

use std::fmt;
use std::path::{Path, PathBuf};

use super::flags::{Unit, show};
use super::num;

/// Room for the head that a POST holds beside its body: the forwarded head fits one
/// pooled buffer.
pub const HEAD_ROOM: u64 = crate::state::BUFFER_SIZE as u64;

/// `--max-buffered-bytes`: as given, at least one body of --max-body with its head; by
/// default 4 bodies of --max-body (at least the table's 64m), and no more than
/// --max-connections bodies, the most that can be arriving at once.
pub(super) fn buffered_bound(m: &getopts::Matches) -> Result<u64, String> {
    let given = num(m, "max-buffered-bytes")?;
    bound_of(
        m.opt_present("max-buffered-bytes").then_some(given),
        num(m, "max-body")?,
        num(m, "max-connections")?,
    )
}

/// The bound on what POSTs hold: `given` (checked), or the default for these settings.
pub(super) fn bound_of(given: Option<u64>, max_body: u64, connections: u64) -> Result<u64, String> {
    let one = max_body.saturating_add(HEAD_ROOM);
    if let Some(given) = given {
        if given < one {
            let size = |v| show(Unit::Size, v);
            return Err(format!(
                "--max-buffered-bytes {} is below one body of --max-body ({}) with its head \
                 ({}): give at least {}",
                size(given),
                size(max_body),
                size(HEAD_ROOM),
                size(one)
            ));
        }
        return Ok(given);
    }
    Ok(super::flags::number_flag("max-buffered-bytes")
        .default
        .max(max_body.saturating_mul(4))
        .min(one.saturating_mul(connections))
        .max(one))
}

/// A set of HTTP statuses, written as codes and classes: `201,202`, `2xx`, `2xx,304`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSet {
    /// One bit per status 0..640.
    bits: [u64; 10],
}

impl StatusSet {
    pub const EMPTY: StatusSet = StatusSet { bits: [0; 10] };

    /// Every final status, 200 to 599.
    pub const FINAL: StatusSet = StatusSet::EMPTY.with_range(200, 600);
    /// What passes a health check: any answer but a server error.
    pub const PASSING: StatusSet = StatusSet::EMPTY.with_range(200, 500);
    /// `--success-status`'s default.
    pub const SUCCESS: StatusSet = StatusSet::EMPTY.with_range(200, 300);

    const fn with_range(mut self, from: u16, to: u16) -> StatusSet {
        let mut s = from;
        while s < to {
            self.bits[s as usize / 64] |= 1 << (s % 64);
            s += 1;
        }
        self
    }

    pub fn contains(&self, status: u16) -> bool {
        let s = usize::from(status);
        self.bits
            .get(s / 64)
            .is_some_and(|word| word & (1 << (s % 64)) != 0)
    }

    /// Adds one item, a code (`404`) or a class (`4xx`), of a final status (200-599).
    fn add(&mut self, item: &str) -> Result<(), String> {
        let bad = || format!("'{item}' is not a status (200-599) or a class (2xx-5xx)");
        let b = item.as_bytes();
        *self = match b {
            [c @ b'2'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                let from = u16::from(c - b'0') * 100;
                self.with_range(from, from + 100)
            }
            [b'2'..=b'5', b'0'..=b'9', b'0'..=b'9'] => {
                let code: u16 = item.parse().map_err(|_| bad())?;
                self.with_range(code, code + 1)
            }
            _ => return Err(bad()),
        };
        Ok(())
    }

    /// `--success-status`: a comma-separated list of codes and classes.
    pub(super) fn parse(list: &str) -> Result<StatusSet, String> {
        let mut set = StatusSet::EMPTY;
        for item in list.split(',').map(str::trim) {
            set.add(item)?;
        }
        Ok(set)
    }
}

/// As `parse` takes it: whole classes as `2xx`, other statuses one by one.
impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut items = Vec::new();
        for class in 2..6u16 {
            let codes: Vec<u16> = (class * 100..class * 100 + 100)
                .filter(|c| self.contains(*c))
                .collect();
            if codes.len() == 100 {
                items.push(format!("{class}xx"));
            } else {
                items.extend(codes.iter().map(u16::to_string));
            }
        }
        f.write_str(&items.join(","))
    }
}

/// Which failed POST copies are sent again (`--retry-on`); any other answer that does not
/// deliver the write refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    pub statuses: StatusSet,
    /// Could not connect.
    pub connect_failure: bool,
    /// No answer within --server-timeout.
    pub timeout: bool,
    /// The connection was lost after the request went out, before a whole answer.
    pub reset: bool,
    /// An answer that is not valid HTTP.
    pub bad_response: bool,
}

impl RetryOn {
    /// `--retry-on`'s default: 5xx,connect-failure,timeout,reset,bad-response.
    pub const DEFAULT: RetryOn = RetryOn {
        statuses: StatusSet::EMPTY.with_range(500, 600),
        connect_failure: true,
        timeout: true,
        reset: true,
        bad_response: true,
    };

    /// `all`: every answer but a delivering one is sent again.
    pub const ALL: RetryOn = RetryOn {
        statuses: StatusSet::FINAL,
        connect_failure: true,
        timeout: true,
        reset: true,
        bad_response: true,
    };

    pub(super) fn parse(list: &str) -> Result<RetryOn, String> {
        let mut r = RetryOn {
            statuses: StatusSet::EMPTY,
            connect_failure: false,
            timeout: false,
            reset: false,
            bad_response: false,
        };
        for item in list.split(',').map(str::trim) {
            match item {
                "connect-failure" => r.connect_failure = true,
                "timeout" => r.timeout = true,
                "reset" => r.reset = true,
                "bad-response" => r.bad_response = true,
                "all" => r = RetryOn::ALL,
                _ => r.statuses.add(item).map_err(|e| {
                    format!(
                        "{e}; the list takes codes, classes, connect-failure, timeout, reset, \
                         bad-response or all"
                    )
                })?,
            }
        }
        Ok(r)
    }
}

/// As `parse` takes it.
impl std::fmt::Display for RetryOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == RetryOn::ALL {
            return f.write_str("all");
        }
        let statuses = self.statuses.to_string();
        let kinds = [
            (self.connect_failure, "connect-failure"),
            (self.timeout, "timeout"),
            (self.reset, "reset"),
            (self.bad_response, "bad-response"),
        ];
        let items: Vec<&str> = std::iter::once(statuses.as_str())
            .filter(|s| !s.is_empty())
            .chain(kinds.iter().filter(|(on, _)| *on).map(|(_, name)| *name))
            .collect();
        f.write_str(&items.join(","))
    }
}

impl JournalSync {
    pub fn name(self) -> &'static str {
        match self {
            JournalSync::Off => "off",
            JournalSync::Batch => "batch",
            JournalSync::Always => "always",
        }
    }
}

/// Where owed POST copies are kept (`--journal`): a directory, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalAt {
    Dir(PathBuf),
    /// `postgres://USER@HOST:PORT/DB` (or `postgresql://`), as given.
    Postgres(String),
}

impl JournalAt {
    pub fn parse(s: &str) -> JournalAt {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            JournalAt::Postgres(s.to_string())
        } else {
            JournalAt::Dir(PathBuf::from(s))
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        match self {
            JournalAt::Dir(d) => Some(d),
            JournalAt::Postgres(_) => None,
        }
    }
}

impl fmt::Display for JournalAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalAt::Dir(d) => write!(f, "{}", d.display()),
            JournalAt::Postgres(url) => f.write_str(url),
        }
    }
}

/// When the journal's records reach the disk (`--journal-sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalSync {
    /// Written at the end of each turn, never synced: survives lb's crash, not the machine's.
    Off,
    /// One fdatasync per loop turn, on the journal's own thread (group commit).
    Batch,
    /// Each record synced by itself on the loop thread.
    Always,
}

impl JournalSync {
    pub(super) fn parse(s: &str) -> Result<JournalSync, String> {
        match s {
            "off" => Ok(JournalSync::Off),
            "batch" => Ok(JournalSync::Batch),
            "always" => Ok(JournalSync::Always),
            _ => Err(format!("'{s}' is not one of always, batch, off")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_take_codes_and_classes() {
        let s = StatusSet::parse("2xx").unwrap();
        assert!(s.contains(200) && s.contains(201) && s.contains(299));
        assert!(!s.contains(199) && !s.contains(300) && !s.contains(404));
        let s = StatusSet::parse("201, 202,4XX").unwrap();
        assert!(s.contains(201) && s.contains(202) && s.contains(404));
        assert!(!s.contains(200) && !s.contains(500));
        assert!(!s.contains(u16::MAX), "out of range is never in a set");
        for bad in ["", "1xx", "6xx", "100", "600", "2x", "20", "abc", "201,"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_on_lists() {
        let r = RetryOn::parse("5xx,connect-failure,timeout,reset,bad-response").unwrap();
        assert_eq!(r, RetryOn::DEFAULT);
        assert!(r.statuses.contains(500) && r.statuses.contains(503));
        assert!(!r.statuses.contains(404) && !r.statuses.contains(200));
        assert!(r.connect_failure && r.timeout && r.reset && r.bad_response);
        let r = RetryOn::parse("503,429,timeout").unwrap();
        assert!(r.statuses.contains(429) && r.statuses.contains(503));
        assert!(!r.statuses.contains(500) && !r.connect_failure && r.timeout);
        assert_eq!(RetryOn::parse("all").unwrap(), RetryOn::ALL);
        assert!(RetryOn::ALL.statuses.contains(404) && RetryOn::ALL.statuses.contains(200));
        let e = RetryOn::parse("5xx,sometimes").unwrap_err();
        assert!(
            e.contains("'sometimes'") && e.contains("connect-failure"),
            "{e}"
        );
    }

    #[test]
    fn sets_are_written_back_as_they_are_parsed() {
        for written in ["2xx", "201,202,4xx", "2xx,3xx,4xx", "503"] {
            assert_eq!(StatusSet::parse(written).unwrap().to_string(), written);
        }
        assert_eq!(StatusSet::PASSING.to_string(), "2xx,3xx,4xx");
        for written in [
            "5xx,connect-failure,timeout,reset,bad-response",
            "all",
            "429,503,timeout",
        ] {
            assert_eq!(RetryOn::parse(written).unwrap().to_string(), written);
        }
    }

    #[test]
    fn journal_sync_modes() {
        assert_eq!(JournalSync::parse("batch"), Ok(JournalSync::Batch));
        assert_eq!(JournalSync::parse("always"), Ok(JournalSync::Always));
        assert_eq!(JournalSync::parse("off"), Ok(JournalSync::Off));
        assert!(JournalSync::parse("sometimes").is_err());
    }
}
