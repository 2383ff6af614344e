//! `lb check --explain`: for each route in order, why it did not take the request, then the
//! one that did and what it does. The verdicts come from the same code as `find`: the host
//! index says which routes a host can see and `Conditions::check` which condition failed;
//! this module only puts them into words, using the routes as they were written.

use super::action::Action;
use super::host::{HostBuf, display, host_key};
use super::matcher::Miss;
use super::view::RequestView;
use super::{CompiledRoute, RouteTable};
use crate::config::model::{FieldMatch, HeaderEdits, PathMatch, Route};

impl RouteTable {
    /// One line per route up to the first that matches, then the match and its action,
    /// or that none matched. `routes` are the ones the table was compiled from.
    pub fn explain(&self, routes: &[Route], req: &RequestView) -> Vec<String> {
        let mut lines = Vec::new();
        if req.sent_target() != req.target() {
            lines.push(format!(
                "target {} is routed as {}",
                text(req.sent_target()),
                text(req.target())
            ));
        }
        let mut buf: HostBuf = [0; _];
        let host = host_key(req.host(), &mut buf);
        let mut candidates = self.index.candidates(host).peekable();
        for (i, (route, written)) in self.routes.iter().zip(routes).enumerate() {
            let label = label(i, route);
            if !route.applied {
                lines.push(format!("{label}: not applied by this listener"));
                continue;
            }
            if candidates.next_if_eq(&i).is_none() {
                lines.push(format!("{label}: {}", host_miss(host, written)));
                continue;
            }
            match route.conditions.check(req) {
                Ok(()) => {
                    lines.push(format!(
                        "{label}: matches -> {}",
                        action(route, written, req)
                    ));
                    return lines;
                }
                Err(miss) => lines.push(format!("{label}: {}", miss_text(miss, written, req))),
            }
        }
        lines.push("no route matches: lb answers 404".to_string());
        lines
    }
}

/// `#2 login`, or `#2` for a route without a name of its own.
fn label(i: usize, route: &CompiledRoute) -> String {
    let n = format!("#{}", i + 1);
    if *route.name == n {
        n
    } else {
        format!("{n} {}", route.name)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn host_miss(host: Option<&[u8]>, written: &Route) -> String {
    let names: Vec<String> = written.hosts.iter().map(display).collect();
    let wanted = match names.as_slice() {
        [one] => one.clone(),
        _ => format!("one of {}", names.join(", ")),
    };
    match host {
        Some(h) => format!("host {} is not {wanted}", text(h)),
        None => format!("the request has no host, and this route wants {wanted}"),
    }
}

fn miss_text(miss: Miss, written: &Route, req: &RequestView) -> String {
    let path = text(req.path());
    match miss {
        Miss::Path => match &written.path {
            Some(PathMatch::Exact(p)) => format!("path {path} is not {p}"),
            Some(PathMatch::Prefix(p)) => format!("path {path} is not under {p}"),
            Some(PathMatch::Regex(r)) => format!("path {path} does not match {r}"),
            None => format!("path {path} is refused"),
        },
        Miss::Method => match written.methods.as_slice() {
            [one] => format!("method {} is not {one}", req.method()),
            all => format!("method {} is not one of {}", req.method(), all.join(", ")),
        },
        Miss::Header(k) => match written.headers.get(k) {
            Some(FieldMatch { name, value: None }) => format!("no header field {name}"),
            Some(FieldMatch {
                name,
                value: Some(v),
            }) => format!("no header field {name} with value {v:?}"),
            None => "a header field is missing".to_string(),
        },
        Miss::Query(k) => match written.query.get(k) {
            Some(FieldMatch { name, value: None }) => format!("no query parameter {name}"),
            Some(FieldMatch {
                name,
                value: Some(v),
            }) => format!("no query parameter {name}={v}"),
            None => "a query parameter is missing".to_string(),
        },
    }
}

fn action(route: &CompiledRoute, written: &Route, req: &RequestView) -> String {
    let mut out = match &route.action {
        Action::Proxy(p) => {
            let mut s = format!("pool {}", p.pool);
            if p.fans_out(req.method()) {
                s.push_str(", fanned out");
            }
            if let Some(rewrite) = &p.rewrite {
                let mut target = Vec::new();
                // A Vec has room for anything.
                let _ = rewrite.write(req, &mut target);
                s.push_str(&format!(", path rewritten to {}", text(&target)));
            }
            s
        }
        Action::Redirect(r) => {
            let mut location = Vec::new();
            let _ = r.write_location(req, &mut location);
            format!("redirect {} to {}", r.status(), text(&location))
        }
        Action::Respond(r) => {
            let mut s = format!("respond {} ({} bytes", r.status(), r.body().len());
            if !r.content_type().is_empty() {
                s.push_str(&format!(" of {}", r.content_type()));
            }
            s.push(')');
            s
        }
    };
    for (side, edits) in [
        ("request", &written.request_headers),
        ("response", &written.response_headers),
    ] {
        if let Some(list) = edit_list(edits) {
            out.push_str(&format!("; {side} headers: {list}"));
        }
    }
    out
}

fn edit_list(edits: &HeaderEdits) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(edits.remove.iter().map(|n| format!("remove {n}")));
    parts.extend(edits.set.iter().map(|(n, _)| format!("set {n}")));
    parts.extend(edits.add.iter().map(|(n, _)| format!("add {n}")));
    (!parts.is_empty()).then(|| parts.join(", "))
}
