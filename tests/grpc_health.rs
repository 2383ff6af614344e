//! gRPC health checks (`health = { kind = "grpc" }`) against a real gRPC server:
//! tests/support/grpc_server.py on PyPI's grpcio, whose Health/Check answer the tests
//! flip with tests/support/grpc_client.py. `.ci/run` installs grpcio; elsewhere the tests
//! skip with a message when python3 or grpcio is missing.

mod common;

use std::process::Command;
use std::time::Duration;

use common::python::{grpc_server, python_ready};
use common::tls::TempDir;
use common::*;
use serde_json::Value;

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/grpc_client.py");

fn grpc_ready() -> bool {
    python_ready("grpc", "grpcio")
}

/// One call of grpc_client.py to `addr`: its JSON line.
fn call(addr: &str, kind: &str, arg: &str) -> Value {
    let out = Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([CLIENT, addr, kind, arg])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind} {arg}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{kind}: {e}: {text}"))
}

/// lb with the admin interface, an HTTP listener and pool `app` of `backend`, whose
/// health table is `health`: checks every 100 ms, one result enough to move.
fn lb_checking(dir: &TempDir, backend: &str, health: &str) -> Proc {
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [listeners.web]\naddress = \"127.0.0.1:0\"\n\n\
         [pools.app]\nbackends = [\"{backend}\"]\n\
         health = {{ {health}, interval = \"100ms\", timeout = \"5s\", rise = 1, fall = 1 }}\n\n\
         [[routes]]\npool = \"app\"\n"
    );
    lb_file(&dir.write("lb.toml", &config), &[])
}

/// `lb_backend_up` and the passed and failed checks of `backend`, from /metrics.
fn health_of(admin: std::net::SocketAddr, backend: &str) -> (f64, f64, f64) {
    let text = get(admin, "/metrics").text();
    let label = format!("backend=\"{backend}\"");
    let sample = |name: &str, extra: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
            .find(|l| l.contains(extra))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} of {backend} in\n{text}"))
    };
    (
        sample("lb_backend_up", ""),
        sample("lb_health_checks_total", "result=\"pass\""),
        sample("lb_health_checks_total", "result=\"fail\""),
    )
}

#[test]
fn a_serving_backend_is_up_and_goes_down_when_it_stops_serving() {
    if !grpc_ready() {
        return;
    }
    let server = grpc_server("g1");
    let addr = server.addr.to_string();
    let dir = TempDir::new();
    let lb = lb_checking(&dir, &addr, "kind = \"grpc\", grpc_service = \"test.Echo\"");
    let admin = admin_addr(&lb);
    assert!(
        eventually(Duration::from_secs(10), || {
            let (up, passed, _) = health_of(admin, &addr);
            up == 1.0 && passed >= 2.0
        }),
        "SERVING passes: {:?}\n{}",
        health_of(admin, &addr),
        lb.log_text()
    );
    assert_eq!(health_of(admin, &addr).2, 0.0, "{}", lb.log_text());

    assert_eq!(call(&addr, "set-serving", "NOT_SERVING")["code"], "OK");
    assert!(
        eventually(Duration::from_secs(10), || health_of(admin, &addr).0 == 0.0),
        "NOT_SERVING fails: {:?}\n{}",
        health_of(admin, &addr),
        lb.log_text()
    );
    assert!(
        lb.wait_log("health status NOT_SERVING", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );

    assert_eq!(call(&addr, "set-serving", "SERVING")["code"], "OK");
    assert!(
        eventually(Duration::from_secs(10), || health_of(admin, &addr).0 == 1.0),
        "SERVING again: {}",
        lb.log_text()
    );
}

#[test]
fn a_service_the_server_does_not_know_is_down() {
    if !grpc_ready() {
        return;
    }
    let server = grpc_server("g2");
    let addr = server.addr.to_string();
    let dir = TempDir::new();
    let lb = lb_checking(&dir, &addr, "kind = \"grpc\", grpc_service = \"no.Such\"");
    let admin = admin_addr(&lb);
    assert!(
        eventually(Duration::from_secs(10), || {
            let (up, _, failed) = health_of(admin, &addr);
            up == 0.0 && failed >= 1.0
        }),
        "{}",
        lb.log_text()
    );
    // The health protocol's NOT_FOUND, with the server's message.
    assert!(
        lb.wait_log("grpc-status 5: unknown service", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    assert_eq!(health_of(admin, &addr).1, 0.0);
}

#[test]
fn an_http1_backend_fails_a_grpc_check() {
    if !grpc_ready() {
        return;
    }
    let plain = backend("plain", &[]);
    let addr = plain.addr.to_string();
    let dir = TempDir::new();
    let lb = lb_checking(&dir, &addr, "kind = \"grpc\"");
    let admin = admin_addr(&lb);
    assert!(
        eventually(Duration::from_secs(10), || {
            let (up, _, failed) = health_of(admin, &addr);
            up == 0.0 && failed >= 1.0
        }),
        "{}",
        lb.log_text()
    );
    assert_eq!(health_of(admin, &addr).1, 0.0, "{}", lb.log_text());
}

#[test]
fn the_harness_makes_each_kind_of_call() {
    if !grpc_ready() {
        return;
    }
    let server = grpc_server("g3");
    let addr = server.addr.to_string();
    let results = [
        (call(&addr, "unary", "hi"), Value::from("g3: hi")),
        (
            call(&addr, "server-stream", "a,b"),
            serde_json::json!(["a", "b"]),
        ),
        (call(&addr, "client-stream", "x,y"), Value::from("x,y")),
        (call(&addr, "bidi", "p,q"), serde_json::json!(["P", "Q"])),
        (call(&addr, "health", ""), Value::from("SERVING")),
    ];
    for (got, want) in results {
        assert_eq!(got["code"], "OK", "{got}");
        assert_eq!(got["result"], want, "{got}");
    }
}
