//! The log and the access log over real sockets: a timestamp on every line, JSON that
//! parses, and one access log line per request whoever answered it.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(5);

/// Lines of `lb`'s output (stdout and stderr) that contain `needle`.
fn lines_with(lb: &Proc, needle: &str) -> Vec<String> {
    lb.log_text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// True for `2026-11-21T14:03:07.123Z` and the like.
fn is_rfc3339_millis(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

/// Sends `raw` on a fresh connection and returns the status lb answered with.
fn status_of(lb: &Proc, raw: &[u8]) -> u16 {
    let mut c = Client::new(lb.addr);
    c.send(raw);
    c.read_response(false)
        .expect("a response")
        .expect("a response before close")
        .status
}

#[test]
fn one_access_line_per_request_whoever_answered_even_with_q() {
    let b1 = backend("one", &[]);
    let b2 = backend("two", &[]);
    let listen = format!("127.0.0.1:{}", free_port());
    let lb = lb(
        &[&b1, &b2],
        &[
            "-l",
            &listen,
            "--access-log",
            "-q",
            "--client-timeout",
            "300ms",
            "--max-body",
            "1k",
        ],
    );
    // From a backend.
    assert_eq!(get(lb.addr, "/").status, 200);
    // A fan-out POST: one line, not one per copy.
    assert_eq!(post(lb.addr, "/register?username=a&password=b").status, 201);
    // lb's own answers.
    assert_eq!(status_of(&lb, b"GET / HTTP/1.1\r\n\r\n"), 400);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(17_000)
    );
    assert_eq!(status_of(&lb, big.as_bytes()), 431);
    assert_eq!(
        status_of(
            &lb,
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
        ),
        413
    );
    let mut slow = Client::new(lb.addr);
    slow.send(b"GET /slow HTTP/1.1\r\nHo");
    assert_eq!(slow.read_response(false).unwrap().unwrap().status, 408);
    // A client that leaves halfway through its body got no answer: status `-`.
    let mut gone = Client::new(lb.addr);
    gone.send(b"POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    std::thread::sleep(Duration::from_millis(50));
    drop(gone);

    for (needle, status) in [
        ("\"GET /\" ", " 200 "),
        ("\"POST /register?username=a&password=b\" ", " 201 "),
        ("\"GET /\" - ", " 400 "),
        ("\"GET /\" - ", " 431 "),
        ("\"POST /big\" - ", " 413 "),
        ("\"GET /slow\" - ", " 408 "),
        ("\"POST /partial\" - ", " - 0 "),
    ] {
        assert!(
            eventually(WAIT, || lines_with(&lb, needle)
                .iter()
                .any(|l| l.contains(status))),
            "no {status} line with {needle}:\n{}",
            lb.log_text()
        );
    }
    let posts = lines_with(&lb, "\"POST /register");
    assert_eq!(posts.len(), 1, "one line for three copies: {posts:?}");
    let access: Vec<String> = lines_with(&lb, " \"");
    assert_eq!(access.len(), 7, "{access:?}");
    for line in &access {
        let ts = line.split(' ').next().unwrap();
        assert!(is_rfc3339_millis(ts), "{line}");
    }
    assert!(
        !lb.log_text().contains("INFO"),
        "-q hides info lines, not the access log"
    );
}

#[test]
fn no_backend_and_fanout_deadline_get_their_lines() {
    let dead = format!("127.0.0.1:{}", free_port());
    let lb = lb_addrs(
        &[&dead],
        &[
            "--access-log",
            "--health-interval",
            "50ms",
            "--fall",
            "1",
            "--fanout-timeout",
            "200ms",
        ],
    );
    assert!(lb.wait_log(&format!("backend {dead} DOWN"), WAIT));
    assert_eq!(get(lb.addr, "/none").status, 503);
    assert_eq!(
        post(lb.addr, "/w").status,
        503,
        "no backend up: refused at once"
    );
    assert!(
        lb.wait_log("\"GET /none\" - 503 0 ", WAIT),
        "{}",
        lb.log_text()
    );
    assert!(
        lb.wait_log("\"POST /w\" - 503 0 ", WAIT),
        "{}",
        lb.log_text()
    );
    // Without health checks lb cannot know the backend is down: the copy is retried
    // until the deadline.
    let lb = lb_addrs(
        &[&dead],
        &[
            "--access-log",
            "--health-interval",
            "0",
            "--fanout-timeout",
            "200ms",
        ],
    );
    assert_eq!(
        post(lb.addr, "/w").status,
        504,
        "retried until the deadline"
    );
    assert!(
        lb.wait_log("\"POST /w\" - 504 0 ", WAIT),
        "{}",
        lb.log_text()
    );
}

#[test]
fn every_line_has_a_timestamp_and_json_lines_parse() {
    let b = backend("j", &[]);
    let lb = lb(&[&b], &["--access-log", "--log-format", "json", "-v"]);
    let r = request(
        lb.addr,
        b"GET /?q=\"1\" HTTP/1.1\r\nHost: t\r\nX-Request-Id: fake 200 0.1ms INJECTED\r\n\
          Connection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 36, "a generated id replaced the forged one: {id}");
    assert!(lb.wait_log("\"target\":", WAIT), "{}", lb.log_text());
    assert!(lb.wait_log("replaced by", WAIT), "said at debug level");
    let mut access = 0;
    for line in lb.log_text().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let ts = v["time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time: {line}"));
        assert!(is_rfc3339_millis(ts), "{line}");
        if v.get("target").is_some() {
            access += 1;
            assert_eq!(v["method"], "GET");
            assert_eq!(v["target"], "/?q=\"1\"");
            assert_eq!(v["status"], 200);
            assert_eq!(v["request_id"], id.as_str());
            assert_eq!(v["backend"], b.addr.to_string());
            assert!(v["bytes"].as_u64().unwrap() > 0);
        } else {
            assert!(v["level"].is_string() && v["msg"].is_string(), "{line}");
        }
    }
    assert_eq!(access, 1);
    assert!(!lb.log_text().contains("INJECTED"));

    let text = common::lb(&[&b], &["--access-log"]);
    let ok = request(
        text.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: ok-id_1.2\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        ok.header("x-request-id"),
        Some("ok-id_1.2"),
        "a fine id is kept"
    );
    assert!(text.wait_log("ms ok-id_1.2", WAIT));
    for line in text.log_text().lines() {
        let ts = line.split(' ').next().unwrap();
        assert!(is_rfc3339_millis(ts), "{line}");
    }
}

#[test]
fn access_log_to_a_file_and_tcp_sessions() {
    let b = backend("f", &[]);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let lb = lb(&[&b], &[&format!("--access-log={}", path.display())]);
    assert_eq!(get(lb.addr, "/?file").status, 200);
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    assert!(eventually(WAIT, || read().contains("\"GET /?file\" ")));
    assert!(
        !lb.log_text().contains("\"GET /?file\""),
        "not on stdout too"
    );
    std::fs::remove_file(&path).ok();

    let tcp = common::lb(&[&b], &["-m", "tcp", "--access-log"]);
    let mut s = connect(tcp.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut answer).unwrap();
    drop(s);
    let want = format!(" TCP {} ", b.addr);
    assert!(tcp.wait_log(&want, WAIT), "{}", tcp.log_text());
    let line = lines_with(&tcp, &want).pop().unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 8, "{line}");
    assert!(fields[4].parse::<u64>().unwrap() > 0, "bytes sent: {line}");
    assert_eq!(fields[5].parse::<usize>().unwrap(), answer.len(), "{line}");
    assert_eq!(fields[7], "closed");
}

