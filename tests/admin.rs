//! The admin listener and the access log over real sockets: lb and demo backends on
//! loopback (the status page is in stats_page.rs).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::*;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, checked line by line against the text format 0.0.4 as it is parsed.
struct Scrape {
    samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `{a="x",b="y\"z"}` → pairs, with escapes undone; the rest of the line after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

fn bad<T>(n: usize, line: &str, why: &str) -> T {
    panic!("/metrics line {n}: {why}: {line:?}")
}

fn ensure(ok: bool, n: usize, line: &str, why: &str) {
    if !ok {
        bad::<()>(n, line, why);
    }
}

/// Parses a scrape strictly: every line is a HELP, a TYPE or a sample; each family has HELP
/// and TYPE before its samples, which come together; counters end in `_total`; no series
/// appears twice; histogram buckets are cumulative and end with `+Inf` equal to `_count`.
fn parse_scrape(text: &str) -> Scrape {
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen_series = HashSet::new();
    let mut finished_families = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "a scrape ends with a newline");
    for (n, line) in text.lines().enumerate() {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["HELP", name, doc] if is_name(name) && !doc.trim().is_empty() => {
                    ensure(help.insert(name.to_string()), n + 1, line, "second HELP");
                }
                ["TYPE", name, kind] if is_name(name) => {
                    let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                    ensure(known.contains(kind), n + 1, line, "unknown type");
                    let named = *kind != "counter" || name.ends_with("_total");
                    ensure(named, n + 1, line, "a counter's name ends in _total");
                    let first = types.insert(name.to_string(), kind.to_string()).is_none();
                    ensure(first, n + 1, line, "second TYPE");
                }
                ["HELP" | "TYPE", ..] => bad(n + 1, line, "malformed HELP or TYPE"),
                _ => {}
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        ensure(is_name(name), n + 1, line, "bad metric name");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).unwrap_or_else(|e| bad(n + 1, line, &e))
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| bad(n + 1, line, "no space before the value"))
            .split(' ');
        let value =
            parse_value(fields.next().unwrap_or("")).unwrap_or_else(|e| bad(n + 1, line, &e));
        let timestamp_ok = fields.next().is_none_or(|ts| ts.parse::<i64>().is_ok());
        ensure(timestamp_ok, n + 1, line, "bad timestamp");
        ensure(fields.next().is_none(), n + 1, line, "trailing fields");
        let family = if types.contains_key(name) {
            name.to_string()
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| types.get(*f).is_some_and(|k| k == "histogram"))
                .map(str::to_string)
                .unwrap_or_else(|| bad(n + 1, line, "sample without a TYPE"))
        };
        ensure(help.contains(&family), n + 1, line, "sample without a HELP");
        if current.as_ref() != Some(&family) {
            if let Some(prev) = current.replace(family.clone()) {
                finished_families.insert(prev);
            }
            let together = !finished_families.contains(&family);
            ensure(together, n + 1, line, "family split in two places");
        }
        let new = seen_series.insert(format!("{name}{labels:?}"));
        ensure(new, n + 1, line, "series twice");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    let scrape = Scrape { samples };
    scrape.check_histograms(&types);
    scrape
}

impl Scrape {
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
    }

    /// The one sample of `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels).collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    fn check_histograms(&self, types: &HashMap<String, String>) {
        for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
            let mut series: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
            let bucket = format!("{family}_bucket");
            for s in self.samples.iter().filter(|s| s.name == bucket) {
                let mut key = s.labels.clone();
                let le = key.remove("le").expect("a bucket has le");
                let le = parse_value(&le).expect("le is a number");
                series
                    .entry(format!("{key:?}"))
                    .or_default()
                    .push((le, s.value));
            }
            for (key, buckets) in series {
                assert!(
                    buckets
                        .windows(2)
                        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family}{key}: buckets rise in le and count: {buckets:?}"
                );
                let last = buckets.last().expect("buckets");
                assert_eq!(last.0, f64::INFINITY, "{family}{key} ends with +Inf");
                let count = self
                    .samples
                    .iter()
                    .find(|s| {
                        s.name == format!("{family}_count") && format!("{:?}", s.labels) == key
                    })
                    .expect("a _count per series");
                assert_eq!(last.1, count.value, "{family}{key}: +Inf equals _count");
            }
        }
    }
}

