use super::{Req, exact, field, get, hosts, prefix, route, table};
use crate::config::model::{Action, PathMatch, Route};
use crate::route::RouteTable;

/// Whether a table of the one route `r` takes `req`.
fn takes(r: &Route, req: &Req) -> bool {
    req.routed_by(&table(std::slice::from_ref(r))).is_some()
}

#[test]
fn path_kinds() {
    let regex = |r: &str| Some(PathMatch::Regex(r.to_string()));
    // The guard docs/routing.md gives for servers that ignore case or strip `;x`.
    let guard = regex("(?i)/admin(;[^/]*)?(/.*)?");
    let cases: &[(Option<PathMatch>, &str, bool)] = &[
        (exact("/login"), "/login", true),
        (exact("/login"), "/login?next=/", true),
        (exact("/login"), "/login/", false),
        (exact("/login"), "/Login", false),
        (exact("/login"), "/log", false),
        (exact("/a/~b"), "/a/%7Eb", true),
        (exact("/a/%7Eb"), "/a/~b", true),
        (prefix("/api"), "/api", true),
        (prefix("/api"), "/api/", true),
        (prefix("/api"), "/api/x/y", true),
        (prefix("/api"), "/api?q", true),
        (prefix("/api"), "/apix", false),
        (prefix("/api"), "/ap", false),
        (prefix("/api"), "/", false),
        (prefix("/api/"), "/api/", true),
        (prefix("/api/"), "/api/x", true),
        (prefix("/api/"), "/api", false),
        (prefix("/api/"), "/api?q", false),
        (prefix("/"), "/", true),
        (prefix("/"), "/anything/at/all?x", true),
        (regex(r"/u/\d+"), "/u/42", true),
        (regex(r"/u/\d+"), "/u/42?x=1", true),
        (regex(r"/u/\d+"), "/u/42/x", false),
        (regex(r"/u/\d+"), "/x/u/42", false),
        (regex("/a|/b"), "/b", true),
        (regex("/a|/b"), "/bc", false),
        (regex("/a|/b"), "/xa", false),
        (regex("/caf%C3%A9"), "/caf%c3%a9", true),
        (prefix("/admin"), "/admin;x", false),
        (prefix("/admin"), "/ADMIN", false),
        (guard.clone(), "/ADMIN", true),
        (guard.clone(), "/admin;jsessionid=1/x", true),
        (guard.clone(), "/Admin/", true),
        (guard.clone(), "/administrator", false),
        (None, "/whatever", true),
    ];
    for (path, target, want) in cases {
        let r = Route {
            path: path.clone(),
            ..route("r")
        };
        assert_eq!(takes(&r, &get("h", target)), *want, "{path:?} {target}");
    }
}

