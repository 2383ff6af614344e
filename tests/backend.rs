//! Integration tests for the `backend` demo server: the real binary, real sockets, loopback.
//! Each test starts its own server on port 0, so they run in parallel; every read, write and
//! wait is bounded by a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A running backend, killed when dropped.
struct Backend {
    child: Child,
    port: u16,
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Backend {
    let child = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["--listen", "127.0.0.1:0", "--name", "server1"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backend");
    let mut backend = Backend { child, port: 0 };
    let stderr = backend.child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Keeps draining stderr after the first line so the server never blocks on it.
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(TIMEOUT)
        .expect("backend printed its listening line");
    assert!(
        line.starts_with("backend server1 listening on 127.0.0.1:"),
        "{line}"
    );
    backend.port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in line");
    backend
}

fn connect(b: &Backend) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read line");
    assert!(line.ends_with("\r\n"), "line {line:?} ends with CRLF");
    line.truncate(line.len() - 2);
    line
}

/// Reads one response, whatever its framing.
fn read_response(r: &mut impl BufRead) -> Response {
    let status_line = read_line(r);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect(&status_line);
    let mut headers = Vec::new();
    loop {
        let line = read_line(r);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(": ").expect("header line");
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if status < 200 {
        // Interim responses have no body.
    } else if let Some(len) = resp.header("content-length") {
        resp.body = vec![0; len.parse().expect("length")];
        r.read_exact(&mut resp.body).expect("body");
    } else if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&read_line(r), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).expect("chunk");
            assert!(chunk.ends_with(b"\r\n"));
            if size == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        r.read_to_end(&mut resp.body).expect("body until close");
    }
    resp
}

/// One request on a fresh connection that closes after it.
fn request(b: &Backend, method: &str, path: &str, headers: &str, body: &str) -> Response {
    let mut s = connect(b);
    let len = body.len();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len}\r\n{headers}\r\n{body}"
    )
    .expect("send");
    read_response(&mut BufReader::new(s))
}

fn get(b: &Backend, path: &str) -> Response {
    request(b, "GET", path, "", "")
}

fn is_pattern(body: &[u8]) -> bool {
    body.iter()
        .enumerate()
        .all(|(i, &b)| b == b'a' + (i % 26) as u8)
}

