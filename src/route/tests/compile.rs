use super::{exact, field, hosts, prefix, route};
use crate::config::model::{Action, HeaderEdits, HostPattern, PathMatch, Rewrite, Route};
use crate::route::{RouteTable, parse_host_pattern};

/// The problems compiling `r` (after one valid route) finds: (key, message).
pub(super) fn problems(r: Route) -> Vec<(String, String)> {
    match RouteTable::compile(&[route("ok"), r], None) {
        Ok(_) => Vec::new(),
        Err(list) => list.into_iter().map(|p| (p.at.0, p.message)).collect(),
    }
}

fn respond(status: u16, body: &str, content_type: &str) -> Action {
    Action::Respond {
        status,
        body: body.into(),
        content_type: content_type.into(),
    }
}

#[test]
fn each_bad_value_is_reported_at_its_key_with_a_reason() {
    let regex = |r: &str| Some(PathMatch::Regex(r.into()));
    let cases: Vec<(Route, &str, &str)> = vec![
        (
            Route {
                path: regex("/a(b"),
                ..route("r")
            },
            "routes[1].path_regex",
            "is not a valid regular expression: unclosed group",
        ),
        (
            Route {
                path: regex("a)|(b"),
                ..route("r")
            },
            "routes[1].path_regex",
            "unopened group",
        ),
        (
            Route {
                path: exact("login"),
                ..route("r")
            },
            "routes[1].path",
            "does not start with '/'",
        ),
        (
            Route {
                path: prefix("api"),
                ..route("r")
            },
            "routes[1].path_prefix",
            "does not start with '/'",
        ),
        (
            Route {
                path: exact("/a?b=1"),
                ..route("r")
            },
            "routes[1].path",
            "holds a query",
        ),
        (
            Route {
                path: exact("/a b"),
                ..route("r")
            },
            "routes[1].path",
            "percent-encode it",
        ),
        (
            Route {
                path: prefix("/../x"),
                ..route("r")
            },
            "routes[1].path_prefix",
            "climbs above the root",
        ),
        (
            Route {
                path: prefix("/a%2Fb"),
                ..route("r")
            },
            "routes[1].path_prefix",
            "encoded slash",
        ),
        (
            Route {
                methods: vec!["GET".into(), "GE T".into()],
                ..route("r")
            },
            "routes[1].methods[1]",
            "is not a method name",
        ),
        (
            Route {
                headers: vec![field("X Bad", None)],
                ..route("r")
            },
            "routes[1].header[0]",
            "is not a header field name",
        ),
        (
            Route {
                headers: vec![field("X-A", Some("a\r\nb"))],
                ..route("r")
            },
            "routes[1].header[0]",
            "visible ASCII",
        ),
        (
            Route {
                query: vec![field("", None)],
                ..route("r")
            },
            "routes[1].query[0]",
            "needs a name",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://x{path}".into(),
                    status: 200,
                },
                ..route("r")
            },
            "routes[1].redirect.status",
            "not one of 301, 302, 303, 307, 308",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://{hots}{path}".into(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "unknown placeholder {hots}",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://{host".into(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "a `{` without its `}`",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://host}/".into(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "a `}` without its `{`",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://{{host}}".into(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "a `{` without its `}`",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: "https://a b/".into(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "cannot carry",
        ),
        (
            Route {
                action: Action::Redirect {
                    to: String::new(),
                    status: 301,
                },
                ..route("r")
            },
            "routes[1].redirect.to",
            "is empty",
        ),
        (
            Route {
                action: respond(600, "", ""),
                ..route("r")
            },
            "routes[1].respond.status",
            "not between 200 and 599",
        ),
        (
            Route {
                action: respond(101, "", ""),
                ..route("r")
            },
            "routes[1].respond.status",
            "not between 200 and 599",
        ),
        (
            Route {
                action: respond(204, "x", ""),
                ..route("r")
            },
            "routes[1].respond.body",
            "a 204 answer has no body",
        ),
        (
            Route {
                action: respond(200, "", "text/plain\r\nX: 1"),
                ..route("r")
            },
            "routes[1].respond.content_type",
            "visible ASCII",
        ),
        (
            Route {
                action: Action::Proxy {
                    pool: "p".into(),
                    fanout: None,
                    rewrite: Some(Rewrite::StripPrefix("home".into())),
                    server_timeout: None,
                    max_body: None,
                },
                ..route("r")
            },
            "routes[1].rewrite.strip_prefix",
            "does not start with '/'",
        ),
        (
            Route {
                action: Action::Proxy {
                    pool: "p".into(),
                    fanout: None,
                    rewrite: Some(Rewrite::ReplacePrefix {
                        from: "/a".into(),
                        to: "/b?x".into(),
                    }),
                    server_timeout: None,
                    max_body: None,
                },
                ..route("r")
            },
            "routes[1].rewrite.to",
            "holds a query",
        ),
        (
            Route {
                hosts: vec![HostPattern::Exact("a.*.com".into())],
                ..route("r")
            },
            "routes[1].host[0]",
            "`*` may only stand alone as the first label",
        ),
        (
            Route {
                hosts: vec![HostPattern::Exact("*".into())],
                ..route("r")
            },
            "routes[1].host[0]",
            "leave `host` out",
        ),
        (
            Route {
                hosts: vec![HostPattern::Exact(".example.com".into())],
                ..route("r")
            },
            "routes[1].host[0]",
            "starts with a dot",
        ),
        (
            Route {
                hosts: vec![HostPattern::Exact("a/b".into())],
                ..route("r")
            },
            "routes[1].host[0]",
            "is not a host name",
        ),
        (
            Route {
                name: "ok".into(),
                ..route("r")
            },
            "routes[1].name",
            "route name \"ok\" is already the name of routes[0]",
        ),
    ];
    for (r, at, message) in cases {
        let found = problems(r);
        assert!(
            found.iter().any(|(a, m)| a == at && m.contains(message)),
            "want {at}: ...{message}...; found {found:?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = Route {
        path: exact("x"),
        methods: vec!["G T".into()],
        action: respond(700, "", ""),
        response_headers: HeaderEdits {
            remove: vec!["Content-Length".into()],
            ..HeaderEdits::default()
        },
        ..route("r")
    };
    assert_eq!(problems(bad).len(), 4);
}

