//! Cost of the routing step per request: normalizing the target and finding the route,
//! with one route and with 1 000 hosts of 10 path routes each (plus wildcard routes).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lb::config::model::{Action, HeaderEdits, PathMatch, Route};
use lb::route::{RequestView, RouteTable, parse_host_pattern};

fn route(name: String, host: Option<&str>, path: &str) -> Route {
    Route {
        name,
        hosts: host
            .map(|h| vec![parse_host_pattern(h).expect("a host pattern")])
            .unwrap_or_default(),
        path: Some(PathMatch::Prefix(path.to_string())),
        methods: Vec::new(),
        headers: Vec::new(),
        query: Vec::new(),
        action: Action::Proxy {
            pool: "app".to_string(),
            fanout: None,
            rewrite: None,
            server_timeout: None,
            max_body: None,
        },
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
    }
}

/// 1 000 hosts with 10 path routes each, then 10 routes for `*.wild.example.org`.
fn many() -> Vec<Route> {
    let mut routes = Vec::new();
    for h in 0..1000 {
        let host = format!("h{h:03}.example.com");
        for p in 0..10 {
            routes.push(route(format!("h{h}p{p}"), Some(&host), &format!("/p{p}")));
        }
    }
    for p in 0..10 {
        routes.push(route(
            format!("wild{p}"),
            Some("*.wild.example.org"),
            &format!("/p{p}"),
        ));
    }
    routes
}

/// What a browser sends besides Host, for routes that look at header fields.
const HEADERS: [(&str, &str); 4] = [
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    ("Accept", "text/html,application/xhtml+xml"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Cookie", "session=3f2a9c1e8b7d4a6f"),
];

fn routing(c: &mut Criterion) {
    let headers: Vec<httparse::Header> = HEADERS
        .iter()
        .map(|(name, value)| httparse::Header {
            name,
            value: value.as_bytes(),
        })
        .collect();
    let one = RouteTable::compile(&[route("all".into(), None, "/")], None).expect("valid");
    let many = RouteTable::compile(&many(), None).expect("valid");
    let cases: [(&str, &RouteTable, &str, &str, Option<&str>); 7] = [
        (
            "1 route",
            &one,
            "shop.example.com",
            "/p9/products/42?ref=home",
            Some("all"),
        ),
        (
            "1 route, target to normalize",
            &one,
            "shop.example.com",
            "/x/../p9/%7Ep?ref=home",
            Some("all"),
        ),
        (
            "10k routes, first host",
            &many,
            "h000.example.com",
            "/p9/products/42?ref=home",
            Some("h0p9"),
        ),
        (
            "10k routes, last host",
            &many,
            "H999.example.com:8080",
            "/p9/products/42?ref=home",
            Some("h999p9"),
        ),
        (
            "10k routes, wildcard",
            &many,
            "a.wild.example.org",
            "/p9/products/42?ref=home",
            Some("wild9"),
        ),
        (
            "10k routes, miss: unknown host",
            &many,
            "www.example.com",
            "/p9/products/42?ref=home",
            None,
        ),
        (
            "10k routes, miss: known host",
            &many,
            "h500.example.com",
            "/q/products/42?ref=home",
            None,
        ),
    ];
    let mut scratch = vec![0u8; 8 * 1024];
    let mut group = c.benchmark_group("route");
    for (name, table, host, target, want) in cases {
        let view = RequestView::new(
            "GET",
            host.as_bytes(),
            target.as_bytes(),
            &headers,
            &mut scratch,
        );
        let got = view
            .ok()
            .and_then(|v| table.find(&v).map(|h| h.route.name().to_string()));
        assert_eq!(got.as_deref(), want, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let view = RequestView::new(
                    "GET",
                    black_box(host.as_bytes()),
                    black_box(target.as_bytes()),
                    &headers,
                    &mut scratch,
                );
                black_box(view.ok().and_then(|v| table.find(&v).map(|hit| hit.index)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
