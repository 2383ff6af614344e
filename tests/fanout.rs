//! POST fan-out over real sockets: lb and demo backends on loopback, small retry flags.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn flags(extra: &[&'static str]) -> Vec<&'static str> {
    FAST_RETRIES.iter().chain(extra).copied().collect()
}

#[test]
fn every_backend_gets_each_write_exactly_once_despite_failures() {
    let b1 = backend("server1", &[]);
    let b2 = backend("server2", &[]);
    let flaky = backend("server3", &["--fail-rate", "0.5"]);
    // Passive health must not take the flaky one out: it would only delay it.
    let lb = lb(&[&b1, &b2, &flaky], &flags(&["--health-interval", "0"]));
    for i in 0..10 {
        let started = Instant::now();
        let r = post(lb.addr, &format!("/register?username=user{i}&password=p"));
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the first success answers at once"
        );
        assert!(r.header("x-request-id").is_some());
    }
    for b in [&b1, &b2, &flaky] {
        for i in 0..10 {
            let user = format!("user{i}");
            assert!(
                eventually(Duration::from_secs(10), || registered(b, &user) == 1),
                "{user} on {} registered {} times",
                b.addr,
                registered(b, &user)
            );
        }
    }
}

#[test]
fn a_backend_started_late_still_gets_the_write() {
    let b1 = backend("server1", &[]);
    let late_port = free_port();
    let late_addr = format!("127.0.0.1:{late_port}");
    let b1_addr = b1.addr.to_string();
    let lb = lb_addrs(&[&b1_addr, &late_addr], &flags(&[]));
    let r = post(lb.addr, "/register?username=jack&password=x");
    assert_eq!(r.status, 201);
    std::thread::sleep(Duration::from_secs(2));
    let late = backend_on("late", &late_addr, &[]);
    assert!(eventually(Duration::from_secs(10), || registered(
        &late, "jack"
    ) == 1));
    assert_eq!(registered(&b1, "jack"), 1);
}

#[test]
fn only_the_backend_that_knows_the_user_answers_201() {
    let b1 = backend("server1", &["--username", "tom"]);
    let b2 = backend("server2", &["--username", "jack"]);
    let b3 = backend("server3", &["--username", "rob"]);
    let lb = lb(
        &[&b1, &b2, &b3],
        &flags(&["--retry-on", "5xx,connect-failure,timeout"]),
    );
    let r = post(lb.addr, "/register?username=jack&password=x");
    assert_eq!(r.status, 201);
    assert!(r.text().contains("server2"), "{}", r.text());
    assert_eq!(registered(&b2, "jack"), 1);
}

#[test]
fn all_down_gives_503_at_once_and_nothing_is_queued() {
    let addrs = [free_port(), free_port()].map(|p| format!("127.0.0.1:{p}"));
    let lb = lb_addrs(&[&addrs[0], &addrs[1]], &flags(&[]));
    assert!(
        eventually(Duration::from_secs(5), || get(lb.addr, "/").status == 503),
        "the health checks take both down"
    );
    let started = Instant::now();
    let r = post(lb.addr, "/register?username=ann&password=x");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(1), "at once");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("x-request-id").is_some());
    let backends = addrs.map(|a| backend_on("late", &a, &[]));
    assert!(eventually(Duration::from_secs(5), || get(lb.addr, "/")
        .status
        == 200));
    std::thread::sleep(Duration::from_millis(500));
    for b in &backends {
        assert_eq!(registered(b, "ann"), 0, "a refused write is never sent");
    }
}

#[test]
fn a_504_says_the_write_is_still_being_delivered_and_it_is() {
    let ports = [free_port(), free_port(), free_port()];
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    // No health checks: lb cannot know they are down, so the copies go out and retry.
    let lb = lb_addrs(
        &refs,
        &flags(&["--fanout-timeout", "500ms", "--health-interval", "0"]),
    );
    let started = Instant::now();
    let r = post(lb.addr, "/register?username=ann&password=x");
    assert_eq!(r.status, 504);
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(r.text().contains("still being delivered"), "{}", r.text());
    let id = r.header("x-request-id").expect("request id").to_string();
    assert!(r.text().contains(&id));
    let backends: Vec<Proc> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| backend_on(&format!("s{i}"), a, &[]))
        .collect();
    for b in &backends {
        assert!(eventually(Duration::from_secs(10), || registered(b, "ann") == 1));
    }
}

