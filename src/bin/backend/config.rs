//! Command-line flags.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use getopts::Options;

pub struct Config {
    pub listen: SocketAddr,
    pub name: String,
    pub username: Option<String>,
    pub fail_rate: f64,
    /// Writes answered 500 (and not applied) before the first is applied.
    pub fail_first: u64,
    pub delay: Option<Duration>,
    pub one_at_a_time: bool,
    pub verbose: bool,
}

pub enum Cli {
    Run(Config),
    /// The text to print for --help.
    Help(String),
}

const ROUTES: &str = "\
Routes (text/plain; X-Request-Id is echoed back):
  GET  /                   Hello from NAME
  GET  /ping               pong
  GET  /login              a short page
  GET  /N                  pi to N decimal places, N <= 10000
  POST /register           username, password from the query or a form body: 201
  POST /changePassword     201, or 404 for an unknown user
  GET  /users/USER         'USER registered R changed C password P', or 404
  GET  /status/N           answers status N (400 to 599), e.g. to fail health checks
  GET  /conns              TCP connections accepted since start
  GET  /headers            the request head exactly as received
  GET  /bytes/N            N bytes, Content-Length framed
  GET  /chunked/N          N bytes, chunked
  GET  /eof/N              N bytes, ended by closing the connection
  POST|PUT /echo           the request body (chunked if the request was)
  PUT|POST /sink           the number of body bytes received
Text bodies end with a newline; /headers, /bytes, /chunked, /eof and /echo are exact.
A write repeated with an X-Request-Id already answered (same method, target and body) is
not applied again: it gets the same status and body, marked X-Idempotent-Replay: true.
The same X-Request-Id with a different request gets 409 and is not applied.
--fail-rate applies to every request, /ping included; a failed write is not applied.
HTTP/1.1 requests need a Host header; a malformed request gets 400 and a close.";

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "",
        "listen",
        "address to listen on, e.g. 127.0.0.1:9001 (port 0: any)",
        "ADDR",
    );
    o.optopt("", "name", "server name shown in answers", "NAME");
    o.optopt(
        "",
        "username",
        "only this user may register or change password",
        "U",
    );
    o.optopt(
        "",
        "fail-rate",
        "share of requests answered 500, 0.0 to 1.0",
        "P",
    );
    o.optopt(
        "",
        "fail-first",
        "answer the first N writes (register, changePassword) 500, not applied",
        "N",
    );
    o.optopt(
        "",
        "delay",
        "wait this long before each answer, e.g. 250ms, 2s, 1m",
        "DUR",
    );
    o.optflag(
        "",
        "one-at-a-time",
        "serve one request at a time across all connections",
    );
    o.optflag("v", "verbose", "log every request");
    o.optflag("h", "help", "print this help");
    o
}

/// Parses the arguments after the program name; `Err` is a one-line message.
pub fn parse(args: &[String]) -> Result<Cli, String> {
    let opts = options();
    let m = opts.parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("help") {
        let usage = opts.usage("Usage: backend --listen ADDR --name NAME [options]");
        return Ok(Cli::Help(format!("{usage}\n{ROUTES}")));
    }
    if let Some(extra) = m.free.first() {
        return Err(format!("unexpected argument '{extra}'"));
    }
    let listen = m.opt_str("listen").ok_or("missing --listen ADDR")?;
    let listen = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or(format!("invalid --listen address '{listen}'"))?;
    let name = m.opt_str("name").ok_or("missing --name NAME")?;
    let fail_rate = match m.opt_str("fail-rate") {
        None => 0.0,
        Some(p) => p
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or(format!("invalid --fail-rate '{p}' (want 0.0 to 1.0)"))?,
    };
    let fail_first = match m.opt_str("fail-first") {
        None => 0,
        Some(n) => n
            .parse()
            .map_err(|_| format!("invalid --fail-first '{n}' (want a count)"))?,
    };
    let delay = match m.opt_str("delay") {
        None => None,
        Some(d) => {
            Some(parse_duration(&d).ok_or(format!("invalid --delay '{d}' (e.g. 250ms, 2s, 1m)"))?)
        }
    };
    Ok(Cli::Run(Config {
        listen,
        name,
        username: m.opt_str("username"),
        fail_rate,
        fail_first,
        delay: delay.filter(|d| !d.is_zero()),
        one_at_a_time: m.opt_present("one-at-a-time"),
        verbose: m.opt_present("verbose"),
    }))
}

/// "250ms", "2s", "1m", "1h".
fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let unit_ms = match &s[split..] {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(unit_ms)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        for bad in ["", "5", "ms", "1.5s", "-1s", "3d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
