//! `lb check -c FILE`: the file read and checked without listening, as `nginx -t` and
//! `haproxy -c` do. Every problem at its line, exit 2 if any is an error; else one line
//! and the routing table.

use std::fmt::Write as _;

use super::diagnostic::Level;
use super::file;
use super::model::{Action, HostPattern, PathMatch, Protocol, Rewrite, Route, Site};

/// What `lb check` prints, on stdout and on stderr, and its exit status.
pub struct Report {
    pub out: String,
    pub err: String,
    pub status: u8,
}

/// `lb check -c FILE`.
pub fn check_file(path: &str) -> Report {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return Report {
                out: String::new(),
                err: format!("lb: cannot read {path}: {e}\n"),
                status: 2,
            };
        }
    };
    let checked = file::check(&text);
    let mut err = String::new();
    for d in &checked.problems {
        err.push_str(&d.render(path, &text));
    }
    let errors = checked.errors().count();
    let Some(site) = checked.site else {
        let warnings = checked.problems.len() - errors;
        let _ = writeln!(
            err,
            "{path}: {errors} error(s){}: not loaded",
            match warnings {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            }
        );
        return Report {
            out: String::new(),
            err,
            status: 2,
        };
    };
    let warned = checked.problems.iter().any(|d| d.level == Level::Warning);
    let mut out = format!("{path}: ok, {}", summary(&site));
    if warned {
        out.push_str(" (with warnings)");
    }
    out.push('\n');
    out.push_str(&routing_table(&site));
    Report {
        out,
        err,
        status: 0,
    }
}

/// `2 listeners, 3 pools with 9 backends, 12 routes`.
fn summary(site: &Site) -> String {
    let backends: usize = site.pools.iter().map(|p| p.backends.len()).sum();
    format!(
        "{} listener(s), {} pool(s) with {backends} backend(s), {} route(s)",
        site.listeners.len(),
        site.pools.len(),
        site.routes.len()
    )
}

/// Listeners, then routes in the order they are tried, one line each: what `lb check`
/// and the start-up log show.
pub fn routing_table(site: &Site) -> String {
    let mut out = String::new();
    for l in &site.listeners {
        let tls = if l.tls.is_empty() { "" } else { " TLS" };
        let what = match (l.protocol, &l.pool, &l.routes) {
            (Protocol::Tcp, Some(pool), _) => format!("TCP to pool {pool}"),
            (_, _, Some(routes)) => format!("HTTP, routes {}", routes.join(", ")),
            _ => "HTTP, every route".to_string(),
        };
        let _ = writeln!(out, "  listener {} {}{tls}: {what}", l.name, l.address);
    }
    for r in &site.routes {
        let _ = writeln!(
            out,
            "  route {}: {} -> {}",
            r.name,
            matcher(r),
            action(&r.action)
        );
    }
    out
}

/// What a route matches, as one phrase.
pub fn matcher(r: &Route) -> String {
    let mut parts = Vec::new();
    if !r.methods.is_empty() {
        parts.push(r.methods.join("|"));
    }
    if !r.hosts.is_empty() {
        let hosts: Vec<String> = r
            .hosts
            .iter()
            .map(|h| match h {
                HostPattern::Exact(n) => n.clone(),
                HostPattern::Suffix(s) => format!("*{s}"),
            })
            .collect();
        parts.push(format!("host {}", hosts.join("|")));
    }
    match &r.path {
        None => {}
        Some(PathMatch::Exact(p)) => parts.push(format!("path {p}")),
        Some(PathMatch::Prefix(p)) => parts.push(format!("path {p}/...")),
        Some(PathMatch::Regex(p)) => parts.push(format!("path ~ {p}")),
    }
    for h in &r.headers {
        parts.push(match &h.value {
            Some(v) => format!("header {}: {v}", h.name),
            None => format!("header {}", h.name),
        });
    }
    for q in &r.query {
        parts.push(match &q.value {
            Some(v) => format!("query {}={v}", q.name),
            None => format!("query {}", q.name),
        });
    }
    if parts.is_empty() {
        "any request".to_string()
    } else {
        parts.join(", ")
    }
}

/// What a route does, as one phrase.
pub fn action(a: &Action) -> String {
    match a {
        Action::Proxy {
            pool,
            fanout,
            rewrite,
            ..
        } => {
            let mut s = format!("pool {pool}");
            match fanout {
                Some(true) => s.push_str(", POST fans out"),
                Some(false) => s.push_str(", POST to one backend"),
                None => {}
            }
            match rewrite {
                Some(Rewrite::StripPrefix(p)) => {
                    let _ = write!(s, ", {p} stripped");
                }
                Some(Rewrite::ReplacePrefix { from, to }) => {
                    let _ = write!(s, ", {from} becomes {to}");
                }
                None => {}
            }
            s
        }
        Action::Redirect { to, status } => format!("redirect {status} to {to}"),
        Action::Respond { status, .. } => format!("answer {status}"),
    }
}
