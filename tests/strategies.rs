//! Selection strategies and health checks over real sockets.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn three(extra: &[&str]) -> (Vec<Proc>, Proc) {
    let bs = vec![backend("a", &[]), backend("b", &[]), backend("c", &[])];
    let lb = lb(&[&bs[0], &bs[1], &bs[2]], extra);
    (bs, lb)
}

#[test]
fn n_to_1_sends_everything_to_the_first_backend_up() {
    let (mut bs, lb) = three(&["-s", "n-to-1", "--health-interval", "100ms", "--fall", "1"]);
    assert_eq!(tally(lb.addr, 30), HashMap::from([("a".to_string(), 30)]));
    bs[0].kill();
    // The connect-failure retry covers the moment until the health check takes it out.
    assert_eq!(tally(lb.addr, 30), HashMap::from([("b".to_string(), 30)]));
}

#[test]
fn round_robin_is_weighted_and_smooth() {
    let heavy = backend("heavy", &[]);
    let light = backend("light", &[]);
    let h = format!("{},weight=3", heavy.addr);
    let l = light.addr.to_string();
    let lb = lb_addrs(&[&h, &l], &[]);
    let order: Vec<String> = (0..8).map(|_| served_by(&get(lb.addr, "/"))).collect();
    assert_eq!(
        order,
        [
            "heavy", "heavy", "light", "heavy", "heavy", "heavy", "light", "heavy"
        ],
        "3:1, interleaved"
    );
    let old_name = lb_addrs(&[&h, &l], &["-s", "weighted-round-robin"]);
    let counts = tally(old_name.addr, 400);
    let share = counts["heavy"] as f64 / 400.0;
    assert!((0.70..=0.80).contains(&share), "{counts:?}");
}

