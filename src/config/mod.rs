//! Command-line flags → `Config`. Durations are written `250ms`, `10s`, `1m`; sizes `64k`, `1m`.
//! `flags.rs` declares the flags, `values.rs` parses single values, `backends.rs` the
//! backend list; this file turns the parsed flags into one `Config`.

mod backends;
mod flags;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::strategy;

pub use backends::{
    BackendLine, BackendSpec, parse_backend, parse_line, parse_weight, read_backends_file,
    repeated_label, resolve_line,
};
pub use flags::usage;
pub use values::{RetryOn, Secret, parse_duration, parse_size};

use flags::options;
use values::{number, parse_addr, read_token_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Every backend at start: the `-b` ones, then the file's.
    pub backends: Vec<BackendSpec>,
    /// The `-b` backends as written: a reload keeps them and re-resolves their names.
    pub backend_flags: Vec<BackendLine>,
    /// `-f`: what SIGHUP reads again.
    pub backends_file: Option<String>,
    /// Names given in the backend list are looked up again this often; zero: never.
    pub resolve_interval: Duration,
    /// Names listed in this file resolve from it, read again at every lookup.
    pub hosts_file: Option<PathBuf>,
    /// The token that write actions on the admin listener must carry.
    pub admin_token: Option<Secret>,
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
    pub success_status: u16,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub retry_jitter: Duration,
    pub retry_attempts: u32,
    pub retry_on: RetryOn,
    pub fanout_timeout: Duration,
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
    let hosts_file = m.opt_strs("hosts-file").pop().map(PathBuf::from);
    let hosts = hosts_file.as_deref();
    let backend_flags = m
        .opt_strs("backend")
        .iter()
        .map(|b| parse_line(b).map_err(|e| format!("--backend: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let backends_file = m.opt_strs("backends-file").pop();
    let mut lines = backend_flags.clone();
    if let Some(path) = &backends_file {
        lines.extend(read_backends_file(path)?);
    }
    if lines.is_empty() {
        return Err("no backends: give -b ADDR (repeatable) or -f FILE".into());
    }
    if let Some(label) = repeated_label(lines.iter().map(|l| l.label.as_str())) {
        return Err(format!("backend {label} is listed twice"));
    }
    let backends = lines
        .into_iter()
        .map(|l| resolve_line(l, hosts))
        .collect::<Result<Vec<_>, _>>()?;
    let admin_token = match m.opt_strs("admin-token-file").pop() {
        Some(path) => Some(read_token_file(&path).map_err(|e| format!("--admin-token-file: {e}"))?),
        None => None,
    };
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
        backend_flags,
        backends_file,
        resolve_interval: opt(
            &m,
            "resolve-interval",
            Duration::from_secs(10),
            parse_duration,
        )?,
        hosts_file,
        admin_token,
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
        success_status: opt(&m, "success-status", 201, |s| {
            number::<u16>(s).and_then(|n| {
                if (200..300).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("{n} is not a 2xx status"))
                }
            })
        })?,
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
        retry_on: opt(&m, "retry-on", RetryOn::ALL, RetryOn::parse)?,
        fanout_timeout: opt(
            &m,
            "fanout-timeout",
            Duration::from_secs(60),
            parse_duration,
        )?,
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
