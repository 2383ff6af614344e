//! Runtime control on the admin listener: GET /backends, drain/maint/ready/weight, PUT and
//! DELETE, the token and the cross-site guard, and the buttons of /stats.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// A request to lb's admin listener with `extra` header lines.
fn admin(lb: &Proc, method: &str, path: &str, extra: &str) -> Response {
    let addr = admin_addr(lb);
    request(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

const ADMIN: &[&str] = &["--admin", "127.0.0.1:0"];

fn with_admin(extra: &[&'static str]) -> Vec<&'static str> {
    ADMIN.iter().chain(extra).copied().collect()
}

#[test]
fn get_backends_lists_each_backend_as_json() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let lb = lb(&[&a, &b], ADMIN);
    assert_eq!(get(lb.addr, "/").status, 200);
    // Health is "unknown" until each backend's first check, spread over the interval.
    let mut r = admin(&lb, "GET", "/backends", "");
    assert!(eventually(Duration::from_secs(5), || {
        r = admin(&lb, "GET", "/backends", "");
        r.text().matches("\"health\":\"up\"").count() == 2
    }));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    for p in [&a, &b] {
        assert!(
            text.contains(&format!(
                "{{\"backend\":\"{0}\",\"address\":\"{0}\",\"state\":\"ready\",\"health\":\"up\"",
                p.addr
            )),
            "{text}"
        );
    }
    assert!(text.starts_with("{\"version\":0,\"backends\":["), "{text}");
    assert!(text.contains("\"requests\":1"), "{text}");
    let one = admin(&lb, "GET", &format!("/backends/{}", b.addr), "");
    assert!(
        one.text()
            .starts_with(&format!("{{\"backend\":\"{}\"", b.addr))
    );
    assert_eq!(admin(&lb, "GET", "/backends/127.0.0.1:1", "").status, 404);
}

#[test]
fn drain_sends_no_new_requests_while_those_in_flight_finish() {
    let slow = backend("slow", &["--delay", "1500ms"]);
    let fast = backend("fast", &[]);
    // n-to-1: everything goes to the first backend, so the drain is what moves traffic.
    let lb = lb(&[&slow, &fast], &with_admin(&["-s", "n-to-1"]));
    let addr = lb.addr;
    let in_flight = std::thread::spawn(move || get(addr, "/"));
    assert!(eventually(Duration::from_secs(3), || {
        admin(&lb, "GET", "/backends", "")
            .text()
            .contains("\"active\":1")
    }));
    let r = admin(&lb, "POST", &format!("/backends/{}/drain", slow.addr), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"state\":\"drain\""), "{}", r.text());
    assert!(r.text().contains("\"active\":1"), "{}", r.text());
    for _ in 0..10 {
        assert_eq!(served_by(&get(lb.addr, "/")), "fast");
    }
    let finished = in_flight.join().expect("the request in flight");
    assert_eq!(finished.status, 200);
    assert_eq!(served_by(&finished), "slow");
    assert!(lb.wait_log(
        "ready -> drain (until the next reload)",
        Duration::from_secs(1)
    ));
    let r = admin(&lb, "POST", &format!("/backends/{}/ready", slow.addr), "");
    assert!(r.text().contains("\"state\":\"ready\""), "{}", r.text());
    assert_eq!(served_by(&get(lb.addr, "/")), "slow");
}

#[test]
fn maint_weight_put_delete_and_their_errors() {
    let (a, b, c) = (backend("a", &[]), backend("b", &[]), backend("c", &[]));
    let lb = lb(&[&a, &b], &with_admin(&["-s", "weighted-round-robin"]));
    let post = |path: String| admin(&lb, "POST", &path, "");
    let r = post(format!("/backends/{}/maint", a.addr));
    assert!(r.text().contains("\"state\":\"maint\""), "{}", r.text());
    assert_eq!(tally(lb.addr, 4).get("b"), Some(&4));
    post(format!("/backends/{}/ready", a.addr));
    let r = post(format!("/backends/{}/weight?value=3", a.addr));
    assert!(r.text().contains("\"weight\":3"), "{}", r.text());
    assert_eq!(tally(lb.addr, 8).get("a"), Some(&6), "3:1");
    for bad in ["0", "1001", "x", ""] {
        let r = post(format!("/backends/{}/weight?value={bad}", a.addr));
        assert_eq!(r.status, 400, "value={bad}: {}", r.text());
    }
    assert_eq!(post(format!("/backends/{}/weight", a.addr)).status, 400);
    assert_eq!(post("/backends/127.0.0.1:1/drain".into()).status, 404);
    assert_eq!(post(format!("/backends/{}/explode", a.addr)).status, 404);
    assert_eq!(admin(&lb, "PATCH", "/backends", "").status, 405);

    let put = admin(&lb, "PUT", &format!("/backends/{}?weight=2", c.addr), "");
    assert_eq!(put.status, 201, "{}", put.text());
    assert!(put.text().contains("\"weight\":2"));
    assert!(tally(lb.addr, 12).contains_key("c"));
    assert_eq!(
        admin(&lb, "PUT", &format!("/backends/{}", c.addr), "").status,
        200
    );
    assert_eq!(admin(&lb, "PUT", "/backends/nocolon", "").status, 400);
    assert_eq!(admin(&lb, "PUT", "/backends/a:1?weight=0", "").status, 400);

    let del = admin(&lb, "DELETE", &format!("/backends/{}", c.addr), "");
    assert_eq!(del.status, 200, "{}", del.text());
    assert!(
        del.text().contains("\"state\":\"removed\""),
        "{}",
        del.text()
    );
    assert!(!tally(lb.addr, 9).contains_key("c"));
    assert_eq!(
        admin(&lb, "DELETE", &format!("/backends/{}", c.addr), "").status,
        404
    );
    assert!(
        eventually(Duration::from_secs(3), || !admin(
            &lb,
            "GET",
            "/backends",
            ""
        )
        .text()
        .contains(&c.addr.to_string())),
        "a removed backend with nothing in flight leaves the list"
    );
    assert!(lb.wait_log(
        &format!("backend {} has left", c.addr),
        Duration::from_secs(1)
    ));
}

#[test]
fn a_backend_named_by_host_is_looked_up_off_the_loop() {
    let a = backend("a", &[]);
    let named = backend("named", &[]);
    let lb = lb(&[&a], ADMIN);
    let key = format!("localhost:{}", named.addr.port());
    let r = admin(&lb, "PUT", &format!("/backends/{key}"), "");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("\"address\":\"{}\"", named.addr)),
        "{}",
        r.text()
    );
    let r = admin(&lb, "PUT", "/backends/no-such-host.invalid:80", "");
    assert_eq!(r.status, 400, "{}", r.text());
}

