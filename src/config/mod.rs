//! Command-line flags → `Config`. Durations are written `250ms`, `10s`, `1m`; sizes `64k`, `1m`.
//! `flags.rs` declares the flags, `values.rs` parses single values, `backends.rs` the
//! backend list; this file turns the parsed flags into one `Config`.

mod backends;
pub mod check;
pub mod diagnostic;
mod fanout;
pub mod file;
mod flags;
pub mod from_flags;
pub mod model;
mod print;
mod validate;
mod values;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::proxy_protocol::{self, Cidr};
use crate::strategy;
use crate::tls::CertPair;

pub use backends::{
    BackendLine, BackendSpec, FLAGS_POOL, Named, OwnAddrs, UNRESOLVED, check_backend,
    check_backends, parse_backend, parse_line, parse_weight, read_backends_file, resolve_line,
    resolve_site, tls_name,
};
use backends::{BackendList, backend_list};
pub use fanout::{JournalAt, JournalSync, RetryOn, StatusSet};
pub use flags::usage;
pub use values::{Secret, parse_duration, parse_size};

use flags::{HTTP_ONLY, NUMBERS, as_duration, number_flag, options};
use values::{parse_addr, parse_admin_hosts, parse_number, read_token_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the access log goes (`--access-log[=PATH]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTo {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Plain HTTP (or TCP) clients; `None` when only `--tls-listen` was given.
    pub listen: Option<SocketAddr>,
    /// TLS clients, with the certificates below.
    pub tls_listen: Option<SocketAddr>,
    pub tls_certs: Vec<CertPair>,
    /// Roots that `https://` backends are verified against instead of the system's.
    pub backend_ca: Option<String>,
    /// `--accept-proxy`: every client starts with a PROXY header; if the list is not
    /// empty, only from these addresses.
    pub accept_proxy: Option<Vec<Cidr>>,
    /// `--h2c`: the plain listener also takes HTTP/2 with prior knowledge.
    pub h2c: bool,
    /// `--send-proxy`: a PROXY header before every connection to a backend.
    pub send_proxy: Option<proxy_protocol::Version>,
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
    /// `--admin-token-file` as given.
    pub admin_token_file: Option<String>,
    /// `--admin-host`: names besides its address and `localhost` that write actions on the
    /// admin listener may carry as their Host.
    pub admin_hosts: Vec<String>,
    pub mode: Mode,
    /// One of `strategy::NAMES`.
    pub strategy: String,
    pub connect_timeout: Duration,
    pub client_timeout: Duration,
    pub idle_timeout: Duration,
    pub server_timeout: Duration,
    pub retries: u32,
    pub max_body: u64,
    /// POST bodies being received and POST answers held, for the whole process (bytes).
    pub max_buffered_bytes: u64,
    /// Bytes per second a request body must bring over each --client-timeout window.
    pub client_min_rate: u64,
    pub max_connections: usize,
    /// `--max-connections` was given: kept as asked even where the descriptor limit falls
    /// short (with a warning), where the default shrinks to fit it.
    pub max_connections_given: bool,
    /// `--workers`: event loops, each on its own thread.
    pub workers: usize,
    /// `--workers auto`.
    pub workers_auto: bool,
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
    /// How long a removed backend may keep the POST copies it owes before they are given up.
    pub leave_timeout: Duration,
    /// The largest answer to a POST kept to be relayed to its client.
    pub fanout_max_response: u64,
    /// Where owed POST copies are journaled; `None`: in memory only.
    pub journal: Option<JournalAt>,
    pub journal_sync: JournalSync,
    /// How long SIGTERM/SIGINT waits for open work before lb exits anyway.
    pub drain_timeout: Duration,
    /// At most this many POSTs still owed, holding at most this many request bytes; past
    /// either, new POSTs get 503.
    pub max_pending: usize,
    pub max_pending_bytes: u64,
    /// Where /metrics, /stats and /healthz are served; `None` with `--admin off`.
    pub admin: Option<SocketAddr>,
    pub access_log: AccessLogTo,
    pub log_format: LogFormat,
    pub log_level: log::LevelFilter,
    /// `-vvv`: the libraries' own debug and trace lines too.
    pub log_dependencies: bool,
    /// Flags that were given but have no effect, to be logged once at start.
    pub warnings: Vec<String>,
}

pub enum Command {
    Run(Box<Config>),
    /// `lb check -c FILE [--explain 'METHOD URL']`: check a config file without running
    /// it, and say which route a request would take.
    Check {
        file: String,
        explain: Option<String>,
    },
    /// `-c FILE`: run a config file; `-v` or `-q` may set how much is logged.
    RunFile {
        path: String,
        log_level: Option<log::LevelFilter>,
        log_dependencies: bool,
    },
    /// `--print-config`: the config file the other flags mean.
    PrintConfig(Box<Config>),
    Help(String),
    Version,
}

/// The most connect retries one request may make; bounds the per-request list of tried backends.
pub const MAX_RETRIES: u32 = 7;

const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Out of the way of the ports backends tend to use (8080-8083 in the set-ups our users
/// come from); the one Envoy uses for its admin interface.
const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901);

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

/// The value of numeric flag `name`: its default, or the last one given, within its limits.
fn num(m: &getopts::Matches, name: &str) -> Result<u64, String> {
    let f = number_flag(name);
    opt(m, name, f.default, |s| parse_number(f, s))
}

fn duration(m: &getopts::Matches, name: &str) -> Result<Duration, String> {
    num(m, name).map(as_duration)
}

/// Counts are bounded by their flag's maximum, which fits in a u32.
fn small(m: &getopts::Matches, name: &str) -> Result<u32, String> {
    num(m, name).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

pub fn parse_args(args: &[String]) -> Result<Command, String> {
    if args.first().is_some_and(|a| a == "check") {
        return parse_check(&args[1..]);
    }
    let m = options().parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("help") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("version") {
        return Ok(Command::Version);
    }
    if let Some(path) = m.opt_strs("config").pop() {
        return run_file(args, &m, path);
    }
    if let Some(extra) = m.free.first() {
        let hint = if m.opt_present("access-log") {
            " (a file for the access log is written --access-log=PATH)"
        } else {
            ""
        };
        return Err(format!("unexpected argument '{extra}'{hint}"));
    }
    let tls_listen = opt(&m, "tls-listen", None, |s| parse_addr(s).map(Some))?;
    // Without --tls-listen, plain clients are on the default address; with it, only
    // where --listen says.
    let default_listen = match tls_listen {
        Some(_) => None,
        None => Some(DEFAULT_LISTEN),
    };
    let listen = opt(&m, "listen", default_listen, |s| parse_addr(s).map(Some))?;
    let admin = opt(&m, "admin", Some(DEFAULT_ADMIN), |s| match s {
        "off" => Ok(None),
        _ => parse_addr(s).map(Some),
    })?;
    if m.opt_present("h2c") && listen.is_none() {
        return Err(
            "--h2c is for the plain listener, and there is none: give --listen too (the TLS \
             listener offers HTTP/2 by ALPN without it)"
                .into(),
        );
    }
    let listeners: Vec<SocketAddr> = listen.into_iter().chain(tls_listen).collect();
    if let Some(both) = admin.filter(|a| a.port() != 0 && listeners.contains(a)) {
        return Err(format!(
            "--admin {both} is also a traffic listener's address: give another, or --admin off"
        ));
    }
    let (certs, keys) = (m.opt_strs("tls-cert"), m.opt_strs("tls-key"));
    if certs.len() != keys.len() {
        return Err(format!(
            "--tls-cert and --tls-key come in pairs: {} certificate(s), {} key(s)",
            certs.len(),
            keys.len()
        ));
    }
    let tls_certs: Vec<CertPair> = certs
        .into_iter()
        .zip(keys)
        .map(|(cert, key)| CertPair { cert, key })
        .collect();
    match (tls_listen.is_some(), tls_certs.is_empty()) {
        (true, true) => return Err("--tls-listen needs --tls-cert FILE --tls-key FILE".into()),
        (false, false) => return Err("--tls-cert is only used with --tls-listen ADDR".into()),
        _ => {}
    }
    let accept_proxy = match m.opt_strs("accept-proxy-from").pop() {
        Some(list) => Some(
            list.split(',')
                .map(Cidr::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--accept-proxy-from: {e}"))?,
        ),
        None => m.opt_present("accept-proxy").then(Vec::new),
    };
    let send_proxy = opt(&m, "send-proxy", None, |s| match s {
        "v1" => Ok(Some(proxy_protocol::Version::V1)),
        "v2" => Ok(Some(proxy_protocol::Version::V2)),
        _ => Err(format!("'{s}' is not a PROXY protocol version (v1 or v2)")),
    })?;
    let hosts_file = m.opt_strs("hosts-file").pop().map(PathBuf::from);
    let admin_token_file = m.opt_strs("admin-token-file").pop();
    let admin_token = match &admin_token_file {
        Some(path) => Some(read_token_file(path).map_err(|e| format!("--admin-token-file: {e}"))?),
        None => None,
    };
    let mode = opt(&m, "mode", Mode::Http, |s| match s {
        "http" => Ok(Mode::Http),
        "tcp" => Ok(Mode::Tcp),
        _ => Err(format!("'{s}' is not a mode (http or tcp)")),
    })?;
    let BackendList {
        specs: backends,
        flags: backend_flags,
        file: backends_file,
    } = backend_list(
        &m,
        &OwnAddrs::of_flags(listen, tls_listen, admin),
        hosts_file.as_deref(),
    )?;
    let strategy = opt(&m, "strategy", "round-robin", |s| {
        strategy::canonical(s).ok_or_else(|| {
            format!(
                "unknown strategy '{s}' (one of: {})",
                strategy::NAMES.join(", ")
            )
        })
    })?;
    if mode == Mode::Tcp && !strategy::tcp_compatible(strategy) {
        return Err(format!(
            "--strategy: {strategy} needs HTTP requests and cannot be used with -m tcp"
        ));
    }
    if mode == Mode::Tcp {
        let http_only = NUMBERS
            .iter()
            .filter(|f| f.http_only)
            .map(|f| f.name)
            .chain(HTTP_ONLY.iter().copied());
        if let Some(name) = http_only.into_iter().find(|n| m.opt_present(n)) {
            return Err(format!(
                "--{name} applies to HTTP only and does nothing with -m tcp"
            ));
        }
        // In TCP mode the client timeout times only what lb reads before the pipe opens.
        let client_first = m.opt_present("tls-listen")
            || m.opt_present("accept-proxy")
            || m.opt_present("accept-proxy-from");
        if m.opt_present("client-timeout") && !client_first {
            return Err(
                "--client-timeout with -m tcp times TLS handshakes and PROXY headers \
                 only: give it with --tls-listen or --accept-proxy"
                    .into(),
            );
        }
    }
    let (log_level, log_dependencies) = verbosity(&m)?;
    let log_level = log_level.unwrap_or(log::LevelFilter::Info);
    let access_log = match (m.opt_present("access-log"), m.opt_str("access-log")) {
        (false, _) => AccessLogTo::Off,
        (true, None) => AccessLogTo::Stdout,
        (true, Some(p)) if p.is_empty() => return Err("--access-log=: the path is empty".into()),
        (true, Some(p)) => AccessLogTo::File(p.into()),
    };
    let log_format = opt(&m, "log-format", LogFormat::Text, |s| match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("'{s}' is not a log format (text or json)")),
    })?;
    let fanout = num(&m, "fanout")? as usize;
    if fanout > backends.len() {
        return Err(format!(
            "--fanout {fanout} is more than the {} backend(s) given",
            backends.len()
        ));
    }
    let retry_base = duration(&m, "retry-base")?;
    let mut retry_max = duration(&m, "retry-max")?;
    if !m.opt_present("retry-max") {
        // The default cap must not contradict a base given alone.
        retry_max = retry_max.max(retry_base);
    }
    if retry_max < retry_base {
        return Err(format!(
            "--retry-max {} is below --retry-base {}",
            m.opt_strs("retry-max").pop().unwrap_or_default(),
            m.opt_strs("retry-base").pop().unwrap_or_default()
        ));
    }
    let health_interval = duration(&m, "health-interval")?;
    let mut warnings = Vec::new();
    if health_interval.is_zero() {
        let moot = ["health-timeout", "health-path", "rise", "fall"];
        for name in moot.iter().filter(|n| m.opt_present(n)) {
            warnings.push(format!(
                "--{name} is ignored: --health-interval 0 turns health checks off"
            ));
        }
    }
    if !strategy::uses_weights(strategy) && backends.iter().any(|b| b.weight != 1) {
        warnings.push(format!(
            "weight= is ignored: -s {strategy} does not use weights (round-robin does)"
        ));
    }
    let print = m.opt_present("print-config");
    let cfg = Box::new(Config {
        listen,
        tls_listen,
        tls_certs,
        backend_ca: m.opt_strs("backend-ca").pop(),
        accept_proxy,
        h2c: m.opt_present("h2c"),
        send_proxy,
        backends,
        backend_flags,
        backends_file,
        resolve_interval: duration(&m, "resolve-interval")?,
        hosts_file,
        admin_token,
        admin_token_file,
        admin_hosts: parse_admin_hosts(m.opt_strs("admin-host"))?,
        mode,
        strategy: strategy.to_string(),
        connect_timeout: duration(&m, "connect-timeout")?,
        client_timeout: duration(&m, "client-timeout")?,
        idle_timeout: duration(&m, "idle-timeout")?,
        drain_timeout: duration(&m, "drain-timeout")?,
        server_timeout: duration(&m, "server-timeout")?,
        retries: small(&m, "retries")?,
        max_body: num(&m, "max-body")?,
        max_buffered_bytes: fanout::buffered_bound(&m)?,
        client_min_rate: num(&m, "client-min-rate")?,
        max_connections: num(&m, "max-connections")? as usize,
        max_connections_given: m.opt_present("max-connections"),
        workers: opt(&m, "workers", 1, parse_workers)?,
        workers_auto: m.opt_strs("workers").pop().as_deref() == Some("auto"),
        pool_size: num(&m, "pool-size")? as usize,
        health_interval,
        health_timeout: duration(&m, "health-timeout")?,
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
        fanout,
        success_status: opt(&m, "success-status", StatusSet::SUCCESS, StatusSet::parse)?,
        retry_base,
        retry_max,
        retry_jitter: duration(&m, "retry-jitter")?,
        retry_attempts: small(&m, "retry-attempts")?,
        retry_on: opt(&m, "retry-on", RetryOn::DEFAULT, RetryOn::parse)?,
        fanout_timeout: duration(&m, "fanout-timeout")?,
        leave_timeout: duration(&m, "leave-timeout")?,
        fanout_max_response: num(&m, "fanout-max-response")?,
        journal: m.opt_strs("journal").pop().as_deref().map(JournalAt::parse),
        journal_sync: opt(&m, "journal-sync", JournalSync::Batch, JournalSync::parse)?,
        max_pending: num(&m, "max-pending")? as usize,
        max_pending_bytes: num(&m, "max-pending-bytes")?,
        rise: small(&m, "rise")?,
        fall: small(&m, "fall")?,
        admin,
        access_log,
        log_format,
        log_level,
        log_dependencies,
        warnings,
    });
    Ok(if print {
        Command::PrintConfig(cfg)
    } else {
        Command::Run(cfg)
    })
}

/// `-c FILE`: everything is in the file, so a flag beside it (but for how much is
/// logged) would be a second, contradicting source.
fn run_file(args: &[String], m: &getopts::Matches, path: String) -> Result<Command, String> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-c" | "--config" => {
                rest.next();
            }
            a if a.starts_with("--config=") || a.starts_with("-c") => {}
            "--verbose" | "--quiet" => {}
            a if a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].bytes().all(|b| b == b'v') => {}
            "-q" => {}
            a => {
                return Err(format!(
                    "{a}: with -c FILE, everything is set in the file (lb --print-config turns \
                     flags into one)"
                ));
            }
        }
    }
    let (log_level, log_dependencies) = verbosity(m)?;
    Ok(Command::RunFile {
        path,
        log_level,
        log_dependencies,
    })
}

