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
