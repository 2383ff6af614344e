//! The route table: the site's routes compiled into a value that answers, for a request,
//! which route applies (the first that matches, in file order) and what it does. Built
//! once per listener at start and at each reload, swapped between requests, read without
//! allocating. It knows nothing of sockets; `explain` runs the same matcher to say why.
//!
//! - `view`, `normalize`: the request as routes see it, its target normalized.
//! - `host`, `index`: host patterns, and which routes each host can see.
//! - `matcher`: a route's other conditions (path, methods, header fields, query).
//! - `compile`: the model's routes checked and compiled, with every problem found.
//! - `action`, `redirect`, `edits`: what a route does, and its header rules.
//! - `explain`: why each route before the match did not match.
//!
//! The rules, as operators read them, are in docs/routing.md.

mod action;
mod compile;
mod edits;
mod explain;
mod host;
mod index;
mod matcher;
mod normalize;
mod redirect;
mod sink;
mod view;

pub use action::{Action, Proxy, Respond, Rewrite, reason};
pub use edits::Edits;
pub use host::parse_host_pattern;
pub use matcher::Miss;
pub use normalize::{BadTarget, Normalized, normalize};
pub use redirect::Redirect;
pub use sink::{Full, Sink};
pub use view::RequestView;

use crate::config::model::Problem;
use host::{HostBuf, host_key};
use index::HostIndex;
use matcher::Conditions;

/// The routes one listener applies, compiled.
pub struct RouteTable {
    /// Every route of the site, in file order: indices are the site's.
    routes: Box<[CompiledRoute]>,
    index: HostIndex,
    warnings: Vec<Problem>,
    /// An applied route tests the path or rewrites it: targets are then normalized
    /// before they are routed and forwarded.
    paths: bool,
}

pub struct CompiledRoute {
    name: Box<str>,
    /// Listed by the listener (all are when it lists none).
    applied: bool,
    conditions: Conditions,
    action: Action,
    request_headers: Edits,
    response_headers: Edits,
}

impl CompiledRoute {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn action(&self) -> &Action {
        &self.action
    }

    pub fn request_headers(&self) -> &Edits {
        &self.request_headers
    }

    pub fn response_headers(&self) -> &Edits {
        &self.response_headers
    }
}

/// The route a request goes by.
#[derive(Clone, Copy)]
pub struct Hit<'t> {
    /// Its place in the site's list of routes, from 0.
    pub index: usize,
    pub route: &'t CompiledRoute,
}

impl RouteTable {
    /// One route that sends everything to `pool`: what the flags mean, and a table for
    /// tests and benchmarks of the request path.
    pub fn everything_to(pool: &str) -> RouteTable {
        let route = crate::config::model::Route {
            name: pool.to_string(),
            hosts: Vec::new(),
            path: None,
            methods: Vec::new(),
            headers: Vec::new(),
            query: Vec::new(),
            action: crate::config::model::Action::Proxy {
                pool: pool.to_string(),
                fanout: None,
                rewrite: None,
                server_timeout: None,
                max_body: None,
            },
            request_headers: Default::default(),
            response_headers: Default::default(),
        };
        match RouteTable::compile(&[route], None) {
            Ok(table) => table,
            Err(_) => unreachable!("a route without conditions always compiles"),
        }
    }

    /// The first route in file order that matches `req`, if any (then lb answers 404).
    pub fn find(&self, req: &RequestView) -> Option<Hit<'_>> {
        let mut buf: HostBuf = [0; _];
        let host = host_key(req.host(), &mut buf);
        self.index.candidates(host).find_map(|index| {
            let route = self.routes.get(index)?;
            route.conditions.check(req).ok()?;
            Some(Hit { index, route })
        })
    }

    /// Route `index` (its place in the site's list).
    pub fn route(&self, index: usize) -> Option<&CompiledRoute> {
        self.routes.get(index)
    }

    /// Whether any route this listener applies looks at the path: only then must a
    /// request's target be normalized, so that what is routed is what is forwarded.
    pub fn looks_at_paths(&self) -> bool {
        self.paths
    }

    /// Routes that can never match, and the like: the table works, but the file is
    /// probably not what its author meant.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests;
