//! Table-driven tests of the route table, one file per concern.

mod actions;
mod compile;
mod explain;
mod header_rules;
mod matching;
mod normalize;

use super::{RequestView, RouteTable};
use crate::config::model::{Action, FieldMatch, HeaderEdits, HostPattern, PathMatch, Route};

/// A route to pool `app` with no condition: tests set what they need.
fn route(name: &str) -> Route {
    Route {
        name: name.to_string(),
        hosts: Vec::new(),
        path: None,
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

fn hosts(written: &[&str]) -> Vec<HostPattern> {
    written
        .iter()
        .map(|h| super::parse_host_pattern(h).expect("a valid pattern"))
        .collect()
}

fn exact(p: &str) -> Option<PathMatch> {
    Some(PathMatch::Exact(p.to_string()))
}

fn prefix(p: &str) -> Option<PathMatch> {
    Some(PathMatch::Prefix(p.to_string()))
}

fn field(name: &str, value: Option<&str>) -> FieldMatch {
    FieldMatch {
        name: name.to_string(),
        value: value.map(str::to_string),
    }
}

fn table(routes: &[Route]) -> RouteTable {
    match RouteTable::compile(routes, None) {
        Ok(t) => t,
        Err(problems) => panic!("{problems:?}"),
    }
}

/// A request, as far as routing cares.
struct Req<'a> {
    method: &'a str,
    host: &'a str,
    target: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

fn get<'a>(host: &'a str, target: &'a str) -> Req<'a> {
    Req {
        method: "GET",
        host,
        target,
        headers: &[],
    }
}

impl Req<'_> {
    /// Runs `f` on the request's view (panics if the target is refused).
    fn with<T>(&self, f: impl FnOnce(&RequestView) -> T) -> T {
        let headers: Vec<httparse::Header> = self
            .headers
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        let mut scratch = [0; 1024];
        let view = RequestView::new(
            self.method,
            self.host.as_bytes(),
            self.target.as_bytes(),
            &headers,
            &mut scratch,
        )
        .expect("a target lb routes");
        f(&view)
    }

    /// The name of the route the request goes by.
    fn routed_by(&self, table: &RouteTable) -> Option<String> {
        self.with(|v| table.find(v).map(|hit| hit.route.name().to_string()))
    }
}