#[test]
fn fanout_two_sends_exactly_two_copies() {
    let bs = [backend("a", &[]), backend("b", &[]), backend("c", &[])];
    let lb = lb(&[&bs[0], &bs[1], &bs[2]], &flags(&["--fanout", "2"]));
    for i in 0..6 {
        assert_eq!(
            post(lb.addr, &format!("/register?username=u{i}&password=p")).status,
            201
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..6 {
        let copies: u32 = bs.iter().map(|b| registered(b, &format!("u{i}"))).sum();
        assert_eq!(copies, 2, "u{i}");
    }
}

#[test]
fn chunked_post_body_and_expect_continue_are_buffered_then_fanned_out() {
    let b1 = backend("a", &[]);
    let b2 = backend("b", &[]);
    let lb = lb(&[&b1, &b2], &flags(&[]));
    let mut c = Client::new(lb.addr);
    c.send(
        b"POST /register HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n\r\n",
    );
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut c.stream, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"9\r\nusername=\r\nb\r\nzoe&passwor\r\n3\r\nd=1\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 201);
    assert!(eventually(Duration::from_secs(5), || registered(
        &b1, "zoe"
    ) == 1
        && registered(&b2, "zoe") == 1));
    assert_eq!(c.get("/").status, 200, "the connection stays usable");
}

#[test]
fn oversized_post_gets_413() {
    let b = backend("a", &[]);
    let lb = lb(&[&b], &flags(&["--max-body", "1k"]));
    let body = "x".repeat(2000);
    let r = request(
        lb.addr,
        format!(
            "POST /register HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413);
    let mut c = Client::new(lb.addr);
    c.send(b"POST /register HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        c.send(format!("1f4\r\n{}\r\n", "y".repeat(500)).as_bytes());
    }
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 413);
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn too_many_pending_writes_get_503_and_nothing_is_dropped() {
    let dead = format!("127.0.0.1:{}", free_port());
    let lb = lb_addrs(
        &[&dead],
        &flags(&[
            "--max-pending",
            "2",
            "--fanout-timeout",
            "200ms",
            "--health-interval",
            "0",
        ]),
    );
    assert_eq!(post(lb.addr, "/register?username=a&password=1").status, 504);
    assert_eq!(post(lb.addr, "/register?username=b&password=1").status, 504);
    let r = post(lb.addr, "/register?username=c&password=1");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        get(lb.addr, "/").status,
        502,
        "GETs still flow while writes wait"
    );
    let late = backend_on("late", &dead, &[]);
    assert!(eventually(Duration::from_secs(10), || registered(
        &late, "a"
    ) == 1
        && registered(&late, "b") == 1));
    assert_eq!(registered(&late, "c"), 0);
}

#[test]
fn ordinary_answers_are_relayed_at_once_and_never_retried() {
    let bs = [backend("a", &[]), backend("b", &[]), backend("c", &[])];
    let lb = lb(
        &[&bs[0], &bs[1], &bs[2]],
        &flags(&["--admin", "127.0.0.1:0"]),
    );
    let admin = admin_addr(&lb);
    let started = Instant::now();
    let r = post_body(lb.addr, "/echo", "hello");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    let r = post_body(lb.addr, "/no/such/path", "x=1");
    assert_eq!((r.status, r.text().as_str()), (404, "not found\n"));
    assert!(r.header("x-request-id").is_some());
    assert!(started.elapsed() < Duration::from_secs(2), "both at once");
    std::thread::sleep(Duration::from_millis(300));
    for b in &bs {
        assert_eq!(copies(admin, b.addr, "sent"), 2.0);
        assert_eq!(copies(admin, b.addr, "delivered"), 1.0);
        assert_eq!(copies(admin, b.addr, "refused"), 1.0);
        assert_eq!(copies(admin, b.addr, "retried"), 0.0);
    }
    assert!(eventually(Duration::from_secs(3), || {
        metric(admin, "lb_fanout_writes_owed") == 0.0
    }));
    assert!(lb.log_text().contains("refused by"), "{}", lb.log_text());
}

#[test]
fn a_backend_failing_then_succeeding_gets_exactly_one_delivered_copy() {
    let good = backend("good", &[]);
    let flaky = backend("flaky", &["--fail-first", "2"]);
    // Checks on (passive health needs them) but slow: a backend taken down by its 500s
    // would stay down for the whole test.
    let lb = lb(
        &[&good, &flaky],
        &flags(&["--admin", "127.0.0.1:0", "--health-interval", "10s"]),
    );
    let admin = admin_addr(&lb);
    let r = post(lb.addr, "/register?username=kim&password=p");
    assert_eq!(r.status, 201);
    assert!(eventually(Duration::from_secs(5), || registered(
        &flaky, "kim"
    ) == 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(registered(&flaky, "kim"), 1);
    assert_eq!(copies(admin, flaky.addr, "sent"), 3.0);
    assert_eq!(copies(admin, flaky.addr, "retried"), 2.0);
    assert_eq!(copies(admin, flaky.addr, "delivered"), 1.0);
    assert_eq!(copies(admin, good.addr, "delivered"), 1.0);
    assert_eq!(
        metric(
            admin,
            &format!("lb_backend_up{{backend=\"{}\"}}", flaky.addr)
        ),
        1.0,
        "500s on writes do not take a backend down"
    );
}

#[test]
fn the_username_flow_answers_201_and_leaves_nothing_pending() {
    let b1 = backend("server1", &["--username", "tom"]);
    let b2 = backend("server2", &["--username", "jack"]);
    let b3 = backend("server3", &["--username", "rob"]);
    let mut lb = lb(
        &[&b1, &b2, &b3],
        &flags(&["--max-pending", "3", "--admin", "127.0.0.1:0"]),
    );
    let refused = |b: &Proc| {
        let metrics = get(admin_addr(&lb), "/metrics").text();
        let line = format!(
            "lb_fanout_copies_total{{backend=\"{}\",result=\"refused\"}} ",
            b.addr
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    };
    for n in 1..=5 {
        let r = post(lb.addr, "/register?username=jack&password=x");
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(r.text().contains("server2"), "{}", r.text());
        // The client has its 201 before the other two copies' 404s are back; once they
        // are, the POST is finished, so five POSTs never fill --max-pending 3.
        assert!(
            eventually(Duration::from_secs(3), || refused(&b1) == n
                && refused(&b3) == n),
            "the 404 copies end their POST: {}",
            get(admin_addr(&lb), "/metrics").text()
        );
    }
    lb.signal(libc::SIGTERM);
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(3)),
        Some(0),
        "nothing pending holds the drain: {}",
        lb.log_text()
    );
}

#[test]
fn a_large_answer_is_relayed_whatever_max_body_says() {
    let b = backend("a", &[]);
    let lb1 = lb(&[&b], &flags(&["--max-body", "160"]));
    let body = "y".repeat(150);
    let r = post_body(lb1.addr, "/echo", &body);
    assert_eq!((r.status, r.text()), (200, body.clone()));
    // The delivered answer streams: --fanout-max-response bounds only a refusal kept whole.
    let lb2 = lb(&[&b], &flags(&["--fanout-max-response", "100"]));
    let r = post_body(lb2.addr, "/echo", &body);
    assert_eq!((r.status, r.text()), (200, body));
    // A refusal larger than that is told by its status, in lb's words.
    let r = post_body(lb2.addr, "/status/404", "x");
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("--fanout-max-response"), "{}", r.text());
}

#[test]
fn with_nothing_deliverable_the_client_gets_the_first_refusal_or_502() {
    let tom = backend("server1", &["--username", "tom"]);
    let broken = backend("server2", &["--fail-rate", "1.0"]);
    // No health checks: they would take the always-failing backend down, and its copy
    // would wait for it to come back instead of being spent.
    let retry_twice = flags(&["--retry-attempts", "2", "--health-interval", "0"]);
    let lb1 = lb(&[&tom, &broken], &retry_twice);
    let r = post(lb1.addr, "/register?username=jack&password=x");
    assert_eq!(r.status, 404, "the refusal, once the 500s are spent");
    assert_eq!(r.text(), "user jack is not served by server1\n");
    let lb2 = lb(&[&broken], &retry_twice);
    let r = post(lb2.addr, "/register?username=jack&password=x");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("given up"), "{}", r.text());
}

#[test]
fn fanout_errors_honour_the_clients_connection_close() {
    let dead = format!("127.0.0.1:{}", free_port());
    let lb = lb_addrs(
        &[&dead],
        &flags(&["--health-interval", "0", "--fanout-timeout", "300ms"]),
    );
    let raw = |close: &str| {
        format!("POST /register HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n{close}\r\n")
    };
    let mut c = Client::new(lb.addr);
    c.send(raw("Connection: close\r\n").as_bytes());
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 504);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(3)));
    let mut c = Client::new(lb.addr);
    c.send(raw("").as_bytes());
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!((r.status, r.header("connection")), (504, None));
    // A connect failure that --retry-on leaves out is given up at once: 502.
    let lb = lb_addrs(
        &[&dead],
        &flags(&["--health-interval", "0", "--retry-on", "5xx"]),
    );
    let mut c = Client::new(lb.addr);
    c.send(raw("Connection: close\r\n").as_bytes());
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!((r.status, r.header("connection")), (502, Some("close")));
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn a_backend_coming_back_gets_its_backlog_a_few_at_a_time_over_pooled_connections() {
    let live = backend("live", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let live_addr = live.addr.to_string();
    let lb = lb_addrs(
        &[&live_addr, &late_addr],
        &flags(&["--admin", "127.0.0.1:0"]),
    );
    let admin = admin_addr(&lb);
    let up = format!("lb_backend_up{{backend=\"{late_addr}\"}}");
    assert!(eventually(Duration::from_secs(5), || metric(admin, &up) == 0.0));
    for i in 0..300 {
        assert_eq!(
            post(lb.addr, &format!("/register?username=p{i}")).status,
            201
        );
    }
    let late = backend_on("late", &late_addr, &["--delay", "20ms"]);
    assert!(
        eventually(Duration::from_secs(30), || copies(
            admin,
            late.addr,
            "delivered"
        ) == 300.0),
        "the backlog is delivered"
    );
    let checks = metric(
        admin,
        &format!("lb_health_checks_total{{backend=\"{late_addr}\",result=\"pass\"}}"),
    );
    let accepted: f64 = get(late.addr, "/conns").text().trim().parse().unwrap();
    // Each check is a connection of its own; the copies reuse at most 16 pooled ones.
    assert!(
        accepted <= checks + 16.0 + 4.0,
        "{accepted} connections for 300 copies and {checks} checks"
    );
}