/// Runs `clients` threads doing GETs for `for_how_long` and counts answers by backend.
fn concurrent_tally(
    addr: std::net::SocketAddr,
    clients: usize,
    for_how_long: Duration,
) -> HashMap<String, usize> {
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let counts = Arc::clone(&counts);
            std::thread::spawn(move || {
                let end = Instant::now() + for_how_long;
                let mut c = Client::new(addr);
                while Instant::now() < end {
                    let r = c.get("/");
                    assert_eq!(r.status, 200);
                    *counts.lock().unwrap().entry(served_by(&r)).or_insert(0) += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    Arc::try_unwrap(counts).unwrap().into_inner().unwrap()
}

#[test]
fn least_connections_prefers_the_fast_backend() {
    let fast = backend("fast", &[]);
    let slow = backend("slow", &["--delay", "100ms"]);
    let lb = lb(&[&fast, &slow], &["-s", "least-connections"]);
    let counts = concurrent_tally(lb.addr, 4, Duration::from_secs(1));
    let fast_n = counts.get("fast").copied().unwrap_or(0);
    let slow_n = counts.get("slow").copied().unwrap_or(0);
    assert!(fast_n > 5 * slow_n, "{counts:?}");
}

#[test]
fn least_response_time_prefers_the_fast_backend() {
    let fast = backend("fast", &[]);
    let slow = backend("slow", &["--delay", "50ms"]);
    let lb = lb(&[&slow, &fast], &["-s", "least-response-time"]);
    let counts = tally(lb.addr, 40);
    assert!(counts.get("slow").copied().unwrap_or(0) <= 2, "{counts:?}");
}

#[test]
fn random_and_power_of_two_spread_the_load() {
    for strategy in ["random", "power-of-two"] {
        let (_bs, lb) = three(&["-s", strategy]);
        let counts = tally(lb.addr, 300);
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!((50..=150).contains(&n), "{strategy}: {counts:?}");
        }
    }
}

/// Which backend each of `clients` source addresses lands on (asserting it is the same each time).
fn placement(addr: std::net::SocketAddr, clients: u8) -> Vec<String> {
    (0..clients)
        .map(|i| {
            let source = Ipv4Addr::new(127, 0, 1, 10 + i);
            let names: Vec<String> = (0..3)
                .map(|_| {
                    let mut c = Client::from_stream(connect_from(source, addr));
                    served_by(&c.get("/"))
                })
                .collect();
            assert!(
                names.iter().all(|n| *n == names[0]),
                "{source} moved: {names:?}"
            );
            names[0].clone()
        })
        .collect()
}

#[test]
fn hash_source_is_sticky_and_moves_only_the_clients_of_a_lost_backend() {
    let (mut bs, lb) = three(&[
        "-s",
        "hash-source",
        "--health-interval",
        "100ms",
        "--fall",
        "1",
    ]);
    let before = placement(lb.addr, 60);
    for name in ["a", "b", "c"] {
        let n = before.iter().filter(|b| *b == name).count();
        assert!((8..=35).contains(&n), "uneven: {before:?}");
    }
    bs[2].kill();
    assert!(lb.wait_log("DOWN", Duration::from_secs(5)));
    let after = placement(lb.addr, 60);
    let mut moved = 0;
    for (b, a) in before.iter().zip(&after) {
        if b == "c" {
            assert_ne!(a, "c");
            moved += 1;
        } else {
            assert_eq!(a, b, "a client of a surviving backend moved");
        }
    }
    assert!((8..=35).contains(&moved), "{moved} of 60 moved");
}

#[test]
fn hash_uri_keeps_a_path_on_one_backend_and_spreads_paths() {
    let (_bs, lb) = three(&["-s", "hash-uri"]);
    let mut used = std::collections::HashSet::new();
    for i in 0..30 {
        let path = format!("/?page={i}");
        let names: Vec<String> = (0..3).map(|_| served_by(&get(lb.addr, &path))).collect();
        assert!(
            names.iter().all(|n| *n == names[0]),
            "{path} moved: {names:?}"
        );
        used.insert(names[0].clone());
    }
    assert_eq!(used.len(), 3, "30 paths should reach all three backends");
}

#[test]
fn two_instances_with_the_same_backends_make_the_same_hash_choices() {
    let bs = [backend("a", &[]), backend("b", &[]), backend("c", &[])];
    // Several lbs behind DNS or ECMP: the lists may even be written in another order.
    let pair = |strategy: &str| {
        let one = lb(&[&bs[0], &bs[1], &bs[2]], &["-s", strategy]);
        let two = lb(&[&bs[2], &bs[0], &bs[1]], &["-s", strategy]);
        (one, two)
    };
    let (one, two) = pair("hash-source");
    let placed = placement(one.addr, 30);
    assert_eq!(placed, placement(two.addr, 30));
    assert!(
        ["a", "b", "c"]
            .iter()
            .all(|n| placed.iter().any(|p| p == n)),
        "{placed:?}"
    );
    let (one, two) = pair("hash-uri");
    for i in 0..30 {
        let path = format!("/?item={i}");
        assert_eq!(
            served_by(&get(one.addr, &path)),
            served_by(&get(two.addr, &path)),
            "{path}"
        );
    }
}

#[test]
fn a_killed_backend_is_taken_out_without_errors_and_comes_back() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut victim = backend_on("victim", &addr, &[]);
    let other = backend("other", &[]);
    let other_addr = other.addr.to_string();
    let lb = lb_addrs(
        &[&addr, &other_addr],
        &["--health-interval", "200ms", "--fall", "2", "--rise", "2"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (stop, log, lb_addr) = (Arc::clone(&stop), Arc::clone(&log), lb.addr);
        std::thread::spawn(move || {
            let mut c = Client::new(lb_addr);
            while !stop.load(Ordering::Relaxed) {
                c.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
                let r = match c.read_response(false) {
                    Ok(Some(r)) => r,
                    other => {
                        log.lock()
                            .unwrap()
                            .push((Instant::now(), 0, format!("{other:?}")));
                        return;
                    }
                };
                log.lock()
                    .unwrap()
                    .push((Instant::now(), r.status, served_by(&r)));
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    victim.kill();
    // Taken down by the active checks or, sooner, by failed requests: both say DOWN.
    assert!(
        lb.wait_log(
            &format!("backend {addr} DOWN after 2 failed"),
            Duration::from_secs(3)
        ),
        "{}",
        lb.log_text()
    );
    let down_after = killed_at.elapsed();
    assert!(
        down_after < Duration::from_millis(200 * 2 + 600),
        "took {down_after:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let _back = backend_on("victim", &addr, &[]);
    let restarted = Instant::now();
    assert!(lb.wait_log(
        &format!("backend {addr} UP after 2 passed checks"),
        Duration::from_secs(3)
    ));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    if load.join().is_err() {
        panic!("load thread failed; lb log:\n{}", lb.log_text());
    }
    let log = log.lock().unwrap();
    let errors: Vec<_> = log.iter().filter(|(_, status, _)| *status != 200).collect();
    assert!(
        errors.is_empty(),
        "a client saw {errors:?}:\n{}",
        lb.log_text()
    );
    assert!(
        log.iter()
            .any(|(t, _, name)| *t > restarted && name == "victim"),
        "victim never came back"
    );
}

#[test]
fn no_backend_up_gives_503_with_retry_after_at_once() {
    let dead = format!("127.0.0.1:{}", free_port());
    let lb = lb_addrs(&[&dead], &["--health-interval", "100ms", "--fall", "1"]);
    assert!(lb.wait_log("DOWN", Duration::from_secs(3)));
    let started = Instant::now();
    let r = get(lb.addr, "/");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_secs(1));
    // On a keep-alive connection each request gets its own 503, once, in order.
    let mut c = Client::new(lb.addr);
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\nX-Request-Id: one\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nX-Request-Id: two\r\n\r\n");
    for id in ["one", "two"] {
        let r = c.read_response(false).unwrap().unwrap();
        assert_eq!((r.status, r.header("x-request-id")), (503, Some(id)));
    }
    c.send(b"GET /c HTTP/1.1\r\nHost: t\r\nX-Request-Id: three\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!((r.status, r.header("x-request-id")), (503, Some("three")));
}