#[test]
fn methods_headers_and_query() {
    let with_methods = Route {
        methods: vec!["GET".into(), "HEAD".into()],
        ..route("m")
    };
    let header = |value| Route {
        headers: vec![field("X-Debug", value)],
        ..route("h")
    };
    let query = |name, value| Route {
        query: vec![field(name, value)],
        ..route("q")
    };
    let req = |method, target, headers| Req {
        method,
        host: "h",
        target,
        headers,
    };
    let cases: &[(Route, Req, bool)] = &[
        (with_methods.clone(), req("GET", "/", &[]), true),
        (with_methods.clone(), req("HEAD", "/", &[]), true),
        (with_methods.clone(), req("POST", "/", &[]), false),
        (with_methods.clone(), req("get", "/", &[]), false),
        (header(None), req("GET", "/", &[("x-debug", "")]), true),
        (header(None), req("GET", "/", &[("X-Other", "1")]), false),
        (
            header(Some("1")),
            req("GET", "/", &[("X-DEBUG", " 1\t")]),
            true,
        ),
        (
            header(Some("1")),
            req("GET", "/", &[("X-Debug", "2")]),
            false,
        ),
        (
            header(Some("on")),
            req("GET", "/", &[("X-Debug", "ON")]),
            false,
        ),
        // Any of the fields of that name: a second one cannot hide the first.
        (
            header(Some("1")),
            req("GET", "/", &[("X-Debug", "0"), ("X-Debug", "1")]),
            true,
        ),
        (query("debug", None), req("GET", "/?debug", &[]), true),
        (
            query("debug", None),
            req("GET", "/?a=1&debug=&b", &[]),
            true,
        ),
        (query("debug", None), req("GET", "/?debugx=1", &[]), false),
        (query("debug", None), req("GET", "/", &[]), false),
        (query("debug", None), req("GET", "/?", &[]), false),
        (query("debug", Some("")), req("GET", "/?debug", &[]), true),
        (
            query("debug", Some("true")),
            req("GET", "/?x=1&debug=true", &[]),
            true,
        ),
        (
            query("debug", Some("true")),
            req("GET", "/?debug=false&debug=true", &[]),
            true,
        ),
        (
            query("debug", Some("true")),
            req("GET", "/?debug=%74rue", &[]),
            true,
        ),
        (
            query("debug", Some("true")),
            req("GET", "/?%64ebug=true", &[]),
            true,
        ),
        (
            query("debug", Some("true")),
            req("GET", "/?debug=truex", &[]),
            false,
        ),
        (
            query("debug", Some("true")),
            req("GET", "/?debug=tru", &[]),
            false,
        ),
        (query("q", Some("a b")), req("GET", "/?q=a+b", &[]), true),
        (query("q", Some("a b")), req("GET", "/?q=a%20b", &[]), true),
        (query("q", Some("100%")), req("GET", "/?q=100%", &[]), true),
        (query("q", Some("a=b")), req("GET", "/?q=a=b", &[]), true),
    ];
    for (r, req, want) in cases {
        assert_eq!(
            takes(r, req),
            *want,
            "{:?} {} {} {:?}",
            r.name,
            req.method,
            req.target,
            req.headers
        );
    }
}

#[test]
fn hosts_ignore_case_port_and_a_trailing_dot() {
    let one = Route {
        hosts: hosts(&["Shop.Example.com:8443"]),
        ..route("one")
    };
    let wild = Route {
        hosts: hosts(&["*.example.com"]),
        ..route("wild")
    };
    let v6 = Route {
        hosts: hosts(&["[::1]"]),
        ..route("v6")
    };
    let cases: &[(&Route, &str, bool)] = &[
        (&one, "shop.example.com", true),
        (&one, "SHOP.EXAMPLE.COM:8080", true),
        (&one, "shop.example.com.", true),
        (&one, "shop.example.com.evil", false),
        (&one, "xshop.example.com", false),
        (&one, "", false),
        (&wild, "a.example.com", true),
        (&wild, "a.b.example.com:80", true),
        (&wild, "example.com", false),
        (&wild, ".example.com", false),
        (&wild, "aexample.com", false),
        (&v6, "[::1]:8080", true),
        (&v6, "[::2]", false),
    ];
    for (r, host, want) in cases {
        assert_eq!(takes(r, &get(host, "/")), *want, "{} {host}", r.name);
    }
    let long = "a".repeat(300);
    assert!(!takes(&wild, &get(&long, "/")));
}

