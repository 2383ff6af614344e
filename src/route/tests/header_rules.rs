use super::compile::problems;
use super::route;
use crate::buffer::BufferPool;
use crate::config::model::{HeaderEdits, Route};
use crate::route::{Edits, Full, Sink};

fn edits(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
    let pairs = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    HeaderEdits {
        set: pairs(set),
        add: pairs(add),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    }
}

/// The problems of a route with these request (or response) edits: (key, message).
fn problems_of(request: bool, e: HeaderEdits) -> Vec<(String, String)> {
    problems(if request {
        Route {
            request_headers: e,
            ..route("r")
        }
    } else {
        Route {
            response_headers: e,
            ..route("r")
        }
    })
}

#[test]
fn bad_header_rules_are_reported_at_their_key() {
    let cases: &[(bool, HeaderEdits, &str, &str)] = &[
        (
            true,
            edits(&[("Content-Length", "1")], &[], &[]),
            "routes[1].headers.request.set",
            "a rule cannot set Content-Length: lb frames messages by it",
        ),
        (
            true,
            edits(&[], &[("x-forwarded-for", "1.2.3.4")], &[]),
            "routes[1].headers.request.add",
            "a rule cannot add x-forwarded-for: lb writes it from the connection; a rule could forge the client",
        ),
        (
            true,
            edits(&[], &[], &["Host"]),
            "routes[1].headers.request.remove[0]",
            "a rule cannot remove Host: lb routes by it and forwards it as the client sent it",
        ),
        (
            false,
            edits(&[], &[], &["X-Ok", "Transfer-Encoding"]),
            "routes[1].headers.response.remove[1]",
            "a rule cannot remove Transfer-Encoding",
        ),
        (
            false,
            edits(&[], &[], &["Connection"]),
            "routes[1].headers.response.remove[0]",
            "it is hop-by-hop: lb sets it per connection",
        ),
        (
            true,
            edits(&[], &[], &["X-Request-Id"]),
            "routes[1].headers.request.remove[0]",
            "lb assigns it and logs it",
        ),
        (
            false,
            edits(&[("X:Y", "1")], &[], &[]),
            "routes[1].headers.response.set",
            "\"X:Y\" is not a header field name",
        ),
        (
            false,
            edits(&[], &[], &[""]),
            "routes[1].headers.response.remove[0]",
            "\"\" is not a header field name",
        ),
        (
            false,
            edits(&[("X-A", "1\n2")], &[], &[]),
            "routes[1].headers.response.set",
            "X-A: value \"1\\n2\" holds '\\n'",
        ),
        (
            false,
            edits(&[], &[("X-A", "caf\u{e9}")], &[]),
            "routes[1].headers.response.add",
            "visible ASCII",
        ),
        (
            false,
            edits(&[("X-A", " 1")], &[], &[]),
            "routes[1].headers.response.set",
            "starts or ends with white space",
        ),
        (
            false,
            edits(&[("X-A", "1"), ("x-a", "2")], &[], &[]),
            "routes[1].headers.response.set",
            "x-a is set twice",
        ),
    ];
    for (request, e, at, message) in cases {
        let found = problems_of(*request, e.clone());
        assert!(
            found.iter().any(|(a, m)| a == at && m.contains(message)),
            "want {at}: ...{message}...; found {found:?}"
        );
    }
}

#[test]
fn no_rule_can_touch_a_field_lb_owns() {
    let owned = [
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Host",
        "X-Request-Id",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Forwarded",
    ];
    for name in owned {
        for request in [true, false] {
            for e in [
                edits(&[(name, "1")], &[], &[]),
                edits(&[], &[(name, "1")], &[]),
                edits(&[], &[], &[&name.to_ascii_lowercase()]),
            ] {
                let found = problems_of(request, e);
                assert_eq!(found.len(), 1, "{name}: {found:?}");
                assert!(found[0].1.starts_with("a rule cannot "), "{found:?}");
            }
        }
    }
    assert!(
        problems_of(
            false,
            edits(&[("Server", "lb")], &[("Via", "lb")], &["X-Powered-By"])
        )
        .is_empty()
    );
}

#[test]
fn header_edits_drop_removed_and_replaced_fields_and_write_set_then_add() {
    let edits = Edits::new(&HeaderEdits {
        set: vec![(
            "Strict-Transport-Security".into(),
            "max-age=31536000".into(),
        )],
        add: vec![
            ("Via".into(), "lb".into()),
            ("X-Extra".into(), "a, b".into()),
        ],
        remove: vec!["Server".into()],
    });
    for (name, dropped) in [
        ("server", true),
        ("SERVER", true),
        ("strict-transport-security", true),
        ("Via", false),
        ("X-Extra", false),
        ("Date", false),
    ] {
        assert_eq!(edits.drops(name), dropped, "{name}");
    }
    let mut out = Vec::new();
    edits.write_added(&mut out).expect("room");
    assert_eq!(
        out,
        b"Strict-Transport-Security: max-age=31536000\r\nVia: lb\r\nX-Extra: a, b\r\n"
    );
    assert!(!edits.is_empty());
    assert!(Edits::new(&HeaderEdits::default()).is_empty());
}

#[test]
fn a_full_buffer_is_said_and_not_overrun() {
    let mut pool = BufferPool::new(16, 1);
    let mut buf = pool.get();
    let edits = Edits::new(&HeaderEdits {
        set: vec![("X-Long".into(), "0123456789".into())],
        ..HeaderEdits::default()
    });
    assert_eq!(edits.write_added(&mut buf), Err(Full));
    assert!(buf.is_empty());
    assert_eq!(buf.put(b"0123456789abcdef"), Ok(()));
    assert_eq!(buf.put(b"x"), Err(Full));
}
