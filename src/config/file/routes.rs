//! `[[routes]]`: what a request must look like (host, path, methods, header fields, query
//! parameters) and the one thing done with it (a pool, a redirect or an answer of lb's
//! own), with header rules beside it. Only the shape is checked here; what a value means
//! (a regex, a header name) is checked where the route table is compiled.

use std::ops::Range;

use super::doc::{Doc, Table, kind, list};
use crate::config::flags::as_duration;
use crate::config::model::{
    Action, FieldMatch, HeaderEdits, HostPattern, KeyPath, PathMatch, Rewrite, Route,
};

type Value<'i> = toml::Spanned<toml::de::DeValue<'i>>;

pub(super) const ROUTE: &[&str] = &[
    "name",
    "host",
    "path",
    "path_prefix",
    "path_regex",
    "methods",
    "header",
    "query",
    "pool",
    "fanout",
    "rewrite",
    "timeout",
    "max_body",
    "redirect",
    "respond",
    "headers",
];

/// Keys that only mean something with `pool`.
/// A fixed answer goes out of one 32 KiB buffer with its head.
const MAX_RESPOND_BODY: usize = 16 * 1024;

const PROXY_ONLY: &[&str] = &["fanout", "rewrite", "timeout", "max_body"];
const ACTIONS: &[&str] = &["pool", "redirect", "respond"];
const PATHS: &[&str] = &["path", "path_prefix", "path_regex"];

pub fn read(doc: &mut Doc, value: &Value) -> Vec<Route> {
    let path = KeyPath("routes".into());
    let mut routes = Vec::new();
    for (i, item) in doc.array(value, &path).into_iter().enumerate() {
        let Some(t) = doc.table(item, path.index(i), "a route", ROUTE) else {
            doc.dropped = true;
            continue;
        };
        match read_route(doc, &t, i) {
            Some(r) => routes.push(r),
            None => doc.dropped = true,
        }
    }
    routes
}

fn read_route(doc: &mut Doc, t: &Table, i: usize) -> Option<Route> {
    let name = doc
        .string(t, "name")
        .unwrap_or_else(|| format!("#{}", i + 1));
    let hosts = doc
        .strings(t, "host")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(h, span)| host_pattern(doc, &h, span))
        .collect();
    let given_paths: Vec<&str> = PATHS.iter().copied().filter(|k| t.has(k)).collect();
    if given_paths.len() > 1 {
        let span = doc.key_span(t, given_paths[1]);
        doc.error(
            span,
            format!(
                "a route matches one path: {} given",
                list(&given_paths, "and")
            ),
        );
    }
    let path = match given_paths.first().copied() {
        Some("path") => doc.string(t, "path").map(PathMatch::Exact),
        Some("path_prefix") => doc.string(t, "path_prefix").map(PathMatch::Prefix),
        Some(_) => doc.string(t, "path_regex").map(PathMatch::Regex),
        None => None,
    };
    let methods = doc
        .strings(t, "methods")
        .unwrap_or_default()
        .into_iter()
        .map(|(m, _)| m.to_ascii_uppercase())
        .collect();
    let headers = fields(doc, t, "header");
    let query = fields(doc, t, "query");
    let action = read_action(doc, t)?;
    let (request_headers, response_headers) = read_header_rules(doc, t);
    Some(Route {
        name,
        hosts,
        path,
        methods,
        headers,
        query,
        action,
        request_headers,
        response_headers,
    })
}

/// `example.com`, `*.example.com`, with any port dropped, in lower case.
fn host_pattern(doc: &mut Doc, written: &str, span: Range<usize>) -> Option<HostPattern> {
    let lower = written.trim().to_ascii_lowercase();
    let host = match lower.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => lower.as_str(),
    };
    let (suffix, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    if !valid {
        doc.error(
            span,
            format!("'{written}' is not a host name (example.com, or *.example.com for any name under it)"),
        );
        return None;
    }
    Some(if suffix {
        HostPattern::Suffix(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_string())
    })
}

