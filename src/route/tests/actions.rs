use super::{Req, get, prefix, route, table};
use crate::config::model::{Action, Rewrite, Route};
use crate::route::{Action as Compiled, Sink};

fn proxy(rewrite: Rewrite) -> Route {
    Route {
        action: Action::Proxy {
            pool: "app".into(),
            fanout: None,
            rewrite: Some(rewrite),
            server_timeout: None,
            max_body: None,
        },
        ..route("r")
    }
}

/// What `route` writes for the request: the rewritten target, the Location, or the
/// fixed answer's head and body.
fn written(r: Route, req: &Req) -> String {
    let t = table(&[r]);
    req.with(|v| {
        let hit = t.find(v).expect("the route matches");
        let mut out = Vec::new();
        match hit.route.action() {
            Compiled::Proxy(p) => p.rewrite.as_ref().expect("a rewrite").write(v, &mut out),
            Compiled::Redirect(r) => r.write_head(v, &mut out),
            Compiled::Respond(r) => {
                out.extend_from_slice(r.head());
                out.extend_from_slice(b"\r\n");
                out.put(r.body())
            }
        }
        .expect("a Vec has room");
        String::from_utf8(out).expect("ASCII")
    })
}

#[test]
fn rewrites() {
    let strip = |p: &str| Rewrite::StripPrefix(p.into());
    let replace = |from: &str, to: &str| Rewrite::ReplacePrefix {
        from: from.into(),
        to: to.into(),
    };
    let cases: &[(Rewrite, &str, &str)] = &[
        (strip("/home"), "/home/x?q", "/x?q"),
        (strip("/home"), "/home", "/"),
        (strip("/home"), "/home/", "/"),
        (strip("/home"), "/home?q", "/?q"),
        (strip("/home"), "/home/a/b", "/a/b"),
        (strip("/home"), "/homely", "/homely"),
        (strip("/home"), "/other?q", "/other?q"),
        (strip("/home/"), "/home/x", "/x"),
        (strip("/home/"), "/home/", "/"),
        (strip("/home"), "/home/../home/%7Ex", "/~x"),
        (replace("/api", "/v2"), "/api/users?id=1", "/v2/users?id=1"),
        (replace("/api", "/v2"), "/api", "/v2"),
        (replace("/api", "/v2"), "/apix", "/apix"),
        (replace("/api", "/v2/"), "/api", "/v2/"),
        (replace("/api", "/v2/"), "/api/x", "/v2/x"),
        (replace("/api/", "/v2"), "/api/x", "/v2/x"),
        (replace("/api/", "/v2/"), "/api/x", "/v2/x"),
        (replace("/", "/app"), "/x?y", "/app/x?y"),
        (replace("/", "/app"), "/", "/app/"),
    ];
    for (rewrite, target, want) in cases {
        assert_eq!(
            written(proxy(rewrite.clone()), &get("h", target)),
            *want,
            "{rewrite:?} {target}"
        );
    }
}

fn redirect(to: &str, status: u16) -> Route {
    Route {
        action: Action::Redirect {
            to: to.into(),
            status,
        },
        ..route("r")
    }
}

#[test]
fn redirects_fill_in_host_path_and_query() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "https://{host}{path}{query}",
            "Shop.Example.com:8080",
            "/a/../b?x=1",
            "https://shop.example.com/b?x=1",
        ),
        ("https://{host}{path}{query}", "h", "/b?", "https://h/b"),
        ("https://{host}{path}{query}", "h", "/b", "https://h/b"),
        (
            "https://new.example.com{path}",
            "old.example.com",
            "/p?q",
            "https://new.example.com/p",
        ),
        ("/login?next={path}", "h", "/cart", "/login?next=/cart"),
        ("https://{host}/", "", "/", "https:///"),
        ("https://{host}/", "[::1]:80", "/", "https://[::1]/"),
    ];
    for (to, host, target, want) in cases {
        let head = written(redirect(to, 308), &get(host, target));
        let want =
            format!("HTTP/1.1 308 Permanent Redirect\r\nLocation: {want}\r\nContent-Length: 0\r\n");
        assert_eq!(head, want, "{to} {host} {target}");
    }
}

#[test]
fn nothing_a_client_sends_can_break_the_location_field() {
    let to = "https://{host}{path}{query}";
    let cases: &[(&str, &str, &str)] = &[
        ("evil.com/@x", "/", "https://evil.com%2F%40x/"),
        ("a\tb", "/", "https://a%09b/"),
        ("h", "/caf\u{e9}?q=\u{e9}", "https://h/caf%C3%A9?q=%C3%A9"),
        ("h\u{e9}", "/", "https://h%C3%A9/"),
    ];
    for (host, target, want) in cases {
        let head = written(redirect(to, 302), &get(host, target));
        let location = head.lines().nth(1).expect("a Location line");
        assert_eq!(location, format!("Location: {want}"), "{host:?} {target:?}");
        assert!(
            head.bytes()
                .all(|b| b.is_ascii_graphic() || b" \r\n".contains(&b)),
            "{head:?}"
        );
        assert_eq!(head.matches("\r\n").count(), 3, "{head:?}");
    }
}

#[test]
fn a_respond_route_answers_with_its_head_and_body() {
    let respond = |status, body: &str, content_type: &str| Route {
        action: Action::Respond {
            status,
            body: body.into(),
            content_type: content_type.into(),
        },
        ..route("r")
    };
    assert_eq!(
        written(respond(404, "no such page\n", "text/plain"), &get("h", "/")),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nno such page\n"
    );
    assert_eq!(
        written(respond(299, "", ""), &get("h", "/")),
        "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn a_post_fans_out_unless_the_route_says_not_to() {
    for (fanout, method, want) in [
        (None, "POST", true),
        (None, "GET", false),
        (Some(true), "POST", true),
        (Some(true), "PUT", false),
        (Some(false), "POST", false),
    ] {
        let r = Route {
            path: prefix("/"),
            action: Action::Proxy {
                pool: "app".into(),
                fanout,
                rewrite: None,
                server_timeout: None,
                max_body: None,
            },
            ..route("r")
        };
        let t = table(&[r]);
        let fans = get("h", "/").with(|v| match t.find(v).map(|h| h.route.action()) {
            Some(Compiled::Proxy(p)) => p.fans_out(method),
            _ => panic!("a proxy route"),
        });
        assert_eq!(fans, want, "{fanout:?} {method}");
    }
}
