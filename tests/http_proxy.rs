//! The L7 core over real sockets: lb and demo backends on loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;

/// Idle connections to a backend, from lb's /metrics.
fn idle_connections(admin: std::net::SocketAddr) -> Option<u32> {
    get(admin, "/metrics")
        .text()
        .lines()
        .find(|l| l.starts_with("lb_backend_idle_connections{"))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// More requests in flight than --pool-size: half of their connections stay pooled as they
/// finish (each kept while as many others are busy), for the next burst, instead of
/// closing all but two and connecting again; the housekeeping closes those no request
/// takes.
#[test]
fn a_burst_beyond_the_pool_size_keeps_its_connections_until_they_go_unused() {
    let b = backend("slow", &["--delay", "1s"]);
    let lb = lb(&[&b], &["--pool-size", "2", "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let addr = lb.addr;
            std::thread::spawn(move || get(addr, "/").status)
        })
        .collect();
    for request in burst {
        assert_eq!(request.join().expect("a request of the burst"), 200);
    }
    assert_eq!(idle_connections(admin), Some(4), "{}", lb.log_text());
    assert!(
        eventually(Duration::from_secs(5), || idle_connections(admin)
            == Some(2)),
        "the unused ones are closed: {:?}",
        idle_connections(admin)
    );
}

#[test]
fn round_robin_rotates_over_three_backends() {
    let b1 = backend("server1", &[]);
    let b2 = backend("server2", &[]);
    let b3 = backend("server3", &[]);
    let lb = lb(&[&b1, &b2, &b3], &[]);
    let names: Vec<String> = (0..6)
        .map(|_| get(lb.addr, "/").text().trim().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "Hello from server1",
            "Hello from server2",
            "Hello from server3",
            "Hello from server1",
            "Hello from server2",
            "Hello from server3"
        ]
    );
}

#[test]
fn keep_alive_is_reused_on_both_sides() {
    let b = backend("solo", &[]);
    // No health checks: their connections would be counted too.
    let lb = lb(&[&b], &["--health-interval", "0"]);
    let mut client = Client::new(lb.addr);
    for _ in 0..20 {
        let r = client.get("/");
        assert_eq!(r.status, 200);
        assert!(
            r.header("connection")
                .is_none_or(|v| !v.eq_ignore_ascii_case("close"))
        );
    }
    // One pooled connection from lb, plus this check itself.
    assert_eq!(get(b.addr, "/conns").text().trim(), "2");
}