fn token_file(name: &str, mode: u32) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lb-test-{name}-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn write_actions_need_the_token_and_a_refusal_is_logged() {
    let a = backend("a", &[]);
    let path = token_file("token", 0o600);
    let flag = path.to_string_lossy().into_owned();
    let lb = lb(
        &[&a],
        &["--admin", "127.0.0.1:0", "--admin-token-file", &flag],
    );
    let drain = format!("/backends/{}/drain", a.addr);
    let r = admin(&lb, "POST", &drain, "");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic "))
    );
    assert!(lb.wait_log("missing or wrong token", Duration::from_secs(1)));
    assert_eq!(
        admin(&lb, "POST", &drain, "Authorization: Bearer wrong\r\n").status,
        401
    );
    assert_eq!(
        admin(&lb, "GET", "/backends", "").status,
        200,
        "reading needs no token"
    );
    assert!(
        admin(&lb, "GET", "/backends", "")
            .text()
            .contains("\"state\":\"ready\"")
    );
    let r = admin(&lb, "POST", &drain, "Authorization: Bearer s3cret\r\n");
    assert_eq!(r.status, 200, "{}", r.text());
    // What a browser sends after asking: basic auth, any user, the token as password.
    let ready = format!("/backends/{}/ready", a.addr);
    let r = admin(
        &lb,
        "POST",
        &ready,
        "Authorization: Basic b3BzOnMzY3JldA==\r\n",
    );
    assert!(r.text().contains("\"state\":\"ready\""), "{}", r.text());
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_missing_or_world_readable_token_file_stops_the_start_with_exit_2() {
    let open = token_file("open", 0o644);
    let missing = std::env::temp_dir().join("lb-test-no-such-token-file");
    for (path, says) in [(&open, "readable by every user"), (&missing, "cannot read")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lb"))
            .args(["-b", "127.0.0.1:1", "--admin", "off", "--admin-token-file"])
            .arg(path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    std::fs::remove_file(&open).ok();
}

#[test]
fn a_page_of_another_site_cannot_press_the_buttons() {
    let a = backend("a", &[]);
    let lb = lb(&[&a], ADMIN);
    let drain = format!("/backends/{}/drain", a.addr);
    let r = admin(&lb, "POST", &drain, "Origin: http://evil.example\r\n");
    assert_eq!(r.status, 403);
    assert!(lb.wait_log(
        "sent from the page of http://evil.example",
        Duration::from_secs(1)
    ));
    let own = format!("Origin: http://{}\r\n", admin_addr(&lb));
    assert_eq!(admin(&lb, "POST", &drain, &own).status, 200);
}

fn stats_row(lb: &Proc, backend: SocketAddr) -> String {
    let page = admin(lb, "GET", "/stats", "").text();
    page.lines()
        .find(|l| l.contains(&format!("data-backend=\"{backend}\"")))
        .unwrap_or_else(|| panic!("no row for {backend}:\n{page}"))
        .to_string()
}

#[test]
fn the_stats_page_drains_and_readies_with_plain_forms() {
    let a = backend("a", &[]);
    let lb = lb(&[&a], ADMIN);
    let action = format!("action=\"backends/{}/drain\"", a.addr);
    assert!(stats_row(&lb, a.addr).contains(&action));
    // The form posts to the path relative to /stats; the answer sends the browser back.
    let browser = "Accept: text/html,application/xhtml+xml\r\n";
    let r = admin(&lb, "POST", &format!("/backends/{}/drain", a.addr), browser);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("../../stats"));
    let row = stats_row(&lb, a.addr);
    assert!(
        row.contains("data-label=\"Control\">drain<form") && row.contains("/ready\""),
        "{row}"
    );
}
