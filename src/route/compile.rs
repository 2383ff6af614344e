//! The model's routes checked and compiled into a `RouteTable`. Every problem is reported,
//! each at the key that holds the offending value, so that `lb check` can show them all
//! at once; a table is built only from routes with none.

use std::collections::HashMap;

use regex::bytes::RegexBuilder;

use super::action::{Action, Proxy, Respond, Rewrite};
use super::edits::{Edits, check_edits, field_value_problem, is_token};
use super::host::{canonical, display};
use super::index::HostIndex;
use super::matcher::{Conditions, FieldTest, PathTest};
use super::normalize::normalize;
use super::redirect::{Redirect, STATUSES};
use super::{CompiledRoute, RouteTable};
use crate::config::diagnostic::Level;
use crate::config::model::{
    self, FieldMatch, HeaderEdits, HostPattern, KeyPath, PathMatch, Problem, Route,
};

/// Collects problems at key paths under one route.
struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, at: KeyPath, message: impl Into<String>) {
        self.list.push(Problem {
            level: Level::Error,
            at,
            message: message.into(),
        });
    }
}

impl RouteTable {
    /// Compiles `routes` for a listener that applies the ones named in `only` (`None`:
    /// all). Every route is checked, applied or not. A name in `only` that no route has
    /// is a problem at `only[N]`, which the caller places under its listener.
    pub fn compile(routes: &[Route], only: Option<&[String]>) -> Result<RouteTable, Vec<Problem>> {
        let mut problems = Problems { list: Vec::new() };
        let root = KeyPath("routes".to_string());
        if u32::try_from(routes.len()).is_err() {
            problems.add(root.clone(), "too many routes");
            return Err(problems.list);
        }
        let applied = applied(routes, only, &mut problems);
        let mut compiled = Vec::with_capacity(routes.len());
        let mut hosts = Vec::with_capacity(routes.len());
        let mut names = HashMap::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            let at = root.index(i);
            if let Some(&first) = names.get(route.name.as_str()) {
                problems.add(
                    at.key("name"),
                    format!(
                        "route name {:?} is already the name of routes[{first}]",
                        route.name
                    ),
                );
            }
            names.entry(route.name.as_str()).or_insert(i);
            let route_hosts = compile_hosts(&route.hosts, &at, &mut problems);
            if let Some(c) = compile_route(route, applied[i], &at, &mut problems) {
                compiled.push(c);
            }
            hosts.push(route_hosts);
        }
        if !problems.list.is_empty() {
            return Err(problems.list);
        }
        let index = HostIndex::build(
            hosts
                .iter()
                .enumerate()
                .filter(|&(i, _)| applied[i])
                .map(|(i, h)| (i as u32, &h[..])),
        );
        let warnings = shadowed(routes, &compiled, &hosts);
        let paths = compiled.iter().any(|c| {
            c.applied
                && (!matches!(c.conditions.path, PathTest::Any)
                    || matches!(&c.action, Action::Proxy(p) if p.rewrite.is_some()))
        });
        Ok(RouteTable {
            routes: compiled.into(),
            index,
            warnings,
            paths,
        })
    }
}

fn applied(routes: &[Route], only: Option<&[String]>, problems: &mut Problems) -> Vec<bool> {
    let Some(only) = only else {
        return vec![true; routes.len()];
    };
    let mut applied = vec![false; routes.len()];
    for (k, name) in only.iter().enumerate() {
        match routes.iter().position(|r| r.name == *name) {
            Some(i) => applied[i] = true,
            None => problems.add(
                KeyPath("only".to_string()).index(k),
                format!("no route is named {name:?}"),
            ),
        }
    }
    applied
}

fn compile_hosts(hosts: &[HostPattern], at: &KeyPath, problems: &mut Problems) -> Vec<HostPattern> {
    let mut out = Vec::with_capacity(hosts.len());
    for (k, host) in hosts.iter().enumerate() {
        match canonical(host) {
            Ok(h) => out.push(h),
            Err(message) => problems.add(at.key("host").index(k), message),
        }
    }
    out
}