#[test]
fn the_first_route_in_file_order_wins_across_exact_wildcard_and_any_host() {
    let routes = [
        Route {
            path: prefix("/a"),
            ..route("any-a")
        },
        Route {
            hosts: hosts(&["h.example.com"]),
            path: prefix("/b"),
            ..route("exact-b")
        },
        Route {
            hosts: hosts(&["*.example.com"]),
            path: prefix("/b"),
            ..route("wild-b")
        },
        Route {
            hosts: hosts(&["*.example.com"]),
            path: prefix("/c"),
            ..route("wild-c")
        },
        Route {
            hosts: hosts(&["*.deep.example.com"]),
            path: prefix("/d"),
            ..route("deep-d")
        },
        Route {
            hosts: hosts(&["h.example.com", "*.example.com"]),
            ..route("both")
        },
        Route {
            path: prefix("/e"),
            ..route("any-e")
        },
    ];
    let t = table(&routes);
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("h.example.com", "/a", Some("any-a")),
        ("h.example.com", "/b", Some("exact-b")),
        ("g.example.com", "/b", Some("wild-b")),
        ("h.example.com", "/c", Some("wild-c")),
        ("x.deep.example.com", "/c", Some("wild-c")),
        ("x.deep.example.com", "/d", Some("deep-d")),
        ("h.example.com", "/d", Some("both")),
        ("h.example.com", "/e", Some("both")),
        ("other.org", "/e", Some("any-e")),
        ("other.org", "/a", Some("any-a")),
        ("other.org", "/b", None),
        ("", "/a", Some("any-a")),
        ("", "/d", None),
    ];
    for &(host, target, want) in cases {
        assert_eq!(
            get(host, target).routed_by(&t).as_deref(),
            want,
            "{host} {target}"
        );
    }
}

#[test]
fn a_deny_route_cannot_be_dodged_by_how_the_path_is_written() {
    let deny = Route {
        path: prefix("/admin"),
        action: Action::Respond {
            status: 404,
            body: String::new(),
            content_type: String::new(),
        },
        ..route("deny")
    };
    let t = table(&[deny, route("rest")]);
    for target in [
        "/admin",
        "/x/../admin",
        "//admin",
        "/%61dmin",
        "/%61%64%6D%69%6E/",
        "/./admin/x",
        "/x/%2E%2E/admin",
        "/admin/./../admin/y",
    ] {
        assert_eq!(
            get("h", target).routed_by(&t).as_deref(),
            Some("deny"),
            "{target}"
        );
    }
    assert_eq!(
        get("h", "/administrator").routed_by(&t).as_deref(),
        Some("rest")
    );
}

#[test]
fn routes_a_listener_does_not_apply_are_never_taken() {
    let routes = [
        Route {
            path: prefix("/a"),
            ..route("a")
        },
        route("all"),
    ];
    let only = ["all".to_string()];
    let t = RouteTable::compile(&routes, Some(&only)).expect("valid");
    assert_eq!(get("h", "/a").routed_by(&t).as_deref(), Some("all"));
    let none: [String; 0] = [];
    let t = RouteTable::compile(&routes, Some(&none)).expect("valid");
    assert_eq!(get("h", "/a").routed_by(&t), None);
}

#[test]
fn the_hit_gives_the_site_index_of_the_route() {
    let routes = [
        Route {
            hosts: hosts(&["a.com"]),
            ..route("a")
        },
        Route {
            hosts: hosts(&["b.com"]),
            ..route("b")
        },
    ];
    let t = table(&routes);
    let index = get("b.com", "/").with(|v| t.find(v).map(|hit| hit.index));
    assert_eq!(index, Some(1));
}

#[test]
fn each_of_many_hosts_finds_its_own_routes() {
    let mut routes = Vec::new();
    for h in 0..500 {
        routes.push(Route {
            hosts: hosts(&[&format!("h{h}.example.com")]),
            path: prefix("/a"),
            ..route(&format!("h{h}"))
        });
        routes.push(Route {
            hosts: hosts(&[&format!("*.w{h}.example.net")]),
            ..route(&format!("w{h}"))
        });
    }
    let t = table(&routes);
    for h in 0..500 {
        let exact = format!("H{h}.Example.com");
        assert_eq!(get(&exact, "/a/x").routed_by(&t), Some(format!("h{h}")));
        assert_eq!(get(&exact, "/b").routed_by(&t), None);
        let wild = format!("x.y.w{h}.example.net:443");
        assert_eq!(get(&wild, "/").routed_by(&t), Some(format!("w{h}")));
    }
    assert_eq!(get("h500.example.com", "/a").routed_by(&t), None);
    assert_eq!(get("w1.example.net", "/").routed_by(&t), None);
}
