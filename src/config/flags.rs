//! The flag table: every flag lb takes, with its help text. Numeric flags (durations,
//! sizes, counts) are declared once in `NUMBERS` with their default, their largest value
//! and what 0 means, and both parsing and `--help` read them from there.

use std::time::Duration;

use super::MAX_RETRIES;
use crate::strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// Milliseconds; written `250ms`, `10s`, `1m`, `1h`.
    Duration,
    /// Bytes; written `1048576`, `64k`, `1m`, `1g`.
    Size,
    Count,
}

/// What 0 does for one flag: every flag has one meaning for it, or refuses it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Zero {
    Refused,
    Means(&'static str),
}

/// A numeric flag: values are whole milliseconds, bytes or counts.
pub(super) struct NumberFlag {
    pub name: &'static str,
    pub unit: Unit,
    pub default: u64,
    pub max: u64,
    pub zero: Zero,
    pub help: &'static str,
    /// Has no effect in TCP mode, so giving it with `-m tcp` is refused.
    pub http_only: bool,
}

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const MIB: u64 = 1024 * 1024;

const fn numeric(
    unit: Unit,
    name: &'static str,
    (default, max): (u64, u64),
    zero: Zero,
    help: &'static str,
    http_only: bool,
) -> NumberFlag {
    NumberFlag {
        name,
        unit,
        default,
        max,
        zero,
        help,
        http_only,
    }
}

/// No wait without a deadline: a timeout of 0 would fire at once, and "no timeout" would
/// leave a state waiting on a peer forever. The maximum is the way to say "very long".
const NO_ZERO: Zero = Zero::Refused;

pub(super) const NUMBERS: &[NumberFlag] = &[
    numeric(
        Unit::Duration,
        "connect-timeout",
        (3 * SEC, 10 * MIN),
        NO_ZERO,
        "backend connect; then the next backend",
        false,
    ),
    numeric(
        Unit::Duration,
        "client-timeout",
        (10 * SEC, HOUR),
        NO_ZERO,
        "to receive a request head, then 408, and each window a body is judged over \
         (--client-min-rate); a TLS handshake or a PROXY header (with -m tcp, only with \
         --tls-listen or --accept-proxy)",
        false,
    ),
    numeric(
        Unit::Duration,
        "idle-timeout",
        (60 * SEC, 24 * HOUR),
        NO_ZERO,
        "idle keep-alive client (HTTP), or no bytes either way (TCP)",
        false,
    ),
    numeric(
        Unit::Duration,
        "server-timeout",
        (30 * SEC, 24 * HOUR),
        NO_ZERO,
        "backend silent this long; then 504",
        true,
    ),
    numeric(
        Unit::Count,
        "retries",
        (2, MAX_RETRIES as u64),
        Zero::Means("tries one backend only"),
        "connect failures and refused h2 streams retried on another backend; a refused stream on \
         the same one if no other is left",
        false,
    ),
    numeric(
        Unit::Size,
        "max-body",
        (MIB, 1024 * MIB),
        NO_ZERO,
        "largest POST body, which is buffered; then 413",
        true,
    ),
    numeric(
        Unit::Size,
        "max-buffered-bytes",
        (64 * MIB, 64 * 1024 * MIB),
        NO_ZERO,
        "bytes of POST bodies still arriving and of POST answers kept, in the whole process; \
         then 503 at once. Not below --max-body + 32k; by default 4 x --max-body if larger",
        true,
    ),
    numeric(
        Unit::Size,
        "client-min-rate",
        (1024, 1024 * MIB),
        NO_ZERO,
        "bytes per second a request body must bring, or a kept POST answer be taken, over \
         each --client-timeout window; then 408 (or a close) for that client",
        true,
    ),
    numeric(
        Unit::Duration,
        "drain-timeout",
        (30 * SEC, 24 * HOUR),
        Zero::Means("exits at the signal, cutting what is open"),
        "after SIGTERM/SIGINT, time to finish open requests and POST copies",
        false,
    ),
    numeric(
        Unit::Count,
        "max-connections",
        (10_000, 1_000_000),
        NO_ZERO,
        "open client connections; past it, new ones wait in the backlog (the default shrinks to fit ulimit -n)",
        false,
    ),
    numeric(
        Unit::Count,
        "pool-size",
        (128, 100_000),
        Zero::Means("keeps none: a new connection per request"),
        "idle keep-alive connections kept per backend",
        true,
    ),
    numeric(
        Unit::Duration,
        "health-interval",
        (2 * SEC, HOUR),
        Zero::Means("turns health checks off"),
        "time between active health checks",
        false,
    ),
    numeric(
        Unit::Duration,
        "health-timeout",
        (SEC, 10 * MIN),
        NO_ZERO,
        "one health check",
        false,
    ),
    numeric(
        Unit::Count,
        "rise",
        (2, 100),
        NO_ZERO,
        "passed checks in a row that bring a backend up",
        false,
    ),
    numeric(
        Unit::Count,
        "fall",
        (3, 100),
        NO_ZERO,
        "failures in a row that take a backend down",
        false,
    ),
    numeric(
        Unit::Count,
        "fanout",
        (0, 1000),
        Zero::Means("sends to all backends, up or not"),
        "backends each POST goes to (at most the number of backends)",
        true,
    ),
    numeric(
        Unit::Duration,
        "retry-base",
        (SEC, HOUR),
        NO_ZERO,
        "first delay before a failed POST copy is sent again",
        true,
    ),
    numeric(
        Unit::Duration,
        "retry-max",
        (64 * SEC, 24 * HOUR),
        NO_ZERO,
        "longest delay between POST retries (not below --retry-base)",
        true,
    ),
    numeric(
        Unit::Duration,
        "retry-jitter",
        (100, HOUR),
        Zero::Means("adds none"),
        "random delay added to each retry, at most",
        true,
    ),
    numeric(
        Unit::Count,
        "retry-attempts",
        (100, 1_000_000),
        NO_ZERO,
        "tries per POST copy before it is given up",
        true,
    ),
    numeric(
        Unit::Duration,
        "leave-timeout",
        (HOUR, 7 * 24 * HOUR),
        NO_ZERO,
        "a removed backend keeps the POST copies it still owes this long; then they are \
         given up",
        true,
    ),
    numeric(
        Unit::Duration,
        "fanout-timeout",
        (60 * SEC, 24 * HOUR),
        NO_ZERO,
        "wait for an answer for a POST's client; then 504, its copies go on",
        true,
    ),
    numeric(
        Unit::Size,
        "fanout-max-response",
        (16 * MIB, 1024 * MIB),
        NO_ZERO,
        "largest refused answer to a POST kept for its client; past it, only its status",
        true,
    ),
    numeric(
        Unit::Duration,
        "resolve-interval",
        (10 * SEC, 24 * HOUR),
        Zero::Means("turns it off (names are still looked up at each SIGHUP)"),
        "backend host names are looked up again this often",
        false,
    ),
    numeric(
        Unit::Count,
        "max-pending",
        (100_000, 1_000_000),
        NO_ZERO,
        "POSTs still being delivered; then 503 at once",
        true,
    ),
    numeric(
        Unit::Size,
        "max-pending-bytes",
        (128 * MIB, 64 * 1024 * MIB),
        NO_ZERO,
        "request bytes (head and body) of the POSTs still being delivered; then 503 at once",
        true,
    ),
];