#[test]
fn verbose_follows_each_copy_retried_and_delivered_late_and_each_health_check() {
    let steady = backend("steady", &[]);
    let flaky = backend("flaky", &["--fail-first", "1"]);
    let lb = lb(
        &[&steady, &flaky],
        &[
            "-v",
            "--health-interval",
            "100ms",
            "--retry-base",
            "10ms",
            "--retry-jitter",
            "0",
        ],
    );
    let r = request(
        lb.addr,
        b"POST /register?username=ann&password=x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 201);
    let late = format!("delivered to {} at attempt 2", flaky.addr);
    assert!(lb.wait_log(&late, WAIT), "{}", lb.log_text());
    let failed = lines_with(&lb, "attempt 1 failed (status 500); again in");
    assert_eq!(failed.len(), 1, "{}", lb.log_text());
    assert!(
        failed[0].contains(&format!("to {}:", flaky.addr)),
        "{failed:?}"
    );
    let checked = format!("health check of {} passed in", steady.addr);
    assert!(lb.wait_log(&checked, WAIT), "{}", lb.log_text());
}

#[test]
fn very_verbose_is_lb_own_trace_not_its_libraries() {
    let b = backend("b", &[]);
    let lb = lb(&[&b], &["-vv"]);
    assert_eq!(get(lb.addr, "/").status, 200);
    // mio says this at trace for every socket it registers.
    assert!(
        !lb.log_text().contains("registering event source"),
        "{}",
        lb.log_text()
    );
}
