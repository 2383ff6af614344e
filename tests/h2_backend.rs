//! HTTP/2 to backends (`protocol = "h2"`): HTTP/1.1 and HTTP/2 clients through lb to an
//! h2c backend (tests/support/h2_backend.py, on the Python `h2` package), streams sharing
//! few connections, trailers, refused streams, a backend that never stops sending and one
//! that stops reading.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::{Site, TempDir, tls_addr};
use common::*;

const BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_backend.py");

fn h2_backend(extra: &[&str]) -> Proc {
    spawn_command(Command::new("python3").arg(BACKEND).args(extra))
}

/// lb with one HTTP listener (`--h2c` too) before `backends`, spoken to in HTTP/2;
/// `extra` goes in the pool's table.
fn lb_h2(dir: &TempDir, backends: &[&Proc], extra: &str) -> (Proc, SocketAddr) {
    lb_h2_with(dir, backends, "", extra)
}

/// `lb_h2` with top-level settings `top`.
fn lb_h2_with(dir: &TempDir, backends: &[&Proc], top: &str, extra: &str) -> (Proc, SocketAddr) {
    let list: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    lb_h2_to(dir, &list, top, extra)
}

/// `lb_h2_with` before backends written as `backends`.
fn lb_h2_to(dir: &TempDir, backends: &[String], top: &str, extra: &str) -> (Proc, SocketAddr) {
    lb_h2_routed(dir, backends, top, extra, "")
}

/// `lb_h2_to` with `route` in the route's table.
fn lb_h2_routed(
    dir: &TempDir,
    backends: &[String],
    top: &str,
    extra: &str,
    route: &str,
) -> (Proc, SocketAddr) {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    let text = format!(
        "{top}[admin]\nlisten = \"127.0.0.1:0\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n[pools.grpc]\n\
         backends = [{}]\nprotocol = \"h2\"\nhealth = {{ interval = \"0s\" }}\n{extra}\n\
         [[routes]]\npool = \"grpc\"\n{route}",
        list.join(", ")
    );
    let lb = lb_file(&dir.write("lb.toml", &text), &[]);
    let addr = listener(&lb, "web");
    (lb, addr)
}

/// The backend's counters (connections it accepted, the most open at once, bytes
/// /endless sent), asked through lb (it speaks only HTTP/2).
fn backend_stats(lb: SocketAddr) -> serde_json::Value {
    let r = get(lb, "/stats");
    serde_json::from_str(&r.text()).unwrap_or(serde_json::Value::Null)
}

#[test]
fn an_http1_client_gets_and_posts_through_an_h2c_backend() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&b], "");
    let r = get(addr, "/echo?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "GET /echo?x=1 0 ");
    let r = post_body(addr, "/echo", "a body");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "POST /echo 6 a body");
    // No content-length from the backend: the HTTP/1.1 client gets it chunked.
    let r = get(addr, "/chunks");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "one two three");
}

fn curl_h2(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--http2-prior-knowledge"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_h2_client_gets_posts_and_sees_the_trailers_of_an_h2c_backend() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&b], "");
    let url = format!("http://{addr}");
    assert_eq!(curl_h2(&[&format!("{url}/echo")]), "GET /echo 0 ");
    let posted = curl_h2(&["--data-binary", "twelve bytes", &format!("{url}/echo")]);
    assert_eq!(posted, "POST /echo 12 twelve bytes");
    // gRPC's status travels in the trailers: HEADERS after the DATA, to the client too.
    let dumped = curl_h2(&["-D", "-", "-o", "/dev/null", &format!("{url}/grpc")]);
    let (head, trailers) = dumped.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/2 200"), "{dumped}");
    assert!(head.contains("content-type: application/grpc"), "{dumped}");
    assert!(trailers.contains("grpc-status: 0"), "{dumped}");
    assert!(trailers.contains("grpc-message: fine"), "{dumped}");
}

#[test]
fn an_http1_client_gets_the_trailers_as_chunked_trailers() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&b], "");
    let mut s = connect(addr);
    // No TE from the client: lb says trailers are taken, as gRPC servers want.
    s.write_all(b"GET /grpc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read");
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        text.ends_with("\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"),
        "{text:?}"
    );
}

/// The value of the one `name{...}` series in lb's metrics.
fn gauge(admin: SocketAddr, name: &str) -> f64 {
    let text = get(admin, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('{')?.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn many_concurrent_requests_share_at_most_four_connections() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2(&dir, &[&b], "");
    // /slow answers only once 8 requests wait at the backend together: 24 at once, each
    // from its own HTTP/1.1 client, must be streams on shared connections.
    let clients: Vec<_> = (0..24)
        .map(|_| std::thread::spawn(move || get(addr, "/slow").status))
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("a client"), 200);
    }
    let stats = backend_stats(addr);
    let most = stats["most_open"].as_u64().expect("most_open");
    assert!((1..=4).contains(&most), "{stats}");
    let open = gauge(admin_addr(&lb), "lb_backend_h2_connections_open");
    assert!((1.0..=4.0).contains(&open), "{open}");
}