fn scrape(admin: std::net::SocketAddr) -> Scrape {
    let r = get(admin, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_scrape(&r.text())
}

#[test]
fn metrics_parse_and_match_the_traffic_sent() {
    let b1 = backend("m1", &[]);
    let b2 = backend("m2", &[]);
    let b3 = backend("m3", &[]);
    let lb = lb(&[&b1, &b2, &b3], &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    let (l1, l2, l3) = (
        b1.addr.to_string(),
        b2.addr.to_string(),
        b3.addr.to_string(),
    );

    // Round robin: m1 m2 m3 m1 m2, then a 404 from m3 and a HEAD on m1.
    let names: Vec<String> = (0..5)
        .map(|_| get(lb.addr, "/").text().trim().to_string())
        .collect();
    assert_eq!(
        names,
        ["m1", "m2", "m3", "m1", "m2"].map(|n| format!("Hello from {n}"))
    );
    assert_eq!(get(lb.addr, "/no/such/page").status, 404);
    let head = request(
        lb.addr,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.status, 200);

    let m = scrape(admin);
    let requests = |b: &str, method: &str, code: &str| {
        m.value(
            "lb_requests_total",
            &[("backend", b), ("method", method), ("code", code)],
        )
    };
    assert_eq!(requests(&l1, "GET", "2xx"), 2.0);
    assert_eq!(requests(&l2, "GET", "2xx"), 2.0);
    assert_eq!(requests(&l3, "GET", "2xx"), 1.0);
    assert_eq!(requests(&l3, "GET", "4xx"), 1.0);
    assert_eq!(requests(&l1, "HEAD", "2xx"), 1.0);
    assert_eq!(requests(&l1, "POST", "2xx"), 0.0);
    assert_eq!(m.sum("lb_requests_total", &[]), 7.0, "nothing else counted");
    assert_eq!(m.sum("lb_requests_total", &[("code", "4xx")]), 1.0);
    for (label, count) in [(&l1, 3.0), (&l2, 2.0), (&l3, 2.0)] {
        let b = [("backend", label.as_str())];
        assert_eq!(m.value("lb_request_duration_seconds_count", &b), count);
        assert_eq!(m.value("lb_backend_up", &b), 1.0);
        assert_eq!(m.value("lb_backend_weight", &b), 1.0);
        assert_eq!(m.sum("lb_backend_failures_total", &b), 0.0);
        assert!(m.value("lb_backend_sent_bytes_total", &b) > 0.0);
        assert!(m.value("lb_backend_received_bytes_total", &b) > 0.0);
        assert!(m.value("lb_request_duration_seconds_sum", &b) > 0.0);
    }
    assert_eq!(m.value("lb_client_connections_total", &[]), 7.0);
    assert_eq!(m.value("lb_fanout_pending_retries", &[]), 0.0);
    assert_eq!(m.sum("lb_local_responses_total", &[]), 0.0);
    assert!(m.value("lb_uptime_seconds", &[]) >= 0.0);
    assert_eq!(m.sum("lb_fanout_copies_total", &[]), 0.0);
    assert_eq!(
        m.sum("lb_fanout_copies_total", &[("result", "retried")]),
        0.0
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            scrape(admin).value("lb_client_connections_open", &[]) == 0.0
        }),
        "closed clients leave the gauge"
    );
}

