//! HTTP/2 to backends (`protocol = "h2"`): HTTP/1.1 and HTTP/2 clients through lb to an
//! h2c backend (tests/support/h2_backend.py, on the Python `h2` package), streams sharing
//! few connections, trailers, refused streams and a backend that never stops sending.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::tls::TempDir;
use common::*;

const BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_backend.py");

fn h2_backend(extra: &[&str]) -> Proc {
    spawn_command(Command::new("python3").arg(BACKEND).args(extra))
}

/// lb with one HTTP listener (`--h2c` too) before `backends`, spoken to in HTTP/2.
fn lb_h2(dir: &TempDir, backends: &[&Proc], extra: &str) -> (Proc, SocketAddr) {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n[pools.grpc]\n\
         backends = [{}]\nprotocol = \"h2\"\nhealth = {{ interval = \"0s\" }}\n{extra}\n\
         [[routes]]\npool = \"grpc\"\n",
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
