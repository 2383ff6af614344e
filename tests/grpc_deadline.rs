//! gRPC deadlines through lb: a request's `grpc-timeout` shortens its route's server
//! timeout, and when lb's deadline passes on a gRPC call the client gets what gRPC calls
//! DEADLINE_EXCEEDED (HTTP 200, `grpc-status: 4`, trailers-only) rather than a 504.
//! Driven by curl with prior knowledge against `--h2c`, in front of a backend that
//! answers only after a minute: a test passes long before that unless lb ignored the
//! deadline. The deadline is absolute: a server-streaming or bidi call whose backend
//! (tests/support/h2_backend.py) goes on sending for 10 s, deadline or not, is ended at
//! it, by a reset stream or a closed connection, before the stream's end and trailers;
//! the bidi call by tests/support/h2_client.py, which keeps its side of the call open.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::python::{in_ci, python_ready};
use common::tls::TempDir;
use common::*;

fn have_curl() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return true;
    }
    assert!(!in_ci(), "curl is missing: in CI, .ci/run installs it");
    eprintln!("skipped: curl is missing (Debian: apt-get install curl)");
    false
}

/// The response head curl got for a POST carrying `headers`, lowercased.
fn post_head(lb: &Proc, headers: &[&str]) -> String {
    let url = format!("http://{}/app.Svc/Call", lb.addr);
    let mut args = vec![
        "-sS",
        "--max-time",
        "30",
        "--http2-prior-knowledge",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--data-binary",
        "not-a-message",
    ];
    for h in headers {
        args.extend_from_slice(&["-H", h]);
    }
    args.push(&url);
    let out = Command::new("curl")
        .args(&args)
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        out.status.success(),
        "curl: {}\n{head}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    head
}

/// lb with an h2c listener in front of a backend that answers after a minute, its
/// route's server timeout `timeout`. gRPC calls are POSTs: the route does not fan them out.
fn slow_backend_and_lb(dir: &TempDir, timeout: &str) -> (Proc, Proc) {
    let slow = backend("slow", &["--delay", "60s"]);
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n\
         [pools.app]\nbackends = [\"{}\"]\nserver_timeout = \"{timeout}\"\n\
         health = {{ interval = \"0s\" }}\n\n\
         [[routes]]\npool = \"app\"\nfanout = false\n",
        slow.addr
    );
    let lb = lb_file(&dir.write("lb.toml", &config), &[]);
    (slow, lb)
}

#[test]
fn a_grpc_call_past_its_deadline_gets_deadline_exceeded() {
    if !have_curl() {
        return;
    }
    let dir = TempDir::new();
    let (_slow, lb) = slow_backend_and_lb(&dir, "60s");
    let head = post_head(
        &lb,
        &[
            "content-type: application/grpc",
            "te: trailers",
            "grpc-timeout: 200m",
        ],
    );
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("\r\ngrpc-status: 4\r\n"), "{head}");
    assert!(head.contains("\r\ngrpc-message: "), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/grpc\r\n"),
        "{head}"
    );
}

#[test]
fn a_plain_request_with_a_grpc_timeout_gets_504_at_that_deadline() {
    if !have_curl() {
        return;
    }
    let dir = TempDir::new();
    let (_slow, lb) = slow_backend_and_lb(&dir, "60s");
    let head = post_head(&lb, &["content-type: text/plain", "grpc-timeout: 200m"]);
    assert!(head.starts_with("http/2 504"), "{head}");
    assert!(!head.contains("grpc-status"), "{head}");
}

#[test]
fn a_malformed_grpc_timeout_sets_no_deadline() {
    if !have_curl() {
        return;
    }
    // Nine digits break the grammar: the route's timeout, here 1s, is what ends it.
    let dir = TempDir::new();
    let (_slow, lb) = slow_backend_and_lb(&dir, "1s");
    let head = post_head(
        &lb,
        &["content-type: application/grpc", "grpc-timeout: 100000000n"],
    );
    assert!(head.contains("\r\ngrpc-status: 4\r\n"), "{head}");
}

const H2_BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_backend.py");
const H2_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_client.py");
/// The body /grpc-stream sends if nothing ends it: 200 messages of 9 bytes.
const WHOLE_STREAM: u64 = 200 * 9;

/// lb with an h2c listener in front of h2_backend.py, spoken to in HTTP/2, whose
/// /grpc-stream streams for 10 s whatever the call's deadline; `None` (skipped) without
/// curl or the Python `h2` package.
fn streaming_backend_and_lb(dir: &TempDir) -> Option<(Proc, Proc)> {
    if !have_curl() || !python_ready("h2", "h2") {
        return None;
    }
    let backend = spawn_command(Command::new("python3").arg(H2_BACKEND));
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n\
         [pools.app]\nbackends = [\"{}\"]\nprotocol = \"h2\"\nserver_timeout = \"60s\"\n\
         health = {{ interval = \"0s\" }}\n\n\
         [[routes]]\npool = \"app\"\nfanout = false\n",
        backend.addr
    );
    let lb = lb_file(&dir.write("lb.toml", &config), &[]);
    Some((backend, lb))
}