#[test]
fn a_backend_taking_two_streams_a_connection_gets_four_connections_and_no_more() {
    let b = h2_backend(&["2"]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&b], "");
    // 8 must wait at the backend at once for /slow to answer: 4 connections of 2 streams.
    // The other 16 wait in lb for a stream to end, not on a fifth connection.
    let clients: Vec<_> = (0..24)
        .map(|_| std::thread::spawn(move || get(addr, "/slow").status))
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("a client"), 200);
    }
    let stats = backend_stats(addr);
    assert_eq!(stats["most_open"], 4, "{stats}");
    assert_eq!(stats["connections"], 4, "{stats}");
}

#[test]
fn a_backend_that_cannot_be_reached_is_passed_over_even_by_a_put() {
    let good = h2_backend(&[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2_to(&dir, &[dead, good.addr.to_string()], "", "");
    // Its stream waits for the connection before the exchange hands its request over: a
    // failed connect leaves the whole request, body and all, to go elsewhere.
    for i in 0..4 {
        let put = format!("PUT /echo?{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        let r = request(addr, put.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), format!("PUT /echo?{i} 3 abc"));
    }
}

#[test]
fn refused_streams_and_goaways_go_to_another_backend_or_get_502() {
    let refusing = h2_backend(&["--refuse"]);
    let leaving = h2_backend(&["--goaway"]);
    let good = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&refusing, &leaving, &good], "retries = 2\n");
    for i in 0..6 {
        let r = get(addr, &format!("/echo?{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&refusing], "");
    assert_eq!(get(addr, "/echo").status, 502);
    // A refused PUT may be sent again (it was not processed), but no other backend is left.
    let put = b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
    assert_eq!(request(addr, put).status, 502);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&leaving], "");
    assert_eq!(get(addr, "/echo").status, 502);
}

#[test]
fn a_backend_pouring_to_a_client_that_does_not_read_is_held_to_its_window() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&b], "");
    let mut idle = connect(addr);
    idle.write_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    // lb gives window back only as the client takes the bytes: once the sockets are full,
    // the backend stops, having sent what the kernel's buffers, lb's few buffers and one
    // stream window hold.
    let mut stats = serde_json::Value::Null;
    let stalled = eventually(Duration::from_secs(60), || {
        stats = backend_stats(addr);
        stats["stalled"] == true
    });
    assert!(stalled, "{stats}");
    let sent = stats["endless_sent"].as_u64().expect("endless_sent");
    assert!(sent < 32 << 20, "{stats}");
    drop(idle);
}

/// The body a client tries to upload to a backend that has stopped reading.
const UPLOAD: u64 = 256 << 20;
/// A write that has waited this long without lb taking a byte: lb has stopped reading.
const STALL: Duration = Duration::from_secs(3);
/// What lb itself may hold of one upload: the frames of its backend connection (OUT_LIMIT,
/// 64 KiB, and the one stream's frames taken past it, at most its 32 KiB ANSWER_ROOM), the
/// stream's own ANSWER_ROOM, and the client side's and the exchange's pooled 32 KiB buffers:
/// about 224 KiB. A MiB, for the margin.
const LB_HOLDS: u64 = 1 << 20;

#[test]
fn an_upload_to_a_backend_that_opens_every_window_and_stops_reading_stops_at_lbs_bound() {
    let b = h2_backend(&["--stop-reading"]);
    let dir = TempDir::new();
    // lb drops a backend that leaves its frames unread for the server timeout: not before
    // the test is done.
    let pool = "server_timeout = \"120s\"\n";
    let backends = [b.addr.to_string()];
    let (lb, addr) = lb_h2_routed(&dir, &backends, "", pool, "fanout = false\n");
    let rss_before = lb.rss_kib();
    let mut client = connect(addr);
    let head = format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n\r\n");
    client.write_all(head.as_bytes()).expect("send");
    client.set_write_timeout(Some(STALL)).expect("timeout");
    // The window of 2 GiB does not stop lb: only what it queues for the backend does. The
    // backend's kernel buffer fills, then lb's socket's, then lb stops reading the client.
    let chunk = vec![b'u'; 64 << 10];
    let mut accepted = 0u64;
    let mut stalled = false;
    let end = Instant::now() + Duration::from_secs(120);
    while !stalled && accepted < UPLOAD && Instant::now() < end {
        let rest = usize::try_from(UPLOAD - accepted).unwrap_or(chunk.len());
        match client.write(&chunk[..rest.min(chunk.len())]) {
            Ok(n) => accepted += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                stalled = true;
            }
            Err(e) => panic!("the upload failed after {accepted} bytes: {e}"),
        }
    }
    assert!(
        b.wait_log("stopped reading after", Duration::from_secs(10)),
        "the backend never got the request: {}",
        b.log_text()
    );
    let backend_read: u64 = b
        .log_text()
        .split("stopped reading after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .expect("the bytes the backend read");
    // What the four sockets' kernel buffers hold (on loopback they grow to MiBs, as the
    // sysctls net.ipv4.tcp_rmem and tcp_wmem let them): the rest of what the client wrote
    // lb holds, or the backend read before it stopped.
    let local = client.local_addr().expect("address");
    let client_side = tcp_queues::queued(|l, r| (l, r) == (local, addr) || (l, r) == (addr, local));
    let backend_side = tcp_queues::queued(|l, r| l == b.addr || r == b.addr);
    let held = accepted.saturating_sub(client_side + backend_side + backend_read);
    let grown = lb.rss_kib().saturating_sub(rss_before);
    eprintln!(
        "accepted {accepted}, kernel client side {client_side}, backend side {backend_side}, \
         backend read {backend_read}, lb holds {held}, lb's RSS grew {grown} KiB"
    );
    assert!(
        stalled,
        "lb never stopped taking the body: it queues without bound"
    );
    assert!(
        held < LB_HOLDS,
        "lb took {accepted} bytes: {client_side} and {backend_side} in the kernel's buffers, \
         {backend_read} read by the backend, and {held} it holds"
    );
    // What lb holds and its allocator's slack; without the bound, it grows by the upload.
    assert!(grown < 8 << 10, "lb's memory grew by {grown} KiB");
}

