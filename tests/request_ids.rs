//! X-Request-Id (issue 21, item 2): the ids lb makes are random UUIDs that no client can
//! guess from the ones it was given, and a request with two ids reaches no backend.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// The 128 bits of a UUID in its text form, if `id` is a version 4 UUID.
fn uuid_v4(id: &str) -> Option<u128> {
    let groups: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if id.len() != 36 || lens != [8, 4, 4, 4, 12] || !groups[2].starts_with('4') {
        return None;
    }
    if !groups[3].starts_with(['8', '9', 'a', 'b']) {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}

#[test]
fn ids_lb_makes_are_random_uuids_that_follow_no_counter() {
    let b = RawBackend::start(OK);
    let addr = b.addr.to_string();
    let lb = lb_addrs(&[&addr], &["--health-interval", "0", "--workers", "2"]);
    let mut c = Client::new(lb.addr);
    let mut ids = Vec::new();
    for _ in 0..200 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        let id = r.header("x-request-id").expect("an id").to_string();
        ids.push(uuid_v4(&id).unwrap_or_else(|| panic!("not a UUIDv4: {id}")));
    }
    // Two more on connections of their own (either worker may take them).
    for _ in 0..2 {
        let id = get(lb.addr, "/").header("x-request-id").map(str::to_string);
        ids.push(id.as_deref().and_then(uuid_v4).expect("a UUIDv4"));
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "repeated"
    );
    // A counter, whatever its base, makes ids that differ by a little: one more request,
    // or a few more, apart. Random ones differ in their high bits.
    for pair in ids.windows(2) {
        let gap = pair[0].abs_diff(pair[1]);
        assert!(gap > 1 << 80, "{:032x} then {:032x}", pair[0], pair[1]);
    }
    let received = b.received();
    let last = format!("{:032x}", ids[ids.len() - 1]);
    let forwarded = format!(
        "X-Request-Id: {}-{}-{}-{}-{}\r\n",
        &last[..8],
        &last[8..12],
        &last[12..16],
        &last[16..20],
        &last[20..]
    );
    assert!(
        received.contains(&forwarded),
        "the backend got the id the client got"
    );
}

#[test]
fn a_request_with_two_ids_is_refused_and_reaches_no_backend() {
    let (a, b) = (RawBackend::start(OK), RawBackend::start(OK));
    let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
    let lb = lb_addrs(&[&addr_a, &addr_b], &["--health-interval", "0"]);
    for method in ["GET", "POST"] {
        for (first, second) in [("key-1", "key-2"), ("key-1", "bad id"), ("bad id", "key-1")] {
            let raw = format!(
                "{method} /two HTTP/1.1\r\nHost: a\r\nX-Request-Id: {first}\r\n\
                 X-Request-Id: {second}\r\nContent-Length: 2\r\n\r\nhi"
            );
            let (answer, closed) = exchange_raw(lb.addr, raw.as_bytes(), Duration::from_secs(5));
            assert!(
                answer.starts_with("HTTP/1.1 400 "),
                "{first}, {second}: {answer}"
            );
            assert!(closed, "the connection stays open after a 400");
        }
    }
    // A POST reaches every backend: once both have this one, nothing before it is missed.
    assert_eq!(post(lb.addr, "/marker").status, 200);
    for backend in [&a, &b] {
        assert!(eventually(Duration::from_secs(10), || backend
            .received()
            .contains("/marker")));
        let got = backend.received();
        assert!(!got.contains("/two"), "{got}");
        assert!(!got.contains("bad id") && !got.contains("key-"), "{got}");
    }
}