/// Flags besides the numeric ones that have no effect in TCP mode.
pub(super) const HTTP_ONLY: &[&str] = &[
    "health-path",
    "success-status",
    "retry-on",
    "journal",
    "journal-sync",
    "h2c",
];

/// The numeric flag called `name`.
pub(super) fn number_flag(name: &str) -> &'static NumberFlag {
    NUMBERS
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("--{name} is not in the flag table"))
}

/// A value of `unit` the way it is written on the command line: the largest unit that
/// divides it exactly.
pub(super) fn show(unit: Unit, v: u64) -> String {
    let units: &[(u64, &str)] = match unit {
        Unit::Duration => &[(HOUR, "h"), (MIN, "m"), (SEC, "s"), (1, "ms")],
        Unit::Size => &[(1024 * MIB, "g"), (MIB, "m"), (1024, "k"), (1, "")],
        Unit::Count => &[(1, "")],
    };
    match units.iter().find(|(n, _)| v > 0 && v.is_multiple_of(*n)) {
        Some((n, suffix)) => format!("{}{suffix}", v / n),
        None => "0".into(),
    }
}

pub(super) fn as_duration(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Every single-value flag may be repeated: the last one wins, so that a wrapper
/// script's defaults can be overridden by arguments passed after them.
pub(super) fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optmulti(
        "c",
        "config",
        "run the config file FILE (TOML; see lb check -c FILE); the other flags are for \
         running without one, but -v and -q",
        "FILE",
    );
    o.optmulti(
        "l",
        "listen",
        "address to accept clients on (default 127.0.0.1:8080)",
        "ADDR",
    );
    o.optmulti(
        "",
        "tls-listen",
        "address to accept TLS clients on (beside --listen, or instead of its default)",
        "ADDR",
    );
    o.optmulti(
        "",
        "tls-cert",
        "PEM certificate chain for --tls-listen; repeat with --tls-key for more names \
         (SNI), the first is the default",
        "FILE",
    );
    o.optmulti(
        "",
        "tls-key",
        "PEM private key of the --tls-cert in the same position",
        "FILE",
    );
    o.optmulti(
        "b",
        "backend",
        "a backend, host:port, http://host:port or https://host:port, optional weight 1-1000 \
         (repeatable)",
        "ADDR[,weight=N]",
    );
    o.optmulti(
        "",
        "backend-ca",
        "PEM roots that https backends are verified against (default: the system's)",
        "FILE",
    );
    o.optflag(
        "",
        "h2c",
        "the plain listener also takes HTTP/2 from clients that start with it (prior \
         knowledge); the TLS listener offers HTTP/2 by ALPN without it",
    );
    o.optflag(
        "",
        "accept-proxy",
        "every client connection starts with a PROXY protocol header (v1 or v2)",
    );
    o.optmulti(
        "",
        "accept-proxy-from",
        "like --accept-proxy, and connections from other addresses are refused",
        "CIDR,...",
    );
    o.optmulti(
        "",
        "send-proxy",
        "send a PROXY protocol header before each connection to a backend",
        "v1|v2",
    );
    o.optmulti(
        "",
        "workers",
        "event loops, one thread each, or auto for one per core (default 1, at most 1024)",
        "N|auto",
    );
    o.optmulti(
        "f",
        "backends-file",
        "file with one backend per line, # comments",
        "FILE",
    );
    o.optmulti(
        "m",
        "mode",
        "http (L7) or tcp (L4 pass-through) (default http)",
        "MODE",
    );
    let names = strategy::NAMES.join(", ");
    o.optmulti(
        "s",
        "strategy",
        &format!(
            "backend selection: {names} (default round-robin, weighted; \
             weighted-round-robin is another name for it)"
        ),
        "NAME",
    );
    for f in NUMBERS {
        let hint = match f.unit {
            Unit::Duration => "DUR",
            Unit::Size => "BYTES",
            Unit::Count => "N",
        };
        let zero = match f.zero {
            Zero::Refused => "0 is refused".to_string(),
            Zero::Means(what) => format!("0 {what}"),
        };
        let tcp = if f.http_only { ", HTTP only" } else { "" };
        let help = format!(
            "{} (default {}, at most {}; {zero}{tcp})",
            f.help,
            show(f.unit, f.default),
            show(f.unit, f.max),
        );
        o.optmulti("", f.name, &help, hint);
    }
    o.optmulti(
        "",
        "health-path",
        "path that HTTP health checks GET (default /, HTTP only)",
        "PATH",
    );
    o.optmulti(
        "",
        "success-status",
        "answers that deliver a POST copy: codes and classes, e.g. 201,202 (default 2xx, \
         HTTP only)",
        "LIST",
    );
    o.optmulti(
        "",
        "retry-on",
        "what is sent again: codes, classes, connect-failure, timeout, reset, bad-response, \
         or all (default 5xx,connect-failure,timeout,reset,bad-response; HTTP only)",
        "LIST",
    );
    o.optmulti(
        "",
        "journal",
        "directory, or postgres://USER@HOST:PORT/DB, where POST copies still owed are \
         kept across crashes (default: memory only; HTTP only)",
        "DIR|URL",
    );
    o.optmulti(
        "",
        "journal-sync",
        "always, batch (one fdatasync per loop turn) or off (default batch, HTTP only)",
        "MODE",
    );
    o.optmulti(
        "",
        "admin",
        "address for /metrics, /stats, /healthz and /backends, or off (default 127.0.0.1:9901)",
        "ADDR|off",
    );
    o.optmulti(
        "",
        "admin-token-file",
        "file whose first line is the token that /backends writes must carry \
         (default: writes only when --admin is on loopback)",
        "FILE",
    );
    o.optmulti(
        "",
        "admin-host",
        "a name the admin listener is reached by: /backends writes need a Host that is \
         an IP address, localhost, or such a name (repeatable)",
        "NAME",
    );
    o.optmulti(
        "",
        "hosts-file",
        "names listed in this hosts(5)-format file resolve from it, read at every lookup",
        "FILE",
    );
    o.optflagopt(
        "",
        "access-log",
        "one line per request (HTTP) or session (TCP), whoever answered: \
         to stdout, or with --access-log=PATH appended to a file (default off)",
        "PATH",
    );
    o.optmulti(
        "",
        "log-format",
        "text or json, for the log and the access log (default text)",
        "FORMAT",
    );
    o.optflagmulti(
        "v",
        "verbose",
        "more logging: debug, then trace, then the libraries' trace too (not with -q)",
    );
    o.optflag("q", "quiet", "log errors only (not with -v)");
    o.optflag(
        "",
        "print-config",
        "print the config file that the other flags mean, and exit (see lb check -c FILE)",
    );
    o.optflag(
        "V",
        "version",
        "print the version and the commit it was built from, and exit",
    );
    o.optflag("h", "help", "print this help and exit");
    o
}

pub fn usage() -> String {
    let mut text = options().usage("Usage: lb [options] -b ADDR [-b ADDR ...]");
    text.push_str(
        "\nDurations are written 250ms, 10s, 1m or 1h (a bare number is seconds); sizes 1048576, \
         64k, 1m or 1g.\nA bad flag or value, or flags that contradict each other, print one \
         line and exit with status 2.\n",
    );
    text
}