#[test]
fn a_silent_stream_gets_504_and_is_reset_and_an_idle_connection_closes() {
    let b = h2_backend(&[]);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2(&dir, &[&b], "server_timeout = \"1s\"\n");
    let r = get(addr, "/hang");
    assert_eq!(r.status, 504, "{}", r.text());
    // The stream is cancelled; its connection stays and serves the next request.
    let mut stats = serde_json::Value::Null;
    assert!(
        eventually(Duration::from_secs(10), || {
            stats = backend_stats(addr);
            stats["resets"] == 1
        }),
        "{stats}"
    );
    assert_eq!(stats["connections"], 1, "{stats}");
    drop(lb);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2_with(&dir, &[&b], "idle_timeout = \"1s\"\n", "");
    assert_eq!(get(addr, "/echo").status, 200);
    let admin = admin_addr(&lb);
    assert!(eventually(Duration::from_secs(10), || {
        gauge(admin, "lb_backend_h2_connections_open") == 0.0
    }));
}

#[test]
fn an_https_backend_is_spoken_to_in_h2_chosen_by_alpn() {
    let inner = backend("inner", &[]);
    let site = Site::new();
    // lb's TLS listeners offer h2 by ALPN: one lb is the other's HTTP/2 backend.
    let front = site.lb(&[inner.addr], &[]);
    let ca = site.dir.write("ca.pem", &site.ca.pem);
    let https = format!("https://localhost:{}", tls_addr(&front).port());
    let top = format!("backend_ca = \"{ca}\"\n");
    let dir = TempDir::new();
    let (_outer, addr) = lb_h2_to(&dir, &[https], &top, "");
    let r = get(addr, "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), "inner");
    let r = post_body(addr, "/echo", "over h2 and TLS");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "over h2 and TLS");
}

#[test]
fn an_https_backend_that_does_not_choose_h2_fails_clearly() {
    let site = Site::new();
    // A TLS server that speaks only http/1.1: no protocol in common with lb's offer.
    let script = format!(
        "import socket, ssl, sys\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{}', '{}')\n\
         c.set_alpn_protocols(['http/1.1'])\n\
         l = socket.socket()\n\
         l.bind(('127.0.0.1', 0))\n\
         l.listen(8)\n\
         print('listening on %s:%d' % l.getsockname(), file=sys.stderr, flush=True)\n\
         while True:\n\
         \x20   s, _ = l.accept()\n\
         \x20   try:\n\
         \x20       t = c.wrap_socket(s, server_side=True)\n\
         \x20       t.recv(1)\n\
         \x20   except OSError:\n\
         \x20       pass\n",
        site.cert, site.key
    );
    let http1 = spawn_command(Command::new("python3").args(["-c", &script]));
    let ca = site.dir.write("ca.pem", &site.ca.pem);
    let https = format!("https://localhost:{}", http1.addr.port());
    let top = format!("backend_ca = \"{ca}\"\n");
    let dir = TempDir::new();
    let (outer, addr) = lb_h2_to(&dir, &[https], &top, "");
    assert_eq!(get(addr, "/").status, 502);
    assert!(
        outer.log_text().contains("did not choose h2 by ALPN"),
        "{}",
        outer.log_text()
    );
}

#[test]
fn a_backend_that_never_sends_its_settings_is_given_up_at_the_connect_timeout() {
    // It takes connections and says nothing: no SETTINGS, so no stream is let in.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("address");
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let dir = TempDir::new();
    let pool = "connect_timeout = \"1s\"\nserver_timeout = \"60s\"\n";
    let (_lb, addr) = lb_h2_to(&dir, &[silent_addr.to_string()], "", pool);
    // Not the server timeout's 504 a minute later: the wait for the server's SETTINGS is
    // the connect's.
    let r = get(addr, "/echo");
    assert_eq!(r.status, 502, "{}", r.text());
}