fn compile_route(
    route: &Route,
    applied: bool,
    at: &KeyPath,
    problems: &mut Problems,
) -> Option<CompiledRoute> {
    let path = compile_path(route.path.as_ref(), at, problems);
    for (k, m) in route.methods.iter().enumerate() {
        if !is_token(m) {
            problems.add(
                at.key("methods").index(k),
                format!("{m:?} is not a method name"),
            );
        }
    }
    let headers = compile_fields(&route.headers, &at.key("header"), problems, true);
    let query = compile_fields(&route.query, &at.key("query"), problems, false);
    let action = compile_action(&route.action, at, problems);
    let request_headers = compile_edits(
        &route.request_headers,
        &at.key("headers").key("request"),
        problems,
    );
    let response_headers = compile_edits(
        &route.response_headers,
        &at.key("headers").key("response"),
        problems,
    );
    Some(CompiledRoute {
        name: route.name.as_str().into(),
        applied,
        conditions: Conditions {
            path: path?,
            methods: route.methods.iter().map(|m| m.as_str().into()).collect(),
            headers,
            query,
        },
        action: action?,
        request_headers,
        response_headers,
    })
}

fn compile_path(
    path: Option<&PathMatch>,
    at: &KeyPath,
    problems: &mut Problems,
) -> Option<PathTest> {
    match path {
        None => Some(PathTest::Any),
        Some(PathMatch::Exact(p)) => {
            let p = checked_path(p, &at.key("path"), problems)?;
            Some(PathTest::Exact(p.into_bytes().into()))
        }
        Some(PathMatch::Prefix(p)) => {
            let p = checked_path(p, &at.key("path_prefix"), problems)?;
            Some(PathTest::Prefix(p.into_bytes().into()))
        }
        Some(PathMatch::Regex(r)) => match compile_regex(r) {
            Ok(regex) => Some(PathTest::Regex(regex)),
            Err(message) => {
                problems.add(at.key("path_regex"), message);
                None
            }
        },
    }
}

/// A path as requests are matched: normalized the same way (`/a/%7Eb` is `/a/~b`).
fn checked_path(p: &str, at: &KeyPath, problems: &mut Problems) -> Option<String> {
    let message = if !p.starts_with('/') {
        format!("path {p:?} does not start with '/'")
    } else if p.contains('?') {
        format!("path {p:?} holds a query: match query parameters with `query`")
    } else if let Some(c) = p.chars().find(|c| !c.is_ascii_graphic()) {
        format!("path {p:?} holds {c:?}, which no request path can: percent-encode it")
    } else {
        let mut scratch = vec![0; p.len()];
        match normalize(p.as_bytes(), &mut scratch) {
            Ok(n) => return Some(String::from_utf8_lossy(n.target).into_owned()),
            Err(e) => format!("path {p:?}: {}", e.reason()),
        }
    };
    problems.add(at.clone(), message);
    None
}

/// Anchored at both ends. The pattern is first compiled alone, so that one that is not
/// a whole expression (`a)|(b`) cannot escape the anchors, and so the reason given is
/// about what the operator wrote.
fn compile_regex(r: &str) -> Result<regex::bytes::Regex, String> {
    let one_line = |e: regex::Error| {
        let text = e.to_string();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(&text)
            .to_string();
        format!("path_regex {r:?} is not a valid regular expression: {line}")
    };
    RegexBuilder::new(r).build().map_err(one_line)?;
    RegexBuilder::new(&format!("^(?:{r})$"))
        .build()
        .map_err(one_line)
}

fn compile_fields(
    fields: &[FieldMatch],
    at: &KeyPath,
    problems: &mut Problems,
    header: bool,
) -> Box<[FieldTest]> {
    let mut tests = Vec::with_capacity(fields.len());
    for (k, f) in fields.iter().enumerate() {
        let at = at.index(k);
        if header && !is_token(&f.name) {
            problems.add(at, format!("{:?} is not a header field name", f.name));
            continue;
        }
        if !header && f.name.is_empty() {
            problems.add(at, "a query parameter needs a name");
            continue;
        }
        if header && let Some(p) = f.value.as_deref().and_then(field_value_problem) {
            problems.add(at, format!("{}: {p}", f.name));
            continue;
        }
        tests.push(FieldTest {
            name: f.name.as_str().into(),
            value: f.value.as_ref().map(|v| v.as_bytes().into()),
        });
    }
    tests.into()
}