#[test]
fn hello_and_request_id() {
    let b = start(&[]);
    let r = request(&b, "GET", "/", "X-Request-Id: abc-1\r\n", "");
    assert_eq!((r.status, r.text()), (200, "Hello from server1\n"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-request-id"), Some("abc-1"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(get(&b, "/ping").text(), "pong\n");
    assert_eq!(get(&b, "/login").status, 200);
    assert_eq!(get(&b, "/nowhere").status, 404);
    let wrong = request(&b, "DELETE", "/", "", "");
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (405, Some("GET, HEAD"))
    );
}

#[test]
fn head_has_no_body() {
    let b = start(&[]);
    let mut s = connect(&b);
    s.write_all(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read");
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(
        all.contains("Content-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{all}"
    );
    assert!(all.ends_with("\r\n\r\npong\n"), "{all}");
}

#[test]
fn pi_digits() {
    let b = start(&[]);
    assert_eq!(get(&b, "/20").text(), "3.14159265358979323846\n");
    assert_eq!(get(&b, "/0").text(), "3\n");
    let all = get(&b, "/10000");
    assert_eq!((all.status, all.body.len()), (200, 2 + 10_000 + 1));
    assert!(
        all.text()
            .starts_with("3.14159265358979323846264338327950288419716939937510")
    );
    assert!(all.text().ends_with("5256375678\n"));
    assert_eq!(get(&b, "/10001").status, 400);
    assert_eq!(get(&b, "/99999999999999999999999").status, 400);
}

#[test]
fn register_and_change_password() {
    let b = start(&[]);
    let r = request(&b, "POST", "/register?username=jack&password=pw", "", "");
    assert_eq!((r.status, r.text()), (201, "registered jack on server1\n"));
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let r = request(
        &b,
        "POST",
        "/changePassword",
        form,
        "username=jack&password=new+pw%21",
    );
    assert_eq!(r.status, 201);
    let user = get(&b, "/users/jack");
    assert_eq!(
        (user.status, user.text()),
        (200, "jack registered 1 changed 1 password new pw!\n")
    );
    assert_eq!(
        request(&b, "POST", "/changePassword?username=ghost", "", "").status,
        404
    );
    assert_eq!(
        request(&b, "POST", "/register?password=x", "", "").status,
        400
    );
    assert_eq!(get(&b, "/users/ghost").status, 404);
}

#[test]
fn same_request_id_is_applied_once() {
    let b = start(&[]);
    let id = "X-Request-Id: write-7\r\n";
    let first = request(&b, "POST", "/register?username=jack&password=a", id, "");
    let again = request(&b, "POST", "/register?username=jack&password=a", id, "");
    assert_eq!((first.status, first.text()), (again.status, again.text()));
    assert_eq!(again.header("x-request-id"), Some("write-7"));
    assert_eq!(
        get(&b, "/users/jack").text(),
        "jack registered 1 changed 0 password a\n"
    );
    let other = "X-Request-Id: write-8\r\n";
    assert_eq!(
        request(&b, "POST", "/register?username=jack&password=a", other, "").status,
        201
    );
    assert_eq!(
        get(&b, "/users/jack").text(),
        "jack registered 2 changed 0 password a\n"
    );
}

#[test]
fn a_request_id_reused_for_a_different_request_gets_409_and_is_not_applied() {
    let b = start(&[]);
    let id = "X-Request-Id: write-9\r\n";
    let form = "Content-Type: application/x-www-form-urlencoded\r\nX-Request-Id: write-10\r\n";
    assert_eq!(
        request(&b, "POST", "/register?username=jack&password=a", id, "").status,
        201
    );
    // The case: a changePassword sent with the id of the register.
    let r = request(
        &b,
        "POST",
        "/changePassword?username=jack&password=b",
        id,
        "",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.header("x-idempotent-replay").is_none());
    // Same target, different body.
    assert_eq!(
        request(&b, "POST", "/register", form, "username=tom&password=1").status,
        201
    );
    let r = request(&b, "POST", "/register", form, "username=tom&password=2");
    assert_eq!(r.status, 409);
    let r = request(&b, "POST", "/register", form, "username=tom&password=1");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-idempotent-replay"), Some("true"));
    assert_eq!(
        get(&b, "/users/jack").text(),
        "jack registered 1 changed 0 password a\n"
    );
    assert_eq!(
        get(&b, "/users/tom").text(),
        "tom registered 1 changed 0 password 1\n"
    );
}

#[test]
fn username_flag_limits_writes() {
    let b = start(&["--username", "jack"]);
    assert_eq!(
        request(&b, "POST", "/register?username=jack", "", "").status,
        201
    );
    assert_eq!(
        request(&b, "POST", "/register?username=tom", "", "").status,
        404
    );
    assert_eq!(get(&b, "/users/tom").status, 404);
}

#[test]
fn fail_rate_one_fails_everything() {
    let b = start(&["--fail-rate", "1.0"]);
    for path in ["/", "/ping", "/5"] {
        let r = get(&b, path);
        assert_eq!((r.status, r.text()), (500, "simulated failure\n"), "{path}");
    }
    assert_eq!(
        request(&b, "POST", "/register?username=jack", "", "").status,
        500
    );
}

#[test]
fn bytes_are_length_framed_and_streamed() {
    let b = start(&[]);
    let r = get(&b, "/bytes/10000000");
    assert_eq!(r.header("content-length"), Some("10000000"));
    assert_eq!(r.body.len(), 10_000_000);
    assert!(is_pattern(&r.body));
}

#[test]
fn chunked_framing() {
    let b = start(&[]);
    let mut s = connect(&b);
    s.write_all(b"GET /chunked/10000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]);
    assert!(head.contains("Transfer-Encoding: chunked\r\n") && !head.contains("Content-Length"));
    let (mut body, mut rest, mut chunks) = (Vec::new(), &raw[split..], 0);
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).expect("hex"), 16)
            .expect("chunk size");
        rest = &rest[line_end + 2..];
        assert_eq!(&rest[size..size + 2], b"\r\n");
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
        if size == 0 {
            break;
        }
        chunks += 1;
    }
    assert!(rest.is_empty(), "nothing after the last chunk");
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(body.len(), 10_000);
    assert!(is_pattern(&body));
}

#[test]
fn eof_framing_closes() {
    let b = start(&[]);
    let mut s = connect(&b);
    s.write_all(b"GET /eof/100000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body.len(), 100_000);
    assert!(is_pattern(&r.body));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = start(&[]);
    let mut s = connect(&b);
    let mut batch = String::new();
    for path in ["/ping", "/3", "/", "/bytes/70000", "/chunked/5", "/5"] {
        batch.push_str(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    s.write_all(batch.as_bytes()).expect("send");
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r).text(), "pong\n");
    assert_eq!(read_response(&mut r).text(), "3.141\n");
    assert_eq!(read_response(&mut r).text(), "Hello from server1\n");
    assert_eq!(read_response(&mut r).body.len(), 70_000);
    assert_eq!(read_response(&mut r).text(), "abcde");
    assert_eq!(read_response(&mut r).text(), "3.14159\n");
}

#[test]
fn keep_alive_reuses_one_connection() {
    let b = start(&[]);
    let s = connect(&b);
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    for _ in 0..5 {
        w.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        assert_eq!(read_response(&mut r).status, 200);
    }
    w.write_all(b"GET /conns HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut r).text(), "1\n");
    assert_eq!(get(&b, "/conns").text(), "2\n");
}

#[test]
fn expect_continue_comes_before_the_body() {
    let b = start(&[]);
    let s = connect(&b);
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    w.write_all(
        b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("send head");
    let interim = read_response(&mut r);
    assert_eq!((interim.status, interim.body.len()), (100, 0));
    w.write_all(b"hello").expect("send body");
    assert_eq!(read_response(&mut r).text(), "hello");
}

#[test]
fn request_bodies_chunked_and_large() {
    let b = start(&[]);
    let mut s = connect(&b);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
        .expect("send");
    let r = read_response(&mut BufReader::new(&s));
    assert_eq!(
        (r.header("transfer-encoding"), r.text()),
        (Some("chunked"), "abcde")
    );

    let len = 12 << 20;
    write!(
        s,
        "PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n"
    )
    .expect("send head");
    let block = vec![b'z'; 1 << 20];
    for _ in 0..12 {
        s.write_all(&block).expect("send body");
    }
    assert_eq!(
        read_response(&mut BufReader::new(&s)).text(),
        format!("{len}\n")
    );
}

#[test]
fn headers_are_echoed_raw() {
    let b = start(&[]);
    let raw = "GET /headers HTTP/1.1\r\nHost: t\r\nX-Odd:  spaced \r\nConnection: close\r\n\r\n";
    let mut s = connect(&b);
    s.write_all(raw.as_bytes()).expect("send");
    assert_eq!(read_response(&mut BufReader::new(s)).text(), raw);
}

#[test]
fn malformed_request_gets_400_and_close() {
    let b = start(&[]);
    for raw in [
        "BAD REQUEST LINE\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    ] {
        let mut s = connect(&b);
        s.write_all(raw.as_bytes()).expect("send");
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("server closes");
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 400 "), "{raw:?} -> {text}");
        assert!(text.contains("Connection: close\r\n"));
    }
    assert_eq!(get(&b, "/ping").status, 200, "server still serves");
}

#[test]
fn delay_does_not_block_other_clients() {
    let b = start(&["--delay", "400ms"]);
    let began = Instant::now();
    let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(&b)).collect();
    for s in &mut conns {
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
    }
    for s in conns {
        assert_eq!(read_response(&mut BufReader::new(s)).status, 200);
    }
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "answered concurrently, took {took:?}"
    );
}

#[test]
fn one_at_a_time_queues_requests() {
    let b = start(&["--one-at-a-time", "--delay", "200ms"]);
    let began = Instant::now();
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(&b)).collect();
    for s in &mut conns {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
    }
    for s in conns {
        assert_eq!(read_response(&mut BufReader::new(s)).status, 200);
    }
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(600),
        "served one by one, took {took:?}"
    );
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--listen", "127.0.0.1:0"],
        &["--listen", "127.0.0.1:0", "--name", "n", "--fail-rate", "2"],
        &["--listen", "127.0.0.1:0", "--name", "n", "--delay", "5x"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backend"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?}: still running");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