#[test]
fn a_name_the_listener_lists_must_exist() {
    let only = ["ok".to_string(), "nope".to_string()];
    let found = RouteTable::compile(&[route("ok")], Some(&only))
        .err()
        .unwrap_or_default();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].at.0, "only[1]");
    assert_eq!(found[0].message, "no route is named \"nope\"");
}

#[test]
fn host_patterns_are_reduced_to_lower_case_names_without_port() {
    let cases: &[(&str, HostPattern)] = &[
        ("Example.COM", HostPattern::Exact("example.com".into())),
        ("example.com:8080", HostPattern::Exact("example.com".into())),
        ("example.com.", HostPattern::Exact("example.com".into())),
        (
            "*.Example.com:443",
            HostPattern::Suffix("example.com".into()),
        ),
        ("[::1]:80", HostPattern::Exact("[::1]".into())),
        ("127.0.0.1", HostPattern::Exact("127.0.0.1".into())),
    ];
    for (written, want) in cases {
        assert_eq!(parse_host_pattern(written).as_ref(), Ok(want), "{written}");
    }
    for bad in [
        "", "*", "*.", "a.*", "**.a", "*a.com", "a b", "[::1", "*.[::1]", "é.com",
    ] {
        assert!(parse_host_pattern(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_route_after_one_that_takes_everything_it_could_is_a_warning() {
    let routes = [
        Route {
            hosts: hosts(&["*.example.com"]),
            ..route("all-example")
        },
        Route {
            hosts: hosts(&["a.example.com"]),
            path: prefix("/x"),
            ..route("shadowed-exact")
        },
        Route {
            hosts: hosts(&["*.b.example.com"]),
            ..route("shadowed-wild")
        },
        Route {
            hosts: hosts(&["example.com"]),
            ..route("apex")
        },
        Route {
            path: prefix("/"),
            ..route("everything")
        },
        Route {
            path: exact("/late"),
            ..route("late")
        },
    ];
    let t = RouteTable::compile(&routes, None).expect("valid");
    let warned: Vec<(&str, &str)> = t
        .warnings()
        .iter()
        .map(|w| (w.at.0.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        warned,
        [
            (
                "routes[1]",
                "route \"shadowed-exact\" can never match: route \"all-example\" (routes[0]) comes first and takes every request for *.example.com"
            ),
            (
                "routes[2]",
                "route \"shadowed-wild\" can never match: route \"all-example\" (routes[0]) comes first and takes every request for *.example.com"
            ),
            (
                "routes[5]",
                "route \"late\" can never match: route \"everything\" (routes[4]) comes first and takes every request"
            ),
        ]
    );
}
