//! gRPC end to end through lb: tests/support/grpc_client.py (PyPI's grpcio) calls
//! tests/support/grpc_server.py through an h2c listener and a `protocol = "h2"` pool,
//! checked by gRPC health. Each kind of call, the health service, and a call that its
//! route's timeout ends with lb's DEADLINE_EXCEEDED. `.ci/run` installs grpcio; elsewhere
//! the tests skip with a message when python3 or grpcio is missing.

mod common;

use std::process::Command;
use std::time::Duration;

use common::python::{grpc_server, python_ready};
use common::tls::TempDir;
use common::*;
use serde_json::{Value, json};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/grpc_client.py");

fn grpc_ready() -> bool {
    python_ready("grpc", "grpcio")
}

/// The JSON lines grpc_client.py printed for `kind` against `addr`.
fn calls(addr: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(CLIENT)
        .arg(addr)
        .args(args)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The gRPC server, and lb in front of it: pool `grpc` for every call, and pool `slow`
/// (the same server, a 300 ms server timeout) for /test.Echo/Hang.
fn grpc_site(dir: &TempDir) -> (Proc, Proc) {
    let server = grpc_server("g1");
    let pool = |name: &str, timeout: &str| {
        format!(
            "[pools.{name}]\nbackends = [\"{}\"]\nprotocol = \"h2\"\nserver_timeout = \"{timeout}\"\n\
             health = {{ kind = \"grpc\", interval = \"100ms\", rise = 1 }}\n\n",
            server.addr
        )
    };
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n{}{}\
         [[routes]]\npath = \"/test.Echo/Hang\"\npool = \"slow\"\nfanout = false\n\n\
         [[routes]]\npool = \"grpc\"\nfanout = false\n",
        pool("grpc", "30s"),
        pool("slow", "300ms"),
    );
    let lb = lb_file(&dir.write("lb.toml", &config), &[]);
    let admin = admin_addr(&lb);
    let up = format!(
        "lb_health_checks_total{{backend=\"{}\",pool=\"grpc\",result=\"pass\"}}",
        server.addr
    );
    assert!(
        eventually(Duration::from_secs(10), || get(admin, "/metrics")
            .text()
            .lines()
            .any(|l| l.starts_with(&up) && !l.ends_with(" 0"))),
        "no passed gRPC check:\n{}",
        lb.log_text()
    );
    (server, lb)
}

#[test]
fn every_kind_of_call_goes_through_lb() {
    if !grpc_ready() {
        return;
    }
    let dir = TempDir::new();
    let (_server, lb) = grpc_site(&dir);
    let addr = lb.addr.to_string();
    let got = calls(&addr, &["all"]);
    let want = [
        json!({"call": "unary", "code": "OK", "result": "g1: hello"}),
        json!({"call": "server-stream", "code": "OK", "result": ["a", "b", "c"]}),
        json!({"call": "client-stream", "code": "OK", "result": "x,y,z"}),
        json!({"call": "bidi", "code": "OK", "result": ["P", "Q", "R"]}),
    ];
    assert_eq!(got, want, "{}", lb.log_text());
    let health = calls(&addr, &["health", "test.Echo"]);
    assert_eq!(
        health,
        [json!({"call": "health", "code": "OK", "result": "SERVING"})]
    );
    // A gRPC error status comes back as the server sent it.
    let unknown = calls(&addr, &["health", "no.Such"]);
    assert_eq!(unknown[0]["code"], "NOT_FOUND", "{unknown:?}");
}

#[test]
fn a_call_its_route_times_out_gets_lbs_deadline_exceeded() {
    if !grpc_ready() {
        return;
    }
    let dir = TempDir::new();
    let (_server, lb) = grpc_site(&dir);
    // The client's own deadline is far: what ends the call is lb's 300 ms.
    let got = calls(&lb.addr.to_string(), &["hang", "--timeout", "30"]);
    assert_eq!(
        got[0]["code"],
        "DEADLINE_EXCEEDED",
        "{got:?}\n{}",
        lb.log_text()
    );
    let details = got[0]["details"].as_str().unwrap_or_default();
    assert!(details.starts_with("lb: "), "{got:?}");
}
