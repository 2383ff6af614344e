//! HTTP/2 clients through lb over real sockets, with nghttp (Debian's nghttp2-client) as
//! the client: a stop signal's GOAWAY, and a POST's fan-out from a stream.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// nghttp from PATH, or `None` (and a note) outside CI when it is missing; in CI, where
/// .ci/run installs it, a missing client fails the test.
fn nghttp_or_skip() -> Option<&'static str> {
    let found = Command::new("nghttp")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("no nghttp on PATH in CI, where .ci/run installs it");
        }
        eprintln!("skipped: no nghttp found (apt-get install nghttp2-client)");
        return None;
    }
    Some("nghttp")
}

/// nghttp `args`, started; its verbose trace of frames is on stdout.
fn nghttp(args: &[&str]) -> std::process::Child {
    Command::new("nghttp")
        .args(["-v", "--timeout=10"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nghttp")
}

fn trace(child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("nghttp ran");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_stop_signal_sends_goaway_and_the_stream_in_flight_finishes() {
    if nghttp_or_skip().is_none() {
        return;
    }
    let slow = backend("slow", &["--delay", "1s"]);
    let mut lb = lb(&[&slow], &["--h2c", "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    let client = nghttp(&[&format!("http://{}/", lb.addr)]);
    assert!(
        eventually(Duration::from_secs(5), || metric(
            admin,
            "lb_http2_streams_total"
        ) >= 1.0),
        "the stream never started:\n{}",
        lb.log_text()
    );
    lb.signal(libc::SIGTERM);
    let frames = trace(client);
    assert!(frames.contains("recv GOAWAY frame"), "{frames}");
    assert!(frames.contains("error_code=NO_ERROR"), "{frames}");
    assert!(frames.contains(":status: 200"), "{frames}");
    assert!(frames.contains("Hello from slow"), "{frames}");
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(5)),
        Some(0),
        "{}",
        lb.log_text()
    );
}

#[test]
fn a_post_on_a_stream_fans_out_to_every_backend() {
    if nghttp_or_skip().is_none() {
        return;
    }
    let (one, two) = (backend("one", &[]), backend("two", &[]));
    let lb = lb(&[&one, &two], &["--h2c"]);
    let dir = common::tls::TempDir::new();
    let body = dir.write("body", "username=streamed&password=pw");
    let url = format!("http://{}/register", lb.addr);
    let frames = trace(nghttp(&["-d", &body, &url]));
    assert!(frames.contains(":status: 201"), "{frames}");
    for b in [&one, &two] {
        assert!(
            eventually(Duration::from_secs(5), || get(b.addr, "/users/streamed")
                .status
                == 200),
            "{} never got the write",
            b.addr
        );
    }
}

/// A backend that answers every request on each connection with `answer`, as is.
fn canned_backend(answer: &'static [u8]) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        if s.write_all(answer).is_err() {
                            return;
                        }
                        head.clear();
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_chunked_answers_trailers_end_the_stream_as_a_trailing_headers() {
    if nghttp_or_skip().is_none() {
        return;
    }
    let backend = canned_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n\
          5\r\nhello\r\n0\r\ngrpc-status: 0\r\nx-checksum: abc\r\nset-cookie: no=1\r\n\r\n",
    );
    let lb = lb_addrs(&[&backend.to_string()], &["--h2c"]);
    let frames = trace(nghttp(&[&format!("http://{}/", lb.addr)]));
    assert!(frames.contains("hello"), "{frames}");
    // The trailers come last, in a HEADERS that ends the stream; set-cookie may not be one.
    let trailers = frames
        .rfind("grpc-status: 0")
        .unwrap_or_else(|| panic!("no trailers: {frames}"));
    let after = &frames[trailers..];
    assert!(after.contains("x-checksum: abc"), "{frames}");
    assert!(
        after.contains("recv HEADERS frame") && after.contains("END_STREAM"),
        "{frames}"
    );
    assert!(!frames.contains("set-cookie"), "{frames}");
}