#[test]
fn forwarded_head_carries_proxy_fields_and_drops_hop_by_hop() {
    let b = backend("h", &[]);
    let lb = lb(&[&b], &[]);
    let r = request(
        lb.addr,
        b"GET /headers HTTP/1.1\r\nHost: example\r\nConnection: close, X-Private\r\nX-Private: 1\r\n\
          X-Forwarded-For: 203.0.113.9\r\nKeep-Alive: 10\r\nX-Custom:  kept as is \r\n\r\n",
    );
    let seen = r.text();
    assert!(
        seen.contains("X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n"),
        "{seen}"
    );
    assert!(seen.contains("X-Forwarded-Proto: http\r\n"), "{seen}");
    assert!(seen.contains("X-Custom:  kept as is \r\n"), "{seen}");
    assert!(!seen.to_ascii_lowercase().contains("x-private"), "{seen}");
    assert!(!seen.to_ascii_lowercase().contains("keep-alive"), "{seen}");
    let id = r
        .header("x-request-id")
        .expect("a generated request id is echoed");
    assert!(seen.contains(&format!("X-Request-Id: {id}\r\n")), "{seen}");

    let r = request(
        lb.addr,
        b"GET /headers HTTP/1.1\r\nHost: example\r\nX-Request-Id: mine-42\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("x-request-id"), Some("mine-42"));
}

#[test]
fn chunked_request_and_response_stream_through() {
    let b = backend("c", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello world");
    assert!(r.chunked);

    let r = c.get("/chunked/100000");
    assert!(r.chunked);
    assert_eq!(r.body.len(), 100_000);
    let r = c.get("/");
    assert_eq!(r.status, 200, "keep-alive survives chunked exchanges");
}

#[test]
fn http10_client_gets_a_dechunked_body() {
    let b = backend("c10", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"GET /chunked/5000 HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert!(!r.chunked);
    assert_eq!(r.body.len(), 5000);
}

#[test]
fn read_until_close_response_is_forwarded_and_closes() {
    let b = backend("e", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    let r = c.get("/eof/30000");
    assert_eq!(r.body.len(), 30000);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn head_and_expect_continue() {
    let b = backend("x", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).unwrap().unwrap();
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(c.get("/").status, 200, "no body followed the HEAD answer");

    c.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let mut interim = [0u8; 25];
    c.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"ping");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.text(), "ping");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = backend("p", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    let mut batch = Vec::new();
    for n in [1, 5, 10, 20] {
        batch.extend_from_slice(format!("GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    c.send(&batch);
    for n in [1, 5, 10, 20] {
        let r = c.read_response(false).unwrap().unwrap();
        assert_eq!(r.text().trim().len(), 2 + n, "{}", r.text());
    }
}

#[test]
fn ten_megabytes_stream_both_ways_in_flat_memory() {
    let b = backend("big", &[]);
    let lb = lb(&[&b], &[]);
    let before = lb.rss_kib();
    let size = 10 * 1024 * 1024;
    let mut c = Client::new(lb.addr);
    c.send(format!("PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").as_bytes());
    let block = vec![b'z'; 64 * 1024];
    for _ in 0..size / block.len() {
        c.stream.write_all(&block).unwrap();
    }
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.text().trim(), size.to_string());

    c.send(format!("GET /bytes/{size} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Read slowly at first so that back-pressure, not buffering, has to hold the bytes.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.body.len(), size);
    let after = lb.rss_kib();
    assert!(
        after < before + 4 * 1024,
        "lb grew from {before} KiB to {after} KiB moving 20 MB"
    );
}

#[test]
fn malformed_requests_get_400_and_a_closed_connection() {
    let b = backend("m", &[]);
    let lb = lb(&[&b], &[]);
    for raw in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ] {
        let mut c = Client::new(lb.addr);
        c.send(raw);
        let r = c.read_response(false).unwrap().unwrap();
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
        assert!(c.closed_within(Duration::from_secs(3)));
    }
    // A malformed chunk in the middle of a streamed body.
    let mut c = Client::new(lb.addr);
    c.send(b"PUT /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 400);
    assert!(c.closed_within(Duration::from_secs(3)));
    assert_eq!(get(b.addr, "/conns").status, 200, "the backend survives");
}

#[test]
fn limits_answer_414_and_431() {
    let b = backend("l", &[]);
    let lb = lb(&[&b], &[]);
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    assert_eq!(request(lb.addr, long.as_bytes()).status, 414);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17000)
    );
    assert_eq!(request(lb.addr, big.as_bytes()).status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(request(lb.addr, many.as_bytes()).status, 431);
}

#[test]
fn slow_head_gets_408() {
    let b = backend("s", &[]);
    let lb = lb(&[&b], &["--client-timeout", "300ms"]);
    let mut c = Client::new(lb.addr);
    c.send(b"GET / HTTP/1.1\r\nHost:");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 408);
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let b = backend("i", &[]);
    let lb = lb(&[&b], &["--idle-timeout", "300ms"]);
    let mut c = Client::new(lb.addr);
    assert_eq!(c.get("/").status, 200);
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn slow_backend_gets_504() {
    let b = backend("slow", &["--delay", "3s"]);
    let lb = lb(&[&b], &["--server-timeout", "300ms"]);
    let r = get(lb.addr, "/");
    assert_eq!(r.status, 504);
    assert!(r.text().contains("did not answer in time"));
}

#[test]
fn unreachable_backends_give_502() {
    let dead1 = free_port().to_string();
    let dead2 = free_port().to_string();
    let a1 = format!("127.0.0.1:{dead1}");
    let a2 = format!("127.0.0.1:{dead2}");
    let lb = lb_addrs(&[&a1, &a2], &[]);
    let r = get(lb.addr, "/");
    assert_eq!(r.status, 502);
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn refused_backend_is_skipped_without_error() {
    let good = backend("good", &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let good_addr = good.addr.to_string();
    let lb = lb_addrs(&[&dead, &good_addr], &[]);
    for _ in 0..6 {
        let r = get(lb.addr, "/");
        assert_eq!(r.status, 200);
        assert_eq!(r.text().trim(), "Hello from good");
    }
}

/// A fake backend that answers with `reply` and closes, for broken responses.
fn fake_backend(reply: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        }
    });
    addr
}

#[test]
fn broken_responses_give_502_or_a_closed_connection() {
    let garbage = fake_backend(b"SSH-2.0-OpenSSH_9.0\r\n\r\n");
    let lb1 = lb_addrs(&[&garbage.to_string()], &["--health-interval", "0"]);
    assert_eq!(get(lb1.addr, "/").status, 502);

    let silent = fake_backend(b"");
    let lb2 = lb_addrs(&[&silent.to_string()], &["--health-interval", "0"]);
    assert_eq!(get(lb2.addr, "/").status, 502);

    // Killed mid-response: the head promised more than came.
    let cut = fake_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little");
    let lb3 = lb_addrs(&[&cut.to_string()], &["--health-interval", "0"]);
    let mut c = Client::new(lb3.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        c.read_response(false).is_err(),
        "a cut body must not look complete"
    );
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn backend_process_killed_mid_response_closes_the_client() {
    let mut b = backend("dying", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"GET /bytes/500000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut first = [0u8; 1024];
    c.stream.read_exact(&mut first).unwrap();
    b.kill();
    let mut sink = vec![0u8; 1 << 20];
    let start = std::time::Instant::now();
    loop {
        match c.stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(start.elapsed() < Duration::from_secs(10), "client hangs"),
        }
    }
}

#[test]
fn a_bad_flag_is_one_line_and_exit_status_2() {
    for args in [
        &["--bogus"][..],
        &[][..],
        &["-b", "127.0.0.1:1", "--idle-timeout", "soon"][..],
        &["-b", "127.0.0.1:1", "-s", "fastest"][..],
        &["-b", "127.0.0.1:1", "-m", "tcp", "-s", "hash-uri"][..],
        &["-b", "no-such-host.invalid:80"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lb"))
            .args(args)
            .output()
            .expect("run lb");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("lb: "), "{err}");
    }
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lb"))
        .arg("--help")
        .output()
        .expect("run lb");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--backend",
        "--backends-file",
        "--mode",
        "--strategy",
        "--connect-timeout",
        "--client-timeout",
        "--idle-timeout",
        "--server-timeout",
        "--retries",
        "--max-body",
        "--max-connections",
        "--health-interval",
        "--rise",
        "--fall",
        "--fanout",
        "--retry-base",
        "--retry-on",
        "--fanout-timeout",
        "--max-pending",
        "--admin",
        "--access-log",
        "--verbose",
        "--quiet",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for name in [
        "round-robin",
        "least-connections",
        "hash-source",
        "power-of-two",
    ] {
        assert!(help.contains(name), "strategy {name} missing from --help");
    }
    assert!(help.matches("default").count() >= 20, "{help}");
}

#[test]
fn past_max_connections_new_clients_wait_in_the_backlog() {
    let b = backend("m", &[]);
    let lb = lb(&[&b], &["--max-connections", "2"]);
    let mut first = Client::new(lb.addr);
    assert_eq!(first.get("/").status, 200);
    let mut second = Client::new(lb.addr);
    assert_eq!(second.get("/").status, 200);
    let mut waiting = Client::new(lb.addr);
    waiting.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        waiting.read_response(false).is_err(),
        "a third client is not served while two are open"
    );
    drop(first);
    waiting.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let r = waiting.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 200, "served once a slot is free");
    assert_eq!(second.get("/").status, 200);
}

#[test]
fn garbage_never_crashes_or_hangs_the_balancer() {
    let b = backend("g", &[]);
    // One attempt per POST copy: a mangled POST that no backend accepts is answered at
    // once (502) instead of waiting for --fanout-timeout while its copies are retried.
    let lb = lb(
        &[&b],
        &[
            "--client-timeout",
            "1s",
            "--retry-attempts",
            "1",
            "--fanout-timeout",
            "2s",
        ],
    );
    let valid = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    // A small xorshift generator: the same inputs every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut input = valid.to_vec();
        if round % 3 == 0 {
            input = (0..(next() % 300)).map(|_| next() as u8).collect();
        } else {
            for _ in 0..(1 + next() % 6) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, b"\r\n:; \x00"[(next() % 6) as usize]),
                }
            }
        }
        let mut s = connect(lb.addr);
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = s.write_all(&input);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        // Whatever lb makes of it, it answers or closes: a read never times out.
        if let Err(e) = s.read_to_end(&mut answer) {
            assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "round {round} hung on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
        if !answer.is_empty() {
            assert!(
                answer.starts_with(b"HTTP/1.1 "),
                "round {round}: {answer:?}"
            );
        }
    }
    assert_eq!(get(lb.addr, "/").status, 200, "still serving");
    assert_eq!(get(b.addr, "/conns").status, 200);
}
