//! Command-line flags → `Config`. Durations are written `250ms`, `10s`, `1m`; sizes `64k`, `1m`.
//! `flags.rs` declares the flags, `values.rs` parses single values, `backends.rs` the
//! backend list; this file turns the parsed flags into one `Config`.

mod backends;
mod fanout;
mod flags;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::strategy;

pub use backends::{BackendSpec, parse_backend};
pub use fanout::{JournalSync, RetryOn, StatusSet};
pub use flags::usage;
pub use values::{parse_duration, parse_size};

use backends::parse_backends_file;
use flags::options;
use values::{number, parse_addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub backends: Vec<BackendSpec>,
    pub mode: Mode,
    pub strategy: String,
    pub connect_timeout: Duration,
    pub client_timeout: Duration,
    pub idle_timeout: Duration,
    pub server_timeout: Duration,
    pub retries: u32,
    pub max_body: u64,
    pub max_connections: usize,
    pub pool_size: usize,
    pub health_interval: Duration,
    pub health_timeout: Duration,
    pub health_path: String,
    pub rise: u32,
    pub fall: u32,
    pub fanout: usize,
    /// Answers that deliver a POST copy.
    pub success_status: StatusSet,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub retry_jitter: Duration,
    pub retry_attempts: u32,
    pub retry_on: RetryOn,
    pub fanout_timeout: Duration,
    /// The largest answer to a POST kept to be relayed to its client.
    pub fanout_max_response: u64,
    /// Where owed POST copies are journaled; `None`: in memory only.
    pub journal: Option<PathBuf>,
    pub journal_sync: JournalSync,
    /// How long SIGTERM/SIGINT waits for open work before lb exits anyway.
    pub drain_timeout: Duration,
    pub max_pending: usize,
    /// Where /metrics, /stats and /healthz are served; `None` with `--admin off`.
    pub admin: Option<SocketAddr>,
    /// One info line per request; off by default so that the hot path stays lean.
    pub access_log: bool,
    pub log_level: log::LevelFilter,
}

pub enum Command {
    Run(Box<Config>),
    Help(String),
    Version,
}

/// The most connect retries one request may make; bounds the per-request list of tried backends.
pub const MAX_RETRIES: u32 = 7;
fn opt<T>(
    m: &getopts::Matches,
    name: &str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    match m.opt_strs(name).pop() {
        None => Ok(default),
        Some(v) => parse(&v).map_err(|e| format!("--{name}: {e}")),
    }
}

pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let m = options().parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("help") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("version") {
        return Ok(Command::Version);
    }
    if let Some(extra) = m.free.first() {
        return Err(format!("unexpected argument '{extra}'"));
    }
    let listen = opt(
        &m,
        "listen",
        "127.0.0.1:8080".parse().map_err(|_| "bad default")?,
        parse_addr,
    )?;
    let admin = opt(
        &m,
        "admin",
        Some("127.0.0.1:8081".parse().map_err(|_| "bad default")?),
        |s| match s {
            "off" => Ok(None),
            _ => parse_addr(s).map(Some),
        },
    )?;
    let mut backends = m
        .opt_strs("backend")
        .iter()
        .map(|b| parse_backend(b).map_err(|e| format!("--backend: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = m.opt_strs("backends-file").pop() {
        backends.extend(parse_backends_file(&path)?);
    }
    if backends.is_empty() {
        return Err("no backends: give -b ADDR (repeatable) or -f FILE".into());
    }
    let mode = opt(&m, "mode", Mode::Http, |s| match s {
        "http" => Ok(Mode::Http),
        "tcp" => Ok(Mode::Tcp),
        _ => Err(format!("'{s}' is not a mode (http or tcp)")),
    })?;
    let strategy = m
        .opt_strs("strategy")
        .pop()
        .unwrap_or_else(|| "round-robin".into());
    if !strategy::NAMES.contains(&strategy.as_str()) {
        return Err(format!(
            "--strategy: unknown strategy '{strategy}' (one of: {})",
            strategy::NAMES.join(", ")
        ));
    }
    if mode == Mode::Tcp && !strategy::tcp_compatible(&strategy) {
        return Err(format!(
            "--strategy: {strategy} needs HTTP requests and cannot be used with -m tcp"
        ));
    }
    let retries = opt(&m, "retries", 2, number::<u32>)?;
    if retries > MAX_RETRIES {
        return Err(format!("--retries: at most {MAX_RETRIES}"));
    }
    let verbose = m.opt_count("verbose");
    let log_level = if m.opt_present("quiet") {
        log::LevelFilter::Error
    } else {
        match verbose {
            0 => log::LevelFilter::Info,
            1 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    };
    let positive = |name: &str, n: usize| {
        if n == 0 {
            Err(format!("--{name}: must be at least 1"))
        } else {
            Ok(n)
        }
    };
    Ok(Command::Run(Box::new(Config {
        listen,
        backends,
        mode,
        strategy,
        connect_timeout: opt(
            &m,
            "connect-timeout",
            Duration::from_secs(3),
            parse_duration,
        )?,
        client_timeout: opt(
            &m,
            "client-timeout",
            Duration::from_secs(10),
            parse_duration,
        )?,
        idle_timeout: opt(&m, "idle-timeout", Duration::from_secs(60), parse_duration)?,
        drain_timeout: opt(&m, "drain-timeout", Duration::from_secs(30), parse_duration)?,
        server_timeout: opt(
            &m,
            "server-timeout",
            Duration::from_secs(30),
            parse_duration,
        )?,
        retries,
        max_body: opt(&m, "max-body", 1024 * 1024, parse_size)?,
        max_connections: positive(
            "max-connections",
            opt(&m, "max-connections", 10_000, number::<usize>)?,
        )?,
        pool_size: opt(&m, "pool-size", 128, number::<usize>)?,
        health_interval: opt(
            &m,
            "health-interval",
            Duration::from_secs(2),
            parse_duration,
        )?,
        health_timeout: opt(&m, "health-timeout", Duration::from_secs(1), parse_duration)?,
        health_path: opt(&m, "health-path", "/".to_string(), |s| {
            if s.starts_with('/')
                && !s
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                Ok(s.to_string())
            } else {
                Err(format!("'{s}' is not a path (it starts with /, no spaces)"))
            }
        })?,
        fanout: opt(&m, "fanout", 0, number::<usize>)?,
        success_status: opt(&m, "success-status", StatusSet::SUCCESS, StatusSet::parse)?,
        retry_base: opt(&m, "retry-base", Duration::from_secs(1), parse_duration)?,
        retry_max: opt(&m, "retry-max", Duration::from_secs(64), parse_duration)?,
        retry_jitter: opt(
            &m,
            "retry-jitter",
            Duration::from_millis(100),
            parse_duration,
        )?,
        retry_attempts: positive(
            "retry-attempts",
            opt(&m, "retry-attempts", 100, number::<usize>)?,
        )? as u32,
        retry_on: opt(&m, "retry-on", RetryOn::DEFAULT, RetryOn::parse)?,
        fanout_timeout: opt(
            &m,
            "fanout-timeout",
            Duration::from_secs(60),
            parse_duration,
        )?,
        fanout_max_response: opt(&m, "fanout-max-response", 16 << 20, parse_size)?,
        journal: m.opt_strs("journal").pop().map(PathBuf::from),
        journal_sync: opt(&m, "journal-sync", JournalSync::Batch, JournalSync::parse)?,
        max_pending: positive(
            "max-pending",
            opt(&m, "max-pending", 10_000, number::<usize>)?,
        )?,
        rise: positive("rise", opt(&m, "rise", 2, number::<usize>)?)? as u32,
        fall: positive("fall", opt(&m, "fall", 3, number::<usize>)?)? as u32,
        admin,
        access_log: m.opt_present("access-log"),
        log_level,
    })))
}

#[cfg(test)]
mod tests;
