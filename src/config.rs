//! Command-line flags → `Config`. Durations are written `250ms`, `10s`, `1m`; sizes `64k`, `1m`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// As the operator wrote it, without the scheme.
    pub label: String,
    pub weight: u32,
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

/// Which failed POST copies are sent again (`--retry-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    /// Could not connect, or the connection was lost before an answer.
    pub connect_failure: bool,
    /// No answer within --server-timeout.
    pub timeout: bool,
    /// A 5xx answer, or a broken one.
    pub server_error: bool,
    pub client_error: bool,
    /// Any other status that is not --success-status.
    pub other: bool,
}

impl RetryOn {
    pub const ALL: RetryOn = RetryOn {
        connect_failure: true,
        timeout: true,
        server_error: true,
        client_error: true,
        other: true,
    };

    fn parse(list: &str) -> Result<RetryOn, String> {
        let mut r = RetryOn {
            connect_failure: false,
            timeout: false,
            server_error: false,
            client_error: false,
            other: false,
        };
        for item in list.split(',').map(str::trim) {
            match item {
                "connect-failure" => r.connect_failure = true,
                "timeout" => r.timeout = true,
                "5xx" => r.server_error = true,
                "4xx" => r.client_error = true,
                "other" => r.other = true,
                "all" => r = RetryOn::ALL,
                _ => {
                    return Err(format!(
                        "unknown '{item}' (a list of 5xx, 4xx, connect-failure, timeout, other, all)"
                    ));
                }
            }
        }
        Ok(r)
    }
}

pub enum Command {
    Run(Box<Config>),
    Help(String),
    Version,
}

/// The most connect retries one request may make; bounds the per-request list of tried backends.
pub const MAX_RETRIES: u32 = 7;

/// Every single-value flag may be repeated: the last one wins, so that a wrapper
/// script's defaults can be overridden by arguments passed after them.
fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optmulti(
        "l",
        "listen",
        "address to accept clients on (default 127.0.0.1:8080)",
        "ADDR",
    );
    o.optmulti(
        "b",
        "backend",
        "a backend, host:port or http://host:port, optional weight (repeatable)",
        "ADDR[,weight=N]",
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
        &format!("backend selection: {names} (default round-robin)"),
        "NAME",
    );
    o.optmulti(
        "",
        "connect-timeout",
        "backend connect timeout (default 3s)",
        "DUR",
    );
    o.optmulti(
        "",
        "client-timeout",
        "time to receive a request head, then 408 (default 10s)",
        "DUR",
    );
    o.optmulti(
        "",
        "idle-timeout",
        "idle keep-alive connection timeout (default 60s)",
        "DUR",
    );
    o.optmulti(
        "",
        "server-timeout",
        "backend inactivity timeout, then 504 (default 30s)",
        "DUR",
    );
    o.optmulti(
        "",
        "retries",
        &format!("connect failures retried on another backend (default 2, at most {MAX_RETRIES})"),
        "N",
    );
    o.optmulti(
        "",
        "max-body",
        "largest body that is buffered, else 413 (default 1m)",
        "BYTES",
    );
    o.optmulti(
        "",
        "drain-timeout",
        "on SIGTERM/SIGINT, how long to finish open requests and POST copies (default 30s)",
        "DUR",
    );
    o.optmulti(
        "",
        "max-connections",
        "open client connections at most (default 10000)",
        "N",
    );
    o.optmulti(
        "",
        "pool-size",
        "idle keep-alive connections kept per backend (default 128)",
        "N",
    );
    o.optmulti(
        "",
        "health-interval",
        "time between active health checks, 0 turns them off (default 2s)",
        "DUR",
    );
    o.optmulti(
        "",
        "health-timeout",
        "health check timeout (default 1s)",
        "DUR",
    );
    o.optmulti(
        "",
        "health-path",
        "path that HTTP health checks GET (default /)",
        "PATH",
    );
    o.optmulti(
        "",
        "rise",
        "passed checks in a row that bring a backend up (default 2)",
        "N",
    );
    o.optmulti(
        "",
        "fall",
        "failures in a row that take a backend down (default 3)",
        "N",
    );
    o.optmulti(
        "",
        "fanout",
        "backends each POST goes to, 0 means all (default 0)",
        "N",
    );
    o.optmulti(
        "",
        "success-status",
        "status that counts as a delivered POST (default 201)",
        "CODE",
    );
    o.optmulti(
        "",
        "retry-base",
        "first delay before a failed POST copy is sent again (default 1s)",
        "DUR",
    );
    o.optmulti(
        "",
        "retry-max",
        "longest delay between POST retries (default 64s)",
        "DUR",
    );
    o.optmulti(
        "",
        "retry-jitter",
        "random delay added to each retry, at most (default 100ms)",
        "DUR",
    );
    o.optmulti(
        "",
        "retry-attempts",
        "tries per POST copy before it is given up (default 100)",
        "N",
    );
    o.optmulti(
        "",
        "retry-on",
        "failures retried: 5xx,4xx,connect-failure,timeout,other (default all)",
        "LIST",
    );
    o.optmulti(
        "",
        "fanout-timeout",
        "wait for a first success, then 504 (default 60s)",
        "DUR",
    );
    o.optmulti(
        "",
        "max-pending",
        "POSTs still being delivered at most, then 503 (default 10000)",
        "N",
    );
    o.optmulti(
        "",
        "admin",
        "address for /metrics, /stats and /healthz, or off (default 127.0.0.1:8081)",
        "ADDR|off",
    );
    o.optflag(
        "",
        "access-log",
        "log one line per request at info level (default off)",
    );
    o.optflagmulti("v", "verbose", "more logging (repeat for more)");
    o.optflag("q", "quiet", "log errors only");
    o.optflag("V", "version", "print the version and exit");
    o.optflag("h", "help", "print this help and exit");
    o
}