fn compile_action(action: &model::Action, at: &KeyPath, problems: &mut Problems) -> Option<Action> {
    match action {
        model::Action::Proxy {
            pool,
            fanout,
            rewrite,
            server_timeout,
            max_body,
        } => {
            let rewrite = match rewrite {
                None => None,
                Some(r) => Some(compile_rewrite(r, &at.key("rewrite"), problems)?),
            };
            Some(Action::Proxy(Proxy {
                pool: pool.as_str().into(),
                fanout: *fanout,
                rewrite,
                server_timeout: *server_timeout,
                max_body: *max_body,
            }))
        }
        model::Action::Redirect { to, status } => {
            let at = at.key("redirect");
            if !STATUSES.contains(status) {
                problems.add(
                    at.key("status"),
                    format!("redirect status {status} is not one of 301, 302, 303, 307, 308"),
                );
            }
            match Redirect::parse(to, *status) {
                Ok(r) => STATUSES.contains(status).then_some(Action::Redirect(r)),
                Err(messages) => {
                    for m in messages {
                        problems.add(at.key("to"), m);
                    }
                    None
                }
            }
        }
        model::Action::Respond {
            status,
            body,
            content_type,
        } => {
            let at = at.key("respond");
            let before = problems.list.len();
            if !(200..=599).contains(status) {
                problems.add(
                    at.key("status"),
                    format!("respond status {status} is not between 200 and 599"),
                );
            } else if matches!(status, 204 | 304) && !body.is_empty() {
                problems.add(at.key("body"), format!("a {status} answer has no body"));
            }
            if let Some(p) = field_value_problem(content_type) {
                problems.add(at.key("content_type"), format!("content_type: {p}"));
            }
            (problems.list.len() == before)
                .then(|| Action::Respond(Respond::new(*status, body, content_type)))
        }
    }
}

fn compile_rewrite(
    rewrite: &model::Rewrite,
    at: &KeyPath,
    problems: &mut Problems,
) -> Option<Rewrite> {
    let (from, to) = match rewrite {
        model::Rewrite::StripPrefix(p) => (
            checked_path(p, &at.key("strip_prefix"), problems),
            Some("/".to_string()),
        ),
        model::Rewrite::ReplacePrefix { from, to } => (
            checked_path(from, &at.key("from"), problems),
            checked_path(to, &at.key("to"), problems),
        ),
    };
    Some(Rewrite::new(&from?, &to?))
}

fn compile_edits(edits: &HeaderEdits, at: &KeyPath, problems: &mut Problems) -> Edits {
    let found = check_edits(edits);
    if found.is_empty() {
        return Edits::new(edits);
    }
    for (key, index, message) in found {
        let at = at.key(key);
        problems.add(index.map_or_else(|| at.clone(), |i| at.index(i)), message);
    }
    Edits::default()
}

/// A route that an earlier one always takes first: the earlier one has no condition but
/// its hosts, and those cover every host of the later one.
fn shadowed(
    routes: &[Route],
    compiled: &[CompiledRoute],
    hosts: &[Vec<HostPattern>],
) -> Vec<Problem> {
    let catch_alls: Vec<usize> = (0..compiled.len())
        .filter(|&i| compiled[i].applied && compiled[i].conditions.is_catch_all())
        .collect();
    let mut warnings = Vec::new();
    for (j, later) in compiled.iter().enumerate().filter(|(_, c)| c.applied) {
        let by = catch_alls
            .iter()
            .copied()
            .take_while(|&i| i < j)
            .find(|&i| covers(&hosts[i], &hosts[j]));
        if let Some(i) = by {
            let scope = if hosts[i].is_empty() {
                "every request".to_string()
            } else {
                let names: Vec<String> = hosts[i].iter().map(display).collect();
                format!("every request for {}", names.join(", "))
            };
            warnings.push(Problem {
                level: Level::Warning,
                at: KeyPath(format!("routes[{j}]")),
                message: format!(
                    "route {:?} can never match: route {:?} (routes[{i}]) comes first and takes {scope}",
                    later.name, routes[i].name
                ),
            });
        }
    }
    warnings
}

fn covers(earlier: &[HostPattern], later: &[HostPattern]) -> bool {
    if earlier.is_empty() {
        return true;
    }
    !later.is_empty()
        && later
            .iter()
            .all(|l| earlier.iter().any(|e| covers_one(e, l)))
}

fn covers_one(earlier: &HostPattern, later: &HostPattern) -> bool {
    let under = |name: &str, suffix: &str| {
        name.strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.'))
    };
    match (earlier, later) {
        (HostPattern::Exact(e), HostPattern::Exact(l)) => e == l,
        (HostPattern::Suffix(s), HostPattern::Exact(l)) => under(l, s),
        (HostPattern::Suffix(s), HostPattern::Suffix(t)) => s == t || under(t, s),
        (HostPattern::Exact(_), HostPattern::Suffix(_)) => false,
    }
}
