//! `lb check -c FILE`: the file read and checked without listening, as `nginx -t` and
//! `haproxy -c` do. Every problem at its line, exit 2 if any is an error; else one line
//! and the routing table.

use std::fmt::Write as _;

use super::diagnostic::Level;
use super::file;
use super::model::{Action, HostPattern, Listed, PathMatch, Protocol, Rewrite, Route, Site};
use crate::route::{RequestView, RouteTable};
use crate::tls::{ListenerTls, TlsContexts, TlsSettings};

/// What `lb check` prints, on stdout and on stderr, and its exit status.
pub struct Report {
    pub out: String,
    pub err: String,
    pub status: u8,
}

/// `lb check -c FILE [--explain 'METHOD URL']`.
pub fn check_file(path: &str, explain: Option<&str>) -> Report {
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
    let checked = file::check_file(path, &text);
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
    // What lb would load at start beside the file: certificates and keys, as nginx -t does.
    if let Err(e) = TlsContexts::load(&tls_settings(&site)) {
        let _ = writeln!(err, "{path}: {e}");
        return Report {
            out: String::new(),
            err,
            status: 2,
        };
    }
    let warned = checked.problems.iter().any(|d| d.level == Level::Warning);
    let mut out = format!("{path}: ok, {}", summary(&site, &checked.listed));
    if warned {
        out.push_str(" (with warnings)");
    }
    out.push('\n');
    out.push_str(&routing_table(&site));
    let status = match explain.map(|request| explain_request(&site, request)) {
        Some(Ok(lines)) => {
            out.push_str(&lines);
            0
        }
        Some(Err(e)) => {
            let _ = writeln!(err, "lb: --explain: {e}");
            2
        }
        None => 0,
    };
    Report { out, err, status }
}

/// Which route `request` (`METHOD URL`) takes on the listener it would come to: a TLS one
/// for `https://`, a plain one for `http://`, the first HTTP one for a bare path.
fn explain_request(site: &Site, request: &str) -> Result<String, String> {
    let (method, url) = request
        .trim()
        .split_once(' ')
        .ok_or("write the request as 'METHOD URL', e.g. 'GET https://example.com/x'")?;
    let (tls, rest) = match url.trim().split_once("://") {
        Some(("https", rest)) => (Some(true), rest),
        Some(("http", rest)) => (Some(false), rest),
        Some((scheme, _)) => return Err(format!("{scheme}:// is not http:// or https://")),
        None => (None, url.trim()),
    };
    let (host, target) = match rest.find('/') {
        Some(0) => ("", rest),
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let listener = site
        .listeners
        .iter()
        .filter(|l| l.protocol == Protocol::Http)
        .find(|l| tls.is_none_or(|tls| tls != l.tls.is_empty()))
        .ok_or(match tls {
            Some(true) => "no HTTP listener has TLS: an https:// request comes to none",
            Some(false) => "every HTTP listener has TLS: an http:// request comes to none",
            None => "no listener takes HTTP requests",
        })?;
    let table = RouteTable::compile(&site.routes, listener.routes.as_deref())
        .map_err(|_| "the routes do not compile".to_string())?;
    let mut scratch = vec![0; target.len()];
    let method = method.to_ascii_uppercase();
    let view = RequestView::new(
        &method,
        host.as_bytes(),
        target.as_bytes(),
        &[],
        &mut scratch,
    )
    .map_err(|e| format!("{}: {}", e.status(), e.reason()))?;
    let mut out = format!("{request} on listener {}:\n", listener.name);
    for line in table.explain(&site.routes, &view) {
        let _ = writeln!(out, "  {line}");
    }
    Ok(out)
}

/// What TLS `site` needs: each listener's certificates, and roots for `https://` backends.
pub fn tls_settings(site: &Site) -> TlsSettings<'_> {
    TlsSettings {
        pairs: site
            .listeners
            .iter()
            .map(|l| ListenerTls {
                certs: l.tls.clone(),
                http: l.protocol == Protocol::Http,
            })
            .collect(),
        https_backends: site
            .pools
            .iter()
            .flat_map(|p| &p.backends)
            .any(|b| b.label.starts_with("https://")),
        backend_ca: site.process.backend_ca.as_deref(),
        http: site.listeners.iter().any(|l| l.protocol == Protocol::Http),
    }
}

/// `2 listeners, 3 pools with 9 backends, 12 routes`: the backends of the pools' lists
/// and of their backends files, as read to check them.
fn summary(site: &Site, listed: &Listed) -> String {
    let backends: usize = site
        .pools
        .iter()
        .map(|p| p.backends.len() + listed.get(&p.name).map_or(0, Vec::len))
        .sum();
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
    for line in route_lines(site) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// Each route in the order they are tried: "route NAME: MATCHES -> DOES".
pub fn route_lines(site: &Site) -> Vec<String> {
    site.routes
        .iter()
        .map(|r| format!("route {}: {} -> {}", r.name, matcher(r), action(&r.action)))
        .collect()
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
        Some(PathMatch::Prefix(p)) if p.ends_with('/') => parts.push(format!("path {p}...")),
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
