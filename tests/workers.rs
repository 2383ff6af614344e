//! `--workers 2`: both workers serve and /metrics counts what every worker did, health is
//! checked once and seen by all, a reload and an API drain reach every worker,
//! --max-connections holds for the process, a burst of clients is shared, and a drain ends
//! every worker cleanly.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

/// The value of the sample `name` (with its labels) in a /metrics text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

fn metrics(admin: SocketAddr) -> String {
    get(admin, "/metrics").text()
}

/// One GET on a connection of its own, closed after.
fn get_once(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn both_workers_serve_and_metrics_count_exactly_what_clients_sent() {
    let a = backend("a", &[]);
    let b = backend("b", &[]);
    let lb = lb(&[&a, &b], &["--workers", "2", "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    // 30 connections of one request each, then 3 keep-alive clients of 10 requests each.
    for _ in 0..30 {
        assert_eq!(get_once(lb.addr, "/").status, 200);
    }
    let mut keep: Vec<Client> = (0..3).map(|_| Client::new(lb.addr)).collect();
    for _ in 0..10 {
        for c in &mut keep {
            assert_eq!(c.get("/").status, 200);
        }
    }
    let m = metrics(admin);
    assert_eq!(
        sample(&m, "lb_client_requests_total{code=\"2xx\"}"),
        Some(60.0),
        "{m}"
    );
    assert_eq!(sample(&m, "lb_client_connections_total"), Some(33.0), "{m}");
    assert_eq!(sample(&m, "lb_client_connections_open"), Some(3.0), "{m}");
    let per_backend: f64 = [&a, &b]
        .iter()
        .map(|p| {
            let name = format!(
                "lb_requests_total{{backend=\"{}\",method=\"GET\",code=\"2xx\"}}",
                p.addr
            );
            sample(&m, &name).unwrap_or(0.0)
        })
        .sum();
    assert_eq!(per_backend, 60.0, "{m}");
    let accepted: Vec<f64> = (0..2)
        .map(|k| {
            let name = format!("lb_worker_client_connections_total{{worker=\"{k}\"}}");
            sample(&m, &name).unwrap_or(0.0)
        })
        .collect();
    assert_eq!(accepted.iter().sum::<f64>(), 33.0, "{m}");
    assert!(
        accepted.iter().all(|&n| n >= 5.0),
        "both workers take clients: {accepted:?}"
    );
    let answered: f64 = (0..2)
        .map(|k| {
            let name = format!("lb_worker_client_requests_total{{worker=\"{k}\"}}");
            sample(&m, &name).unwrap_or(0.0)
        })
        .sum();
    assert_eq!(answered, 60.0, "{m}");
    let page = get(admin, "/stats");
    assert_eq!(page.status, 200);
}

#[test]
fn health_is_checked_once_and_a_flip_is_seen_once_by_every_worker() {
    let counted = RawBackend::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let a = backend("a", &[]);
    let b_port = free_port();
    let b = backend_on("b", &format!("127.0.0.1:{b_port}"), &[]);
    let (counted_addr, a_addr, b_addr) = (
        counted.addr.to_string(),
        a.addr.to_string(),
        b.addr.to_string(),
    );
    let mut lb = lb_addrs(
        &[&a_addr, &b_addr, &counted_addr],
        &[
            "--workers",
            "2",
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "100ms",
            "--health-path",
            "/check",
            "--fall",
            "2",
            "--rise",
            "1",
            "-s",
            "n-to-1",
        ],
    );
    let admin = admin_addr(&lb);
    std::thread::sleep(Duration::from_millis(1500));
    let m = metrics(admin);
    let label = format!("backend=\"{counted_addr}\"");
    let pass = sample(
        &m,
        &format!("lb_health_checks_total{{{label},result=\"pass\"}}"),
    );
    let checks_seen = counted.received().matches("GET /check ").count() as f64;
    let pass = pass.expect("the checks are counted");
    assert!(pass >= 5.0, "{pass} checks in 1.5 s");
    assert!(
        (checks_seen - pass).abs() <= 2.0,
        "the backend saw {checks_seen} checks, lb counted {pass}: one checker, not one per worker"
    );
    // n-to-1 sends everything to `a` while it is up; kill it, and both workers must move
    // to `b` with one DOWN line in the log.
    drop(a);
    assert!(
        lb.wait_log("DOWN after", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    for _ in 0..20 {
        let r = get_once(lb.addr, "/");
        if r.status == 200 {
            assert_eq!(served_by(&r), "b");
        }
    }
    let everyone_moved = eventually(Duration::from_secs(3), || {
        (0..10).all(|_| {
            let r = get_once(lb.addr, "/");
            r.status == 200 && served_by(&r) == "b"
        })
    });
    assert!(everyone_moved, "{}", lb.log_text());
    let log = lb.log_text();
    let down = log
        .lines()
        .filter(|l| l.contains(&format!("backend {a_addr} DOWN")))
        .count();
    assert_eq!(down, 1, "one DOWN line, from one worker:\n{log}");
    lb.kill();
}

#[test]
fn a_reload_and_an_api_drain_reach_every_worker() {
    let a = backend("a", &[]);
    let b = backend("b", &[]);
    let c = backend("c", &[]);
    let file = std::env::temp_dir().join(format!("lb-workers-reload-{}", std::process::id()));
    std::fs::write(&file, format!("{}\n{}\n", a.addr, b.addr)).unwrap();
    let path = file.to_str().unwrap().to_string();
    let lb = spawn(
        env!("CARGO_BIN_EXE_lb"),
        &[
            "-l",
            "127.0.0.1:0",
            "-f",
            &path,
            "--workers",
            "2",
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "0",
        ],
    );
    let admin = admin_addr(&lb);
    std::fs::write(&file, format!("{}\n{}\n", a.addr, c.addr)).unwrap();
    lb.signal(libc::SIGHUP);
    assert!(
        lb.wait_log("reloaded", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    std::thread::sleep(Duration::from_millis(200));
    let m0 = metrics(admin);
    let mut seen = std::collections::HashMap::new();
    for _ in 0..40 {
        let r = get_once(lb.addr, "/");
        assert_eq!(r.status, 200);
        *seen.entry(served_by(&r)).or_insert(0) += 1;
    }
    assert_eq!(seen.get("b"), None, "b was removed: {seen:?}");
    assert!(seen.get("c").is_some_and(|&n| n > 0), "{seen:?}");
    let m1 = metrics(admin);
    for k in 0..2 {
        let name = format!("lb_worker_client_requests_total{{worker=\"{k}\"}}");
        let served = sample(&m1, &name).unwrap_or(0.0) - sample(&m0, &name).unwrap_or(0.0);
        assert!(served > 0.0, "worker {k} served after the reload:\n{m1}");
    }
    let drain = request(
        admin,
        format!(
            "POST /backends/{}/drain HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n",
            a.addr
        )
        .as_bytes(),
    );
    assert_eq!(drain.status, 200, "{}", drain.text());
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..40 {
        let r = get_once(lb.addr, "/");
        assert_eq!(r.status, 200);
        assert_eq!(served_by(&r), "c", "a is drained in every worker");
    }
    std::fs::remove_file(&file).ok();
}

#[test]
fn max_connections_holds_for_the_whole_process() {
    let a = backend("a", &[]);
    let lb = lb(
        &[&a],
        &[
            "--workers",
            "2",
            "--max-connections",
            "4",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&lb);
    let mut served: Vec<Client> = (0..4).map(|_| Client::new(lb.addr)).collect();
    for c in &mut served {
        assert_eq!(c.get("/").status, 200);
    }
    let mut waiting: Vec<std::net::TcpStream> = (0..4).map(|_| connect(lb.addr)).collect();
    for s in &mut waiting {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    for s in &mut waiting {
        let mut byte = [0u8; 1];
        let got = std::io::Read::read(s, &mut byte);
        assert!(got.is_err(), "a fifth client was answered: {got:?}");
    }
    let m = metrics(admin);
    assert_eq!(sample(&m, "lb_client_connections_open"), Some(4.0), "{m}");
    // Two leave: two of the waiting ones are taken, whichever worker holds them.
    served.truncate(2);
    let start = Instant::now();
    let mut answered = 0;
    for s in &mut waiting {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        if std::io::Read::read(s, &mut byte).is_ok_and(|n| n == 1) {
            answered += 1;
        }
    }
    assert_eq!(answered, 2, "after {:?}", start.elapsed());
}

#[test]
fn a_drain_with_two_workers_finishes_every_request_and_exits_0() {
    let slow = backend("slow", &["--delay", "1s"]);
    let mut lb = lb(&[&slow], &["--workers", "2", "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    let addr = lb.addr;
    // One after another, so that each finds both workers idle: they take turns.
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let c = std::thread::spawn(move || get_once(addr, "/").status);
            std::thread::sleep(Duration::from_millis(40));
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let m = metrics(admin);
    for k in 0..2 {
        let name = format!("lb_worker_client_connections_open{{worker=\"{k}\"}}");
        assert!(sample(&m, &name).unwrap_or(0.0) >= 1.0, "{m}");
    }
    lb.signal(libc::SIGTERM);
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(5)),
        Some(0),
        "{}",
        lb.log_text()
    );
    let log = lb.log_text();
    assert!(log.contains("worker 0: drained"), "{log}");
    assert!(log.contains("worker 1: drained"), "{log}");
}

/// Clients each worker has accepted so far.
fn accepted_by_worker(admin: SocketAddr) -> [f64; 2] {
    let m = metrics(admin);
    [0, 1].map(|k| {
        let name = format!("lb_worker_client_connections_total{{worker=\"{k}\"}}");
        sample(&m, &name).unwrap_or(0.0)
    })
}

/// A burst that is all in the backlog before lb accepts any of it (as wrk's connections
/// are) is shared: the worker that wakes first takes its share and hands the rest over,
/// and does not take it all one client per turn while the other waits for a CPU.
#[test]
fn a_burst_of_keep_alive_clients_is_shared_between_the_workers() {
    let a = backend("a", &[]);
    let lb = lb(&[&a], &["--workers", "2", "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    for burst in 0..3 {
        let before = accepted_by_worker(admin);
        let mut clients: Vec<Client> = (0..50).map(|_| Client::new(lb.addr)).collect();
        for c in &mut clients {
            assert_eq!(c.get("/").status, 200);
        }
        let after = accepted_by_worker(admin);
        let took = [after[0] - before[0], after[1] - before[1]];
        assert_eq!(took[0] + took[1], 50.0, "burst {burst}: {took:?}");
        assert!(
            took.iter().all(|&n| n <= 30.0),
            "burst {burst}: one worker took more than 60% of 50 clients: {took:?}"
        );
        drop(clients);
        assert!(
            eventually(Duration::from_secs(5), || {
                sample(&metrics(admin), "lb_client_connections_open") == Some(0.0)
            }),
            "burst {burst}: the clients were not seen closed"
        );
    }
}
