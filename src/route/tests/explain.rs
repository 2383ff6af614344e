use super::{Req, exact, field, get, hosts, prefix, route};
use crate::config::model::{Action, HeaderEdits, Rewrite, Route};
use crate::route::RouteTable;

fn site() -> Vec<Route> {
    vec![
        Route {
            path: exact("/login"),
            methods: vec!["GET".into()],
            ..route("login")
        },
        Route {
            hosts: hosts(&["old.example.com"]),
            action: Action::Redirect {
                to: "https://new.example.com{path}{query}".into(),
                status: 308,
            },
            ..route("old")
        },
        Route {
            path: prefix("/admin"),
            action: Action::Respond {
                status: 404,
                body: "no such page\n".into(),
                content_type: "text/plain".into(),
            },
            ..route("#3")
        },
        Route {
            path: prefix("/debug"),
            headers: vec![field("X-Debug", Some("1"))],
            query: vec![field("trace", None)],
            ..route("debug")
        },
        Route {
            path: prefix("/api"),
            methods: vec!["GET".into(), "HEAD".into()],
            action: Action::Proxy {
                pool: "api".into(),
                fanout: None,
                rewrite: Some(Rewrite::StripPrefix("/api".into())),
                server_timeout: None,
                max_body: None,
            },
            response_headers: HeaderEdits {
                remove: vec!["Server".into()],
                ..HeaderEdits::default()
            },
            ..route("api")
        },
        Route {
            hosts: hosts(&["shop.example.com", "*.shop.example.com"]),
            path: prefix("/"),
            ..route("shop")
        },
    ]
}

fn explain(routes: &[Route], only: Option<&[String]>, req: &Req) -> Vec<String> {
    let t = RouteTable::compile(routes, only).expect("valid");
    req.with(|v| t.explain(routes, v))
}

#[test]
fn explain_says_why_each_route_before_the_match_did_not_match() {
    let routes = site();
    let req = Req {
        method: "GET",
        host: "www.example.com:443",
        target: "/x/../api/users?id=1",
        headers: &[],
    };
    assert_eq!(
        explain(&routes, None, &req),
        [
            "target /x/../api/users?id=1 is routed as /api/users?id=1",
            "#1 login: path /api/users is not /login",
            "#2 old: host www.example.com is not old.example.com",
            "#3: path /api/users is not under /admin",
            "#4 debug: path /api/users is not under /debug",
            "#5 api: matches -> pool api, path rewritten to /users?id=1; response headers: remove Server",
        ]
    );
}

#[test]
fn explain_names_the_failed_condition() {
    let routes = site();
    let post = Req {
        method: "POST",
        host: "shop.example.com",
        target: "/login",
        headers: &[],
    };
    assert_eq!(
        explain(&routes, None, &post)[..1],
        ["#1 login: method POST is not GET"]
    );
    let debug = Req {
        method: "POST",
        host: "",
        target: "/debug",
        headers: &[("x-debug", "1")],
    };
    let lines = explain(&routes, None, &debug);
    assert_eq!(
        lines[1],
        "#2 old: the request has no host, and this route wants old.example.com"
    );
    assert_eq!(lines[3], "#4 debug: no query parameter trace");
    assert_eq!(lines[4], "#5 api: path /debug is not under /api");
    assert_eq!(
        lines[5],
        "#6 shop: the request has no host, and this route wants one of shop.example.com, *.shop.example.com"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("no route matches: lb answers 404")
    );
    let head = Req {
        method: "HEAD",
        host: "a.shop.example.com",
        target: "/debug",
        headers: &[],
    };
    let lines = explain(&routes, None, &head);
    assert_eq!(
        lines[3],
        "#4 debug: no header field X-Debug with value \"1\""
    );
    assert_eq!(lines[5], "#6 shop: matches -> pool app");
}

#[test]
fn explain_shows_redirects_answers_and_fan_out() {
    let routes = site();
    let lines = explain(&routes, None, &get("Old.Example.com", "/p?q=1"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("#2 old: matches -> redirect 308 to https://new.example.com/p?q=1")
    );
    let lines = explain(&routes, None, &get("h", "/admin/x"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("#3: matches -> respond 404 (13 bytes of text/plain)")
    );
    let post = Req {
        method: "POST",
        host: "shop.example.com",
        target: "/cart",
        headers: &[],
    };
    let lines = explain(&routes, None, &post);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("#6 shop: matches -> pool app, fanned out")
    );
}

#[test]
fn explain_agrees_with_find() {
    let routes = site();
    let t = RouteTable::compile(&routes, None).expect("valid");
    for (method, host, target) in [
        ("GET", "shop.example.com", "/login"),
        ("POST", "shop.example.com", "/login"),
        ("GET", "old.example.com", "/login"),
        ("GET", "x.shop.example.com", "/api/x"),
        ("GET", "other", "/nothing"),
    ] {
        let req = Req {
            method,
            host,
            target,
            headers: &[],
        };
        let found = req.with(|v| t.find(v).map(|hit| hit.index));
        let last = req
            .with(|v| t.explain(&routes, v))
            .pop()
            .unwrap_or_default();
        match found {
            Some(i) => assert!(
                last.starts_with(&format!("#{} ", i + 1))
                    || last.starts_with(&format!("#{}:", i + 1)),
                "{last}"
            ),
            None => assert_eq!(last, "no route matches: lb answers 404"),
        }
    }
}

#[test]
fn explain_says_which_routes_the_listener_does_not_apply() {
    let routes = site();
    let only = ["api".to_string()];
    let lines = explain(&routes, Some(&only), &get("h", "/login"));
    assert_eq!(lines[0], "#1 login: not applied by this listener");
    assert_eq!(lines[4], "#5 api: path /login is not under /api");
    assert_eq!(lines[6], "no route matches: lb answers 404");
}

/// The example of docs/routing.md, and what it says explain prints.
#[test]
fn the_example_in_the_routing_docs_explains_as_shown() {
    let mut routes = site();
    routes.remove(3);
    routes[2].name = "#3".into();
    routes[1].action = Action::Redirect {
        to: "https://new.example.com{path}{query}".into(),
        status: 308,
    };
    let req = get("shop.example.com", "/x/../api/users?id=1");
    assert_eq!(
        explain(&routes, None, &req),
        [
            "target /x/../api/users?id=1 is routed as /api/users?id=1",
            "#1 login: path /api/users is not /login",
            "#2 old: host shop.example.com is not old.example.com",
            "#3: path /api/users is not under /admin",
            "#4 api: matches -> pool api, path rewritten to /users?id=1; response headers: remove Server",
        ]
    );
    let post = Req {
        method: "POST",
        host: "shop.example.com",
        target: "/login",
        headers: &[],
    };
    assert_eq!(
        explain(&routes, None, &post).last().map(String::as_str),
        Some("#5 shop: matches -> pool app, fanned out")
    );
}
