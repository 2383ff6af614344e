//! The flag table: every flag lb takes, with its help text.

use super::MAX_RETRIES;
use crate::strategy;

/// Every single-value flag may be repeated: the last one wins, so that a wrapper
/// script's defaults can be overridden by arguments passed after them.
pub(super) fn options() -> getopts::Options {
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
        "answers that deliver a POST copy: codes and classes, e.g. 201,202 (default 2xx)",
        "LIST",
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
        "what is sent again: codes, classes, connect-failure, timeout, reset, bad-response, \
         or all (default 5xx,connect-failure,timeout,reset,bad-response)",
        "LIST",
    );
    o.optmulti(
        "",
        "fanout-timeout",
        "wait for an answer for the client, then 504 while copies go on (default 60s)",
        "DUR",
    );
    o.optmulti(
        "",
        "fanout-max-response",
        "largest answer to a POST relayed to its client (default 16m)",
        "BYTES",
    );
    o.optmulti(
        "",
        "journal",
        "directory where POST copies still owed are kept across crashes (default: memory only)",
        "DIR",
    );
    o.optmulti(
        "",
        "journal-sync",
        "always, batch (one fdatasync per loop turn) or off (default batch)",
        "MODE",
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