pub fn usage() -> String {
    options().usage("Usage: lb [options] -b ADDR [-b ADDR ...]")
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration '{s}' (write 250ms, 10s or 1m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("bad duration '{s}' (write 250ms, 10s or 1m)")),
    }
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.as_bytes().last() {
        Some(b'k') => (&lower[..lower.len() - 1], 1024),
        Some(b'm') => (&lower[..lower.len() - 1], 1024 * 1024),
        Some(b'g') => (&lower[..lower.len() - 1], 1024 * 1024 * 1024),
        _ => (lower.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size '{s}' (write 1048576, 64k or 1m)"))
}

/// `host:port`, `http://host:port[/]`, optionally followed by `,weight=N`. Host names are resolved now.
pub fn parse_backend(s: &str) -> Result<BackendSpec, String> {
    let mut parts = s.trim().split(',');
    let addr_part = parts.next().unwrap_or("").trim();
    let mut weight = 1;
    for opt in parts {
        match opt.trim().split_once('=') {
            Some(("weight", w)) => {
                weight = w
                    .trim()
                    .parse()
                    .ok()
                    .filter(|w| *w > 0 && *w <= 1000)
                    .ok_or_else(|| format!("bad weight in backend '{s}' (1 to 1000)"))?;
            }
            _ => {
                return Err(format!(
                    "bad option '{opt}' in backend '{s}' (only weight=N)"
                ));
            }
        }
    }
    let label = addr_part
        .strip_prefix("http://")
        .unwrap_or(addr_part)
        .trim_end_matches('/');
    if label.is_empty() || label.contains('/') || label.contains("://") {
        return Err(format!(
            "bad backend '{s}' (write host:port or http://host:port)"
        ));
    }
    let addr = label
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve backend '{label}': {e}"))?
        .next()
        .ok_or_else(|| format!("backend '{label}' resolves to no address"))?;
    Ok(BackendSpec {
        addr,
        label: label.to_string(),
        weight,
    })
}

fn parse_backends_file(path: &str) -> Result<Vec<BackendSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read backends file {path}: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| parse_backend(line).map_err(|e| format!("{path}:{}: {e}", i + 1)))
        .collect()
}

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

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("bad address '{s}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))
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
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Result<Config, String> {
        match parse_args(&args(s))? {
            Command::Run(c) => Ok(*c),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn backends_in_both_forms_with_weights() {
        let b = parse_backend("http://127.0.0.1:9001/").unwrap();
        assert_eq!(b.label, "127.0.0.1:9001");
        assert_eq!(b.weight, 1);
        let b = parse_backend("127.0.0.1:9002,weight=3").unwrap();
        assert_eq!(b.weight, 3);
        assert!(parse_backend("127.0.0.1:9002,weight=0").is_err());
        assert!(parse_backend("127.0.0.1:9002,color=red").is_err());
        assert!(parse_backend("127.0.0.1").is_err());
        assert!(parse_backend("ftp://127.0.0.1:21").is_err());
        assert_eq!(parse_backend("localhost:9001").unwrap().addr.port(), 9001);
    }

    #[test]
    fn defaults_and_errors() {
        let c = run("-b 127.0.0.1:9001").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.mode, Mode::Http);
        assert_eq!(c.retries, 2);
        assert_eq!(c.max_body, 1 << 20);
        assert_eq!(c.client_timeout, Duration::from_secs(10));
        assert!(run("").unwrap_err().contains("no backends"));
        assert!(run("-b 127.0.0.1:1 --bogus").is_err());
        assert!(
            run("-b 127.0.0.1:1 -s nope")
                .unwrap_err()
                .contains("unknown strategy")
        );
        assert!(run("-b 127.0.0.1:1 -m udp").is_err());
        assert!(
            run("-b 127.0.0.1:1 -m tcp -s hash-uri")
                .unwrap_err()
                .contains("-m tcp")
        );
        assert!(run("-b 127.0.0.1:1 -m tcp -s hash-source").is_ok());
        assert!(run("-b 127.0.0.1:1 --retries 99").is_err());
        assert!(
            run("-b 127.0.0.1:1 --idle-timeout soon")
                .unwrap_err()
                .contains("--idle-timeout")
        );
        assert_eq!(c.drain_timeout, Duration::from_secs(30));
        assert!(
            run("-b 127.0.0.1:1 --drain-timeout later")
                .unwrap_err()
                .contains("--drain-timeout")
        );
        let c = run("-b 127.0.0.1:1 --drain-timeout 5s").unwrap();
        assert_eq!(c.drain_timeout, Duration::from_secs(5));
        assert!(matches!(parse_args(&args("-h")), Ok(Command::Help(_))));
        let c = run("-b 127.0.0.1:1 -l 127.0.0.1:1 -l 127.0.0.1:2").unwrap();
        assert_eq!(c.listen.port(), 2, "the last of a repeated flag wins");
        let c = run("-b 127.0.0.1:1 --retry-on 5xx,timeout --fanout 2").unwrap();
        assert!(c.retry_on.server_error && c.retry_on.timeout && !c.retry_on.client_error);
        assert_eq!(c.fanout, 2);
        assert!(!c.retry_on.other);
        assert!(run("-b 127.0.0.1:1 --retry-on 6xx").is_err());
        assert!(run("-b 127.0.0.1:1 --success-status 404").is_err());
    }

    #[test]
    fn admin_address_or_off_and_access_log() {
        let c = run("-b 127.0.0.1:9001").unwrap();
        assert_eq!(c.admin, Some("127.0.0.1:8081".parse().unwrap()));
        assert!(!c.access_log);
        let c = run("-b 127.0.0.1:9001 --admin off --access-log").unwrap();
        assert_eq!(c.admin, None);
        assert!(c.access_log);
        let c = run("-b 127.0.0.1:9001 --admin 127.0.0.1:0").unwrap();
        assert_eq!(c.admin.map(|a| a.port()), Some(0));
        assert!(
            run("-b 127.0.0.1:9001 --admin nowhere")
                .unwrap_err()
                .starts_with("--admin: ")
        );
        assert!(usage().contains("--admin ADDR|off"));
        assert!(usage().contains("--access-log"));
    }

    #[test]
    fn backends_file_with_comments() {
        let path = std::env::temp_dir().join(format!("lb-servers-{}.txt", std::process::id()));
        std::fs::write(
            &path,
            "# servers\nhttp://127.0.0.1:9001\n\n127.0.0.1:9002 # two\n",
        )
        .unwrap();
        let c = run(&format!("-f {}", path.display())).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.backends[1].addr.port(), 9002);
    }
}
