//! gRPC deadlines through lb: a request's `grpc-timeout` shortens its route's server
//! timeout, and when lb's deadline passes on a gRPC call the client gets what gRPC calls
//! DEADLINE_EXCEEDED (HTTP 200, `grpc-status: 4`, trailers-only) rather than a 504.
//! Driven by curl with prior knowledge against `--h2c`, in front of a backend that
//! answers only after a minute: a test passes long before that unless lb ignored the
//! deadline.

mod common;

use std::process::Command;

use common::python::in_ci;
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
        "[admin]\nlisten = \"off\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n\
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