/// `header = { "X-Canary" = "1", "Authorization" = true }`: a value to equal, or true for
/// present whatever its value.
fn fields(doc: &mut Doc, t: &Table, key: &str) -> Vec<FieldMatch> {
    let Some(v) = doc.get(t, key) else {
        return Vec::new();
    };
    let toml::de::DeValue::Table(table) = v.get_ref() else {
        doc.error(
            v.span(),
            format!(
                "`{key}` must be a table of names to a value or true, not {}",
                kind(v.get_ref())
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (name, value) in entries {
        doc.note(&t.path.key(key).key(name.get_ref()), value.span());
        let value = match value.get_ref() {
            toml::de::DeValue::String(s) => Some(s.to_string()),
            toml::de::DeValue::Boolean(true) => None,
            other => {
                doc.error(
                    value.span(),
                    format!(
                        "`{key}.{}` must be a string to equal, or true for present, not {}",
                        name.get_ref(),
                        kind(other)
                    ),
                );
                continue;
            }
        };
        out.push(FieldMatch {
            name: name.get_ref().to_string(),
            value,
        });
    }
    out
}

fn read_action(doc: &mut Doc, t: &Table) -> Option<Action> {
    let given: Vec<&str> = ACTIONS.iter().copied().filter(|k| t.has(k)).collect();
    match given.as_slice() {
        [] => {
            doc.error(
                t.span.clone(),
                "a route needs one action: `pool`, `redirect` or `respond`",
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            let span = doc.key_span(t, second);
            doc.error(
                span,
                format!("a route has one action: {} given", list(&given, "and")),
            );
            return None;
        }
    }
    if given[0] != "pool" {
        for k in PROXY_ONLY.iter().filter(|k| t.has(k)) {
            let span = doc.key_span(t, k);
            doc.error(
                span,
                format!("`{k}` applies to a route with `pool`, not `{}`", given[0]),
            );
        }
    }
    match given[0] {
        "pool" => Some(Action::Proxy {
            pool: doc.string(t, "pool")?,
            fanout: doc.boolean(t, "fanout"),
            rewrite: read_rewrite(doc, t),
            server_timeout: doc.number(t, "timeout", "server-timeout").map(as_duration),
            max_body: doc.number(t, "max_body", "max-body"),
        }),
        "redirect" => {
            let v = doc.get(t, "redirect")?;
            let r = doc.table(v, t.path.key("redirect"), "`redirect`", &["to", "status"])?;
            let to = doc.string(&r, "to");
            if to.is_none() && !r.has("to") {
                doc.error(
                    r.span.clone(),
                    "`redirect` needs `to`, e.g. \"https://{host}{path}\"",
                );
            }
            let status = status(doc, &r).unwrap_or(308);
            Some(Action::Redirect { to: to?, status })
        }
        _ => {
            let v = doc.get(t, "respond")?;
            let keys = &["status", "body", "content_type"];
            let r = doc.table(v, t.path.key("respond"), "`respond`", keys)?;
            let body = doc.string(&r, "body").unwrap_or_default();
            if body.len() > MAX_RESPOND_BODY {
                let span = doc.get(&r, "body").map_or(r.span.clone(), |v| v.span());
                doc.error(
                    span,
                    format!(
                        "a `respond` body is at most {} KiB ({} bytes here): lb answers it \
                         from one buffer; serve larger pages from a pool",
                        MAX_RESPOND_BODY / 1024,
                        body.len()
                    ),
                );
            }
            Some(Action::Respond {
                status: status(doc, &r).unwrap_or(200),
                body,
                content_type: doc
                    .string(&r, "content_type")
                    .unwrap_or_else(|| "text/plain; charset=utf-8".to_string()),
            })
        }
    }
}

fn status(doc: &mut Doc, t: &Table) -> Option<u16> {
    let v = doc.get(t, "status")?;
    let n = match v.get_ref() {
        toml::de::DeValue::Integer(n) => n.as_str().parse::<u16>().ok(),
        _ => None,
    };
    if n.is_none() {
        doc.error(
            v.span(),
            "`status` must be an HTTP status code, such as 308",
        );
    }
    n
}

/// `rewrite = { strip_prefix = "/home" }` or `{ replace_prefix = "/v1", with = "/api/v1" }`.
fn read_rewrite(doc: &mut Doc, t: &Table) -> Option<Rewrite> {
    let v = doc.get(t, "rewrite")?;
    let keys = &["strip_prefix", "replace_prefix", "with"];
    let r = doc.table(v, t.path.key("rewrite"), "`rewrite`", keys)?;
    match (
        r.has("strip_prefix"),
        r.has("replace_prefix"),
        r.has("with"),
    ) {
        (true, false, false) => doc.string(&r, "strip_prefix").map(Rewrite::StripPrefix),
        (false, true, true) => Some(Rewrite::ReplacePrefix {
            from: doc.string(&r, "replace_prefix")?,
            to: doc.string(&r, "with")?,
        }),
        _ => {
            doc.error(
                r.span.clone(),
                "`rewrite` takes `strip_prefix = \"/a\"`, or `replace_prefix = \"/a\"` with `with = \"/b\"`",
            );
            None
        }
    }
}

/// `headers = { request = { set = {..}, add = {..}, remove = [..] }, response = {..} }`.
fn read_header_rules(doc: &mut Doc, t: &Table) -> (HeaderEdits, HeaderEdits) {
    let Some(v) = doc.get(t, "headers") else {
        return Default::default();
    };
    let Some(h) = doc.table(
        v,
        t.path.key("headers"),
        "`headers`",
        &["request", "response"],
    ) else {
        return Default::default();
    };
    let mut side = |name: &str| {
        let Some(v) = doc.get(&h, name) else {
            return HeaderEdits::default();
        };
        let what = format!("`headers.{name}`");
        let Some(s) = doc.table(v, h.path.key(name), &what, &["set", "add", "remove"]) else {
            return HeaderEdits::default();
        };
        HeaderEdits {
            set: pairs(doc, &s, "set"),
            add: pairs(doc, &s, "add"),
            remove: doc
                .strings(&s, "remove")
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
        }
    };
    (side("request"), side("response"))
}

/// A table of field names to string values, in file order.
fn pairs(doc: &mut Doc, t: &Table, key: &str) -> Vec<(String, String)> {
    let Some(v) = doc.get(t, key) else {
        return Vec::new();
    };
    let toml::de::DeValue::Table(table) = v.get_ref() else {
        doc.error(
            v.span(),
            format!("`{key}` must be a table of field names to values"),
        );
        return Vec::new();
    };
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut out = Vec::new();
    for (i, (name, value)) in entries.into_iter().enumerate() {
        doc.note(
            &t.path.key(key).index(i),
            name.span().start..value.span().end,
        );
        match value.get_ref() {
            toml::de::DeValue::String(s) => out.push((name.get_ref().to_string(), s.to_string())),
            other => doc.error(
                value.span(),
                format!(
                    "`{key}.{}` must be a string, not {}",
                    name.get_ref(),
                    kind(other)
                ),
            ),
        }
    }
    out
}
