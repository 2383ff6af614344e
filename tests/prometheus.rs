//! `/metrics` through Prometheus' own Python parser (prometheus_client, from PyPI), with
//! many flag combinations and some traffic of each kind. `.ci/run` installs the parser;
//! elsewhere the test skips with a message when it is missing.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::python::in_ci;
use common::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/check_metrics.py"
);

enum Checked {
    Ok,
    Missing(String),
}

/// Runs the parser on `scrape`; panics with its reason when it refuses it.
fn check(scrape: &str, families: &[&str]) -> Checked {
    let mut child = match Command::new("python3")
        .arg(SCRIPT)
        .args(families)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Checked::Missing(format!("no python3: {e}")),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(scrape.as_bytes())
        .expect("write the scrape");
    drop(stdin);
    let mut said = String::new();
    let _ = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut said);
    match child.wait().expect("python3 ran").code() {
        Some(0) => Checked::Ok,
        Some(3) => Checked::Missing(said),
        _ => panic!("{said}\n--- the scrape:\n{scrape}"),
    }
}

/// A scrape of lb started with `flags` in front of `backends`, after `traffic` ran.
fn scrape_after(backends: &[&str], flags: &[&str], traffic: impl Fn(&Proc)) -> String {
    let mut args = vec!["--admin", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let lb = lb_addrs(backends, &args);
    traffic(&lb);
    let r = get(admin_addr(&lb), "/metrics");
    assert_eq!(r.status, 200);
    r.text()
}

const COMMON: &[&str] = &[
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "lb_backend_up",
    "lb_backend_failures",
];
const HTTP: &[&str] = &[
    "lb_client_requests",
    "lb_requests",
    "lb_request_duration_seconds",
];
const TCP: &[&str] = &["lb_tcp_sessions", "lb_tcp_session_duration_seconds"];

#[test]
fn prometheus_client_parses_metrics_with_any_flags() {
    let b1 = backend("p1", &[]);
    let b2 = backend("p2", &["--fail-rate", "0.5"]);
    // With --fanout 1 a POST's one copy is retried at its backend until delivered (1 s,
    // 2 s, 4 s...): that run has no failing backend, or its POST could outlast the read.
    let b3 = backend("p3", &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let (l1, l2, l3) = (
        b1.addr.to_string(),
        b2.addr.to_string(),
        b3.addr.to_string(),
    );
    let by_name = format!("localhost:{}", b1.addr.port());
    let weighted = format!("{l2},weight=3");
    let http_traffic = |lb: &Proc| {
        for _ in 0..6 {
            get(lb.addr, "/");
        }
        get(lb.addr, "/nothing-here");
        post(lb.addr, "/register?username=p&password=q");
        request(lb.addr, b"GET / HTTP/1.1\r\n\r\n");
    };
    let tcp_traffic = |lb: &Proc| {
        for _ in 0..3 {
            let mut s = connect(lb.addr);
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        // Sessions are counted in the histogram once closed.
        std::thread::sleep(Duration::from_millis(100));
    };
    let runs: Vec<(Vec<&str>, Vec<&str>, bool)> = vec![
        (vec![&l1, &l2], vec![], true),
        (
            vec![&l1, &weighted, &dead],
            vec!["--health-interval", "100ms"],
            true,
        ),
        (
            vec![&by_name, &l3],
            vec![
                "-s",
                "least-connections",
                "--health-interval",
                "0",
                "--fanout",
                "1",
            ],
            true,
        ),
        (
            vec![&l1, &l2],
            vec![
                "--server-timeout",
                "5m",
                "--access-log",
                "--log-format",
                "json",
            ],
            true,
        ),
        (vec![&l1, &l2, &dead], vec!["-m", "tcp"], false),
        (
            vec![&l1],
            vec!["-m", "tcp", "-s", "hash-source", "--idle-timeout", "2h"],
            false,
        ),
    ];
    for (backends, flags, http) in runs {
        let text = if http {
            scrape_after(&backends, &flags, http_traffic)
        } else {
            scrape_after(&backends, &flags, tcp_traffic)
        };
        let mut families = COMMON.to_vec();
        families.extend_from_slice(if http { HTTP } else { TCP });
        match check(&text, &families) {
            Checked::Ok => {}
            Checked::Missing(why) if !in_ci() => {
                eprintln!("skipped: {why}");
                return;
            }
            Checked::Missing(why) => panic!("{why}: in CI, .ci/run installs it"),
        }
        if flags.contains(&"5m") {
            assert!(
                text.contains("le=\"300\"}"),
                "buckets reach --server-timeout 5m"
            );
        }
        if !http {
            assert!(
                !text.contains("lb_requests_total"),
                "no HTTP families in TCP mode"
            );
        }
    }
}

#[test]
fn the_checker_refuses_what_prometheus_refuses() {
    let good = "# HELP a_total x\n# TYPE a_total counter\na_total{b=\"1\"} 1\n";
    match check(good, &["a"]) {
        Checked::Ok => {}
        Checked::Missing(why) if !in_ci() => return eprintln!("skipped: {why}"),
        Checked::Missing(why) => panic!("{why}"),
    }
    for bad in [
        "a_total{b=\"1\"} 1\na_total{b=\"1\"} 2\n",
        "a_total{b=\"1} 1\n",
        "a total 1\n",
    ] {
        let refused = std::panic::catch_unwind(|| check(bad, &[])).is_err();
        assert!(refused, "{bad:?} passed");
    }
}