/// What `-v` and `-q` ask: a level for lb's own lines (`None`: nothing asked), and whether
/// the lines of the libraries lb uses come too (`-vvv`; else only their warnings and
/// errors, so that `-vv` is lb's own trace, not mio's).
fn verbosity(m: &getopts::Matches) -> Result<(Option<log::LevelFilter>, bool), String> {
    if m.opt_present("quiet") && m.opt_present("verbose") {
        return Err("-q and -v contradict each other: give one".into());
    }
    let level = match (m.opt_present("quiet"), m.opt_count("verbose")) {
        (true, _) => Some(log::LevelFilter::Error),
        (false, 0) => None,
        (false, 1) => Some(log::LevelFilter::Debug),
        (false, _) => Some(log::LevelFilter::Trace),
    };
    Ok((level, m.opt_count("verbose") >= 3))
}

/// `lb check -c FILE [--explain 'METHOD URL']`.
fn parse_check(args: &[String]) -> Result<Command, String> {
    let mut o = getopts::Options::new();
    o.optopt("c", "config", "the config file to check", "FILE");
    o.optopt(
        "",
        "explain",
        "which route a request takes, and why the ones before it did not",
        "'METHOD URL'",
    );
    let m = o.parse(args).map_err(|e| format!("check: {e}"))?;
    if let Some(extra) = m.free.first() {
        return Err(format!("check: unexpected argument '{extra}'"));
    }
    let file = m
        .opt_str("config")
        .ok_or("check needs the file: lb check -c FILE")?;
    Ok(Command::Check {
        file,
        explain: m.opt_str("explain"),
    })
}

/// The most worker threads `--workers` may ask for.
pub const MAX_WORKERS: usize = 1024;

/// `--workers N|auto`: `auto` is one per core this process may run on.
fn parse_workers(s: &str) -> Result<usize, String> {
    if s == "auto" {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        return Ok(cores.min(MAX_WORKERS));
    }
    match s.parse() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} workers: give 1 to {MAX_WORKERS}, or auto")),
        Err(_) => Err(format!(
            "'{s}' is not a number of workers (1-{MAX_WORKERS} or auto)"
        )),
    }
}

#[cfg(test)]
mod tests;