/// A server-streaming call to /grpc-stream with `grpc-timeout: 1S`, by curl with `args`:
/// how curl ended, the response head (and trailers, if any came), and the body's length.
fn stream_call(lb: &Proc, dir: &TempDir, args: &[&str]) -> (Output, String, u64) {
    let url = format!("http://{}/grpc-stream", lb.addr);
    let body = dir.0.join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-", "-o"])
        .arg(&body)
        .args([
            "--data-binary",
            "call",
            "-H",
            "content-type: application/grpc",
        ])
        .args(["-H", "te: trailers", "-H", "grpc-timeout: 1S"])
        .args(args)
        .arg(&url)
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let len = std::fs::metadata(&body).map_or(0, |m| m.len());
    (out, head, len)
}

/// What a call that ran past its deadline mid-stream must show: an answer begun (and
/// the deadline forwarded unchanged), ended by lb before the backend's stream would have
/// (no trailers, part of the body), and the backend's stream reset by lb.
fn assert_cut_at_the_deadline(lb: &Proc, (out, head, len): &(Output, String, u64)) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the call ran whole:\n{head}\n{stderr}"
    );
    let seen = head.lines().any(|l| {
        let l = l.trim_end();
        l.to_ascii_lowercase().starts_with("grpc-timeout-seen:") && l.ends_with(" 1S")
    });
    assert!(seen, "grpc-timeout not forwarded as sent:\n{head}");
    assert!(!head.to_ascii_lowercase().contains("grpc-status"), "{head}");
    assert!(*len < WHOLE_STREAM, "{len} bytes: the whole stream\n{head}");
    assert_backend_stream_reset(lb);
}

/// lb reset the backend's stream of the one call made: it was not left to run.
fn assert_backend_stream_reset(lb: &Proc) {
    let resets = || {
        let r = get(lb.addr, "/stats");
        serde_json::from_str::<serde_json::Value>(&r.text()).is_ok_and(|s| s["resets"] == 1)
    };
    assert!(
        eventually(Duration::from_secs(5), resets),
        "the backend's stream was not reset:\n{}",
        lb.log_text()
    );
}

#[test]
fn a_streaming_call_past_its_deadline_is_reset_with_cancel() {
    let dir = TempDir::new();
    let Some((_backend, lb)) = streaming_backend_and_lb(&dir) else {
        return;
    };
    let call = stream_call(&lb, &dir, &["--http2-prior-knowledge"]);
    let (out, head, _) = &call;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(head.starts_with("HTTP/2 200"), "{head}\n{stderr}");
    // curl: "HTTP/2 stream 1 was not closed cleanly: CANCEL (err 8)".
    assert!(stderr.contains("CANCEL"), "{head}\n{stderr}");
    assert_cut_at_the_deadline(&lb, &call);
    // The call, counted once, as the 2xx its client got (and the access log says): the
    // cut counted it a second time, as a 5xx. (The GET is the backend's /stats, above.)
    let scrape = get(admin_addr(&lb), "/metrics").text();
    let counted: Vec<&str> = scrape
        .lines()
        .filter(|l| l.starts_with("lb_requests_total{") && l.contains("method=\"POST\""))
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(
        counted.len() == 1 && counted[0].contains("code=\"2xx\"") && counted[0].ends_with(" 1"),
        "{counted:?}"
    );
}

#[test]
fn a_streaming_call_past_its_deadline_closes_an_http1_connection() {
    let dir = TempDir::new();
    let Some((_backend, lb)) = streaming_backend_and_lb(&dir) else {
        return;
    };
    let call = stream_call(&lb, &dir, &["--http1.1"]);
    let (out, head, _) = &call;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{head}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 18: "transfer closed with outstanding read data remaining", the body cut short.
    assert_eq!(out.status.code(), Some(18), "{head}\n{out:?}");
    assert_cut_at_the_deadline(&lb, &call);
}

#[test]
fn a_bidi_call_past_its_deadline_is_reset_though_its_client_still_sends() {
    let dir = TempDir::new();
    let Some((_backend, lb)) = streaming_backend_and_lb(&dir) else {
        return;
    };
    let out = Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([H2_CLIENT, &lb.addr.port().to_string(), "bidi", "1S"])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(report["status"]["1"], 200, "{report}");
    assert_eq!(report["resets"]["1"], "CANCEL", "{report}");
    let len = report["body"]["1"].as_u64().unwrap_or(0);
    assert!(len < WHOLE_STREAM, "{report}");
    assert_backend_stream_reset(&lb);
}