#[test]
fn fanout_copies_are_counted_sent_delivered_retried_and_pending() {
    let live = backend("live", &[]);
    let failing = backend("failing", &["--fail-rate", "1.0"]);
    let lb = lb(
        &[&live, &failing],
        &[
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "0",
            "--retry-base",
            "10m",
            "--retry-max",
            "10m",
        ],
    );
    let admin = admin_addr(&lb);
    for i in 0..3 {
        let r = request(
            lb.addr,
            format!(
                "POST /register?username=u{i}&password=p HTTP/1.1\r\nHost: t\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 201);
    }
    let (l, f) = (live.addr.to_string(), failing.addr.to_string());
    let copies = |m: &Scrape, b: &str, result: &str| {
        m.value(
            "lb_fanout_copies_total",
            &[("backend", b), ("result", result)],
        )
    };
    assert!(eventually(Duration::from_secs(5), || {
        copies(&scrape(admin), &f, "retried") == 3.0
    }));
    let m = scrape(admin);
    assert_eq!(copies(&m, &l, "sent"), 3.0);
    assert_eq!(copies(&m, &l, "delivered"), 3.0);
    assert_eq!(copies(&m, &f, "sent"), 3.0);
    assert_eq!(copies(&m, &f, "delivered"), 0.0);
    assert_eq!(copies(&m, &f, "spent"), 0.0);
    assert_eq!(m.value("lb_fanout_pending_retries", &[]), 3.0);
    let requests = |b: &str, code: &str| {
        m.value(
            "lb_requests_total",
            &[("backend", b), ("method", "POST"), ("code", code)],
        )
    };
    assert_eq!(requests(&l, "2xx"), 3.0);
    assert_eq!(requests(&f, "5xx"), 3.0);
}

#[test]
fn failures_and_health_checks_are_counted() {
    let good = backend("good", &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let good_addr = good.addr.to_string();
    let lb = lb_addrs(
        &[&dead, &good_addr],
        &[
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "100ms",
            "--fall",
            "1",
        ],
    );
    let admin = admin_addr(&lb);
    assert!(
        eventually(Duration::from_secs(5), || {
            let m = scrape(admin);
            m.value("lb_backend_up", &[("backend", &dead)]) == 0.0
                && m.value(
                    "lb_health_checks_total",
                    &[("backend", &good_addr), ("result", "pass")],
                ) >= 1.0
        }),
        "the dead backend goes down, the good one passes its checks"
    );
    let m = scrape(admin);
    assert!(
        m.value(
            "lb_health_checks_total",
            &[("backend", &dead), ("result", "fail")]
        ) >= 1.0
    );
    assert_eq!(m.value("lb_backend_up", &[("backend", &good_addr)]), 1.0);

    // A lone dead backend: the connect failure and the 502 are both counted against it.
    let lb2 = lb_addrs(
        &[&dead],
        &["--admin", "127.0.0.1:0", "--health-interval", "0"],
    );
    assert_eq!(get(lb2.addr, "/").status, 502);
    let m = scrape(admin_addr(&lb2));
    let d = [("backend", dead.as_str())];
    assert_eq!(
        m.value("lb_backend_failures_total", &[d[0], ("reason", "connect")]),
        1.0
    );
    assert_eq!(m.sum("lb_requests_total", &[d[0], ("code", "5xx")]), 1.0);
}

#[test]
fn healthz_and_everything_else_on_the_admin_port() {
    let b = backend("a", &[]);
    let lb = lb(&[&b], &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);

    // A client that never finishes its head holds up no one.
    let mut slow = connect(admin);
    slow.write_all(b"GET /hea").unwrap();

    let r = get(admin, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(r.header("connection"), Some("close"));
    for path in ["/", "/metricsx", "/stats/", "/healthz/x", "/favicon.ico"] {
        assert_eq!(get(admin, path).status, 404, "{path}");
    }
    assert_eq!(
        get(admin, "/metrics?name=x").status,
        200,
        "a query is ignored"
    );
    let r = request(
        admin,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = request(admin, b"HEAD /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());

    let mut c = Client::new(admin);
    c.send(b"BLAH\x01 / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().unwrap().status, 400);
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "closed after answering"
    );

    let mut c = Client::new(admin);
    c.send(format!("GET /healthz HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000)).as_bytes());
    assert_eq!(c.read_response(false).unwrap().unwrap().status, 431);

    // The traffic port does not serve admin pages.
    assert_eq!(
        get(lb.addr, "/healthz").status,
        404,
        "proxied to the backend"
    );
    let mut rest = Vec::new();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        slow.read_to_end(&mut rest).is_err(),
        "the slow client is still waiting"
    );
}

/// Listening TCP sockets held by process `pid`, from /proc.
fn listening_sockets(pid: u32) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 9 && f[3] == "0A" && inodes.contains(&f[9]))
        .count()
}

#[test]
fn admin_off_means_only_the_traffic_port_listens() {
    let b = backend("o", &[]);
    let off = lb(&[&b], &[]);
    assert_eq!(listening_sockets(off.pid()), 1);
    assert!(!off.log_text().contains("admin interface"));
    let on = lb(&[&b], &["--admin", "127.0.0.1:0"]);
    admin_addr(&on);
    assert_eq!(listening_sockets(on.pid()), 2);
}

#[test]
fn admin_address_in_use_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["-l", "127.0.0.1:0", "-b", "127.0.0.1:9", "--admin", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--admin off"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["-b", "127.0.0.1:9", "--admin", "here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn access_log_writes_one_line_per_request() {
    let b = backend("logged", &[]);
    let label = b.addr.to_string();
    let lb = lb(&[&b], &["--access-log"]);
    let r = request(
        lb.addr,
        b"GET /nothing?x=1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: access-1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    let want = format!("\"GET /nothing?x=1\" {label} 404 ");
    assert!(
        lb.wait_log(&want, Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    let line = lb
        .log_text()
        .lines()
        .find(|l| l.contains(&want))
        .unwrap()
        .to_string();
    assert!(line.contains("127.0.0.1:"), "client address: {line}");
    assert!(line.ends_with("ms access-1"), "duration and id: {line}");
    let bytes: u64 = line
        .split(&want)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(bytes > 0, "{line}");

    get(lb.addr, "/");
    assert!(lb.wait_log(&format!("\"GET /\" {label} 200 "), Duration::from_secs(5)));

    let dead = format!("127.0.0.1:{}", free_port());
    let failing = lb_addrs(&[&dead], &["--access-log", "--health-interval", "0"]);
    assert_eq!(get(failing.addr, "/x").status, 502);
    assert!(
        failing.wait_log(&format!("\"GET /x\" {dead} 502 0 "), Duration::from_secs(5)),
        "{}",
        failing.log_text()
    );

    let quiet = common::lb(&[&b], &[]);
    get(quiet.addr, "/");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!quiet.log_text().contains("\"GET /\""), "off by default");
}
