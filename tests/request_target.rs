//! Absolute-form request targets (issue 21, item 7): the backend gets the host lb saw,
//! in origin-form, never a target naming one host and a Host field naming another.

mod common;

use std::time::Duration;

use common::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn an_absolute_form_target_reaches_the_backend_in_origin_form_with_its_own_host() {
    let b = RawBackend::start(OK);
    let lb = lb_addrs(&[&b.addr.to_string()], &["--health-interval", "0"]);
    let (answer, _) = exchange_raw(
        lb.addr,
        b"GET http://evil.example/admin HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let got = b.received();
    assert!(got.starts_with("GET /admin HTTP/1.1\r\n"), "{got}");
    assert!(got.contains("\r\nHost: evil.example\r\n"), "{got}");
    assert!(
        !got.contains("good.example") && !got.contains("http://"),
        "{got}"
    );
}

#[test]
fn a_target_with_user_information_or_another_scheme_is_refused() {
    let b = RawBackend::start(OK);
    let lb = lb_addrs(&[&b.addr.to_string()], &["--health-interval", "0"]);
    for target in [
        "http://user:pw@good.example/x",
        "ftp://good.example/x",
        "good.example/x",
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: good.example\r\n\r\n");
        let (answer, closed) = exchange_raw(lb.addr, raw.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{target}: {answer}");
        assert!(closed, "{target}");
    }
    assert_eq!(get(lb.addr, "/marker").status, 200);
    assert!(eventually(Duration::from_secs(10), || b
        .received()
        .contains("/marker")));
    assert!(!b.received().contains("/x"), "{}", b.received());
}
