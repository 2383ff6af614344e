//! The config file (`-c FILE`, TOML) read into the one model, `Site`. Every problem is
//! collected, not just the first, each at its line and column: what TOML itself refuses,
//! a key no section knows, a value of the wrong kind or out of range (the same bounds as
//! the flag of the same name), and what `model::validate` finds across sections.

mod doc;
mod listeners;
mod pools;
mod routes;

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::diagnostic::{Diagnostic, Level};
use super::fanout::{HEAD_ROOM, JournalAt, JournalSync, bound_of};
use super::flags::{Unit, as_duration, number_flag, show};
use super::model::{
    Action, Admin, KeyPath, Listed, Listener, Problem, Process, Protocol, Route, Site, Source,
};
use super::values::{parse_addr, parse_admin_hosts, read_token_file};
use super::{AccessLogTo, DEFAULT_ADMIN, LogFormat, parse_workers};
use crate::route::RouteTable;
use doc::{Doc, Table};

/// A file read: the site if nothing is wrong with it, and every problem found (warnings
/// do not stop the site).
pub struct Checked {
    pub site: Option<Site>,
    pub problems: Vec<Diagnostic>,
    /// What the pools' backends files list, read to check them.
    pub listed: Listed,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.problems.iter().filter(|d| d.level == Level::Error)
    }
}

const TOP: &[&str] = &[
    "admin",
    "log",
    "listeners",
    "pools",
    "routes",
    "workers",
    "max_connections",
    "client_timeout",
    "idle_timeout",
    "drain_timeout",
    "max_body",
    "max_buffered_bytes",
    "client_min_rate",
    "max_pending",
    "max_pending_bytes",
    "leave_timeout",
    "journal",
    "journal_sync",
    "resolve_interval",
    "hosts_file",
    "backend_ca",
];

const ADMIN: &[&str] = &["listen", "token_file", "hosts"];
const LOG: &[&str] = &["level", "format", "access_log"];

/// Where a key written at the top level belongs, if a section knows it: process-wide
/// settings come first in the file, and a section's key above every `[section]` lands
/// among them.
fn belongs(key: &str) -> Option<String> {
    let sections: &[(&[&str], &str, &str)] = &[
        (pools::POOL, "a pool setting", "under [pools.NAME]"),
        (routes::ROUTE, "a route setting", "under [[routes]]"),
        (
            listeners::LISTENER,
            "a listener setting",
            "under [listeners.NAME]",
        ),
        (
            pools::HEALTH,
            "a health check setting",
            "in `health = { ... }` under [pools.NAME]",
        ),
        (
            pools::FANOUT,
            "a fan-out setting",
            "in `fanout = { ... }` under [pools.NAME]",
        ),
        (ADMIN, "an admin setting", "under [admin]"),
        (LOG, "a log setting", "under [log]"),
    ];
    let (_, what, under) = sections.iter().find(|(keys, _, _)| keys.contains(&key))?;
    Some(format!("`{key}` is {what}: put it {under}"))
}

/// A file that reads: its site, and its warnings as log lines (`FILE:LINE:COL: ...`).
pub struct Loaded {
    pub site: Site,
    pub warnings: Vec<String>,
}

/// How a file's errors are told: as `lb check` prints them, each with its source line and
/// a caret (at start), or each as one log line, `FILE:LINE:COL: message` (a reload).
#[derive(Clone, Copy)]
pub enum Told {
    Shown,
    Logged,
}

/// Reads and checks the file at `path` for running it; `Err`: every error, told as `told`.
pub fn load(path: &str, told: Told) -> Result<Loaded, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![match told {
            Told::Shown => format!("lb: cannot read {path}: {e}\n"),
            Told::Logged => format!("cannot read {path}: {e}"),
        }]
    })?;
    let checked = check_file(path, &text);
    let tell = |d: &Diagnostic| match told {
        Told::Shown => d.render(path, &text),
        Told::Logged => d.one_line(path, &text),
    };
    let Some(site) = checked.site else {
        return Err(checked.errors().map(tell).collect());
    };
    let warnings = checked
        .problems
        .iter()
        .map(|d| d.one_line(path, &text))
        .collect();
    Ok(Loaded { site, warnings })
}

/// Reads `text`, the content of the file at `path`: file paths in it are relative to its
/// directory, not to wherever lb was started from (systemd starts it in `/`).
pub fn check_file(path: &str, text: &str) -> Checked {
    let dir = Path::new(path).parent().unwrap_or(Path::new(""));
    let mut checked = check_in(text, path, dir);
    if let Some(site) = checked.site.as_mut() {
        site.source = Source::File(PathBuf::from(path));
        site.relative_to(dir);
    }
    checked
}

/// Reads `text`, the content of a config file, with its paths relative to where lb runs.
pub fn check(text: &str) -> Checked {
    check_in(text, "", Path::new(""))
}

fn check_in(text: &str, file: &str, dir: &Path) -> Checked {
    let mut doc = Doc::new(text, file, dir);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // What follows a syntax error is read in ways the author never meant: only the
        // syntax errors are worth reading.
        let problems = syntax
            .iter()
            .map(|e| Diagnostic::error(e.span().unwrap_or(0..0), e.message().trim()))
            .collect();
        return Checked {
            site: None,
            problems,
            listed: Listed::new(),
        };
    }
    let root = toml::Spanned::new(root.span(), toml::de::DeValue::Table(root.into_inner()));
    let site = doc
        .table_or(&root, KeyPath(String::new()), "the file", TOP, belongs)
        .and_then(|t| read_site(&mut doc, &t));
    if let Some(site) = site.as_ref().filter(|_| !doc.dropped) {
        http_only(&mut doc, site);
        for p in site
            .validate(&doc.listed)
            .into_iter()
            .chain(route_problems(site))
        {
            let span = doc.span_of(&p.at);
            doc.problems.push(Diagnostic {
                level: p.level,
                span,
                message: p.message,
            });
        }
    }
    let mut problems = doc.problems;
    problems.sort_by_key(|d| (d.span.start, d.span.end));
    problems.dedup();
    let site = site.filter(|_| problems.iter().all(|d| d.level != Level::Error));
    Checked {
        site,
        problems,
        listed: doc.listed,
    }
}

/// A pool's keys that do nothing when a TCP listener sends to it, refused as `-m tcp`
/// refuses their flags.
const HTTP_ONLY_POOL: &[&str] = &[
    "server_timeout",
    "pool_size",
    "protocol",
    "health.path",
    "health.expect",
    "health.kind",
    "health.grpc_service",
    "fanout",
];

/// Process keys that do nothing when every listener is TCP.
const HTTP_ONLY_PROCESS: &[&str] = &[
    "max_body",
    "max_buffered_bytes",
    "client_min_rate",
    "leave_timeout",
    "max_pending",
    "max_pending_bytes",
    "journal",
    "journal_sync",
];

/// HTTP settings written where only TCP passes: a pool that a TCP listener uses (and no
/// route: that is refused by itself), the process when every listener is TCP. Each is an
/// error at its key, as `-m tcp` refuses the flag of the same name.
fn http_only(doc: &mut Doc, site: &Site) {
    for p in &site.pools {
        let Some(l) = site
            .listeners
            .iter()
            .find(|l| l.protocol == Protocol::Tcp && l.pool.as_deref() == Some(&p.name))
        else {
            continue;
        };
        let routed = site
            .routes
            .iter()
            .any(|r| matches!(&r.action, Action::Proxy { pool, .. } if pool == &p.name));
        if routed {
            continue;
        }
        let at = KeyPath("pools".into()).key(&p.name);
        for key in HTTP_ONLY_POOL {
            if let Some(span) = doc.key_at(&at.key(key)) {
                doc.error(
                    span,
                    format!(
                        "`{key}` applies to HTTP only and does nothing in pool `{}`, which TCP \
                         listener `{}` uses",
                        p.name, l.name
                    ),
                );
            }
        }
    }
    let tcp = |l: &Listener| l.protocol == Protocol::Tcp;
    if !site.listeners.is_empty() && site.listeners.iter().all(tcp) {
        let top = KeyPath(String::new());
        for key in HTTP_ONLY_PROCESS {
            if let Some(span) = doc.key_at(&top.key(key)) {
                doc.error(
                    span,
                    format!(
                        "`{key}` applies to HTTP only and does nothing: every listener is \
                         mode = \"tcp\""
                    ),
                );
            }
        }
        // With TCP, the client timeout times only what lb reads before the pipe opens.
        let client_first = site
            .listeners
            .iter()
            .any(|l| !l.tls.is_empty() || l.accept_proxy.is_some());
        if let Some(span) = doc
            .key_at(&top.key("client_timeout"))
            .filter(|_| !client_first)
        {
            doc.error(
                span,
                "`client_timeout` with only TCP listeners times TLS handshakes and PROXY \
                 headers only: give it with a listener's `tls` or `accept_proxy`",
            );
        }
    }
}

/// What compiling the route table finds: in the routes (once, for every listener), and
/// in each listener's list of the routes it applies.
fn route_problems(site: &Site) -> Vec<Problem> {
    let mut problems = match RouteTable::compile(&site.routes, None) {
        Ok(table) => table.warnings().to_vec(),
        Err(problems) => problems,
    };
    for l in &site.listeners {
        let Some(only) = &l.routes else {
            continue;
        };
        if let Err(found) = RouteTable::compile(&site.routes, Some(only)) {
            let at = KeyPath("listeners".into()).key(&l.name).key("routes");
            problems.extend(found.into_iter().filter_map(|p| {
                let k = p.at.0.strip_prefix("only")?;
                Some(Problem {
                    at: KeyPath(format!("{}{k}", at.0)),
                    ..p
                })
            }));
        }
    }
    problems
}

fn read_site(doc: &mut Doc, t: &Table) -> Option<Site> {
    // The routes first: the bound on buffered POSTs fits the largest body one takes.
    let routes = match doc.get(t, "routes") {
        Some(v) => routes::read(doc, v),
        None => Vec::new(),
    };
    let process = read_process(doc, t, &routes);
    let admin = read_admin(doc, t);
    let pools = match doc.get(t, "pools") {
        Some(v) => pools::read(doc, v),
        None => Vec::new(),
    };
    let listeners = match doc.get(t, "listeners") {
        Some(v) => listeners::read(doc, v),
        None => Vec::new(),
    };
    Some(Site {
        source: Source::File(PathBuf::new()),
        listeners,
        pools,
        routes,
        admin: admin?,
        process: process?,
    })
}

/// A number with the default of the flag of the same name.
fn number_or_default(doc: &mut Doc, t: &Table, key: &str) -> u64 {
    let flag = key.replace('_', "-");
    doc.number(t, key, &flag)
        .unwrap_or(number_flag(&flag).default)
}

/// A string value turned into a `T` by `parse`, whose error is said at the value.
fn parsed<T>(
    doc: &mut Doc,
    t: &Table,
    key: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let s = doc.string(t, key)?;
    match parse(&s) {
        Ok(v) => Some(v),
        Err(e) => {
            let span = doc.span_of(&t.path.key(key));
            doc.error(span, format!("`{key}`: {e}"));
            None
        }
    }
}

fn size(v: u64) -> String {
    show(Unit::Size, v)
}

/// Each route's `max_body` fits the process's bound on buffered POSTs, `bound`: a body
/// past it would get 503 every time, never 413.
fn fit_route_bodies(doc: &mut Doc, routes: &[Route], bound: u64) {
    for (i, r) in routes.iter().enumerate() {
        let Action::Proxy {
            max_body: Some(body),
            ..
        } = r.action
        else {
            continue;
        };
        let one = body.saturating_add(HEAD_ROOM);
        if bound < one {
            let span = doc.span_of(&KeyPath("routes".into()).index(i).key("max_body"));
            doc.error(
                span,
                format!(
                    "route `{}`'s `max_body` ({}) with its head ({}) is more than \
                     `max_buffered_bytes` ({}): every such POST would get 503; give \
                     `max_buffered_bytes` at least {}, or a smaller `max_body`",
                    r.name,
                    size(body),
                    size(HEAD_ROOM),
                    size(bound),
                    size(one)
                ),
            );
        }
    }
}

fn read_process(doc: &mut Doc, t: &Table, routes: &[Route]) -> Option<Process> {
    let workers_auto = doc.get(t, "workers").is_some_and(
        |v| matches!(v.get_ref(), toml::de::DeValue::String(s) if s.as_ref() == "auto"),
    );
    let workers = match doc.get(t, "workers") {
        None => 1,
        Some(v) => {
            let written = match v.get_ref() {
                toml::de::DeValue::String(s) => Ok(s.to_string()),
                toml::de::DeValue::Integer(n) => Ok(n.as_str().to_string()),
                other => Err(format!(
                    "`workers` must be a number or \"auto\", not {}",
                    doc::kind(other)
                )),
            };
            match written.and_then(|w| parse_workers(&w).map_err(|e| format!("`workers`: {e}"))) {
                Ok(n) => n,
                Err(e) => {
                    doc.error(v.span(), e);
                    1
                }
            }
        }
    };
    let log = match doc.get(t, "log") {
        Some(v) => doc.table(v, t.path.key("log"), "[log]", LOG),
        None => None,
    };
    let (log_level, log_format, access_log) = match &log {
        Some(l) => (
            parsed(doc, l, "level", parse_level).unwrap_or(log::LevelFilter::Info),
            parsed(doc, l, "format", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("'{s}' is not a log format (text or json)")),
            })
            .unwrap_or(LogFormat::Text),
            parsed(doc, l, "access_log", |s| {
                Ok(match s {
                    "off" => AccessLogTo::Off,
                    "stdout" => AccessLogTo::Stdout,
                    "" => return Err("the path is empty (off, stdout or a path)".into()),
                    path => AccessLogTo::File(path.into()),
                })
            })
            .unwrap_or(AccessLogTo::Off),
        ),
        None => (log::LevelFilter::Info, LogFormat::Text, AccessLogTo::Off),
    };
    let max_body = number_or_default(doc, t, "max_body");
    let max_connections = number_or_default(doc, t, "max_connections");
    let given = doc.number(t, "max_buffered_bytes", "max-buffered-bytes");
    let largest = routes
        .iter()
        .filter_map(|r| match r.action {
            Action::Proxy { max_body, .. } => max_body,
            _ => None,
        })
        .fold(max_body, u64::max);
    let max_buffered_bytes = match given {
        Some(bound) => {
            let one = max_body.saturating_add(HEAD_ROOM);
            if bound < one {
                let span = doc.span_of(&t.path.key("max_buffered_bytes"));
                doc.error(
                    span,
                    format!(
                        "`max_buffered_bytes` {} is below one body of `max_body` ({}) with its \
                         head ({}): give at least {}",
                        size(bound),
                        size(max_body),
                        size(HEAD_ROOM),
                        size(one)
                    ),
                );
            }
            fit_route_bodies(doc, routes, bound);
            bound
        }
        // As for the flags: room for a few of the largest body a POST may have.
        None => bound_of(None, largest, max_connections).unwrap_or(largest),
    };
    Some(Process {
        workers,
        workers_auto,
        max_connections: max_connections as usize,
        max_connections_given: t.has("max_connections"),
        client_timeout: as_duration(number_or_default(doc, t, "client_timeout")),
        idle_timeout: as_duration(number_or_default(doc, t, "idle_timeout")),
        drain_timeout: as_duration(number_or_default(doc, t, "drain_timeout")),
        max_body,
        max_buffered_bytes,
        client_min_rate: number_or_default(doc, t, "client_min_rate"),
        max_pending: number_or_default(doc, t, "max_pending") as usize,
        max_pending_bytes: number_or_default(doc, t, "max_pending_bytes"),
        leave_timeout: as_duration(number_or_default(doc, t, "leave_timeout")),
        journal: doc.string(t, "journal").as_deref().map(JournalAt::parse),
        journal_sync: parsed(doc, t, "journal_sync", JournalSync::parse)
            .unwrap_or(JournalSync::Batch),
        resolve_interval: as_duration(number_or_default(doc, t, "resolve_interval")),
        hosts_file: doc.string(t, "hosts_file").map(PathBuf::from),
        backend_ca: doc.string(t, "backend_ca"),
        access_log,
        log_format,
        log_level,
    })
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    match s {
        "error" => Ok(log::LevelFilter::Error),
        "warn" => Ok(log::LevelFilter::Warn),
        "info" => Ok(log::LevelFilter::Info),
        "debug" => Ok(log::LevelFilter::Debug),
        "trace" => Ok(log::LevelFilter::Trace),
        _ => Err(format!(
            "'{s}' is not a log level (error, warn, info, debug or trace)"
        )),
    }
}

fn read_admin(doc: &mut Doc, t: &Table) -> Option<Admin> {
    let Some(v) = doc.get(t, "admin") else {
        return Some(Admin {
            listen: Some(DEFAULT_ADMIN),
            token: None,
            token_file: None,
            hosts: Vec::new(),
        });
    };
    let a = doc.table(v, t.path.key("admin"), "[admin]", ADMIN)?;
    let listen = parsed(doc, &a, "listen", |s| match s {
        "off" => Ok(None),
        _ => parse_addr(s).map(Some),
    })
    .unwrap_or(Some(DEFAULT_ADMIN));
    let token_file = doc.string(&a, "token_file");
    let token = match &token_file {
        Some(path) => match read_token_file(&doc.dir.join(path).display().to_string()) {
            Ok(token) => Some(token),
            Err(e) => {
                let span = doc.span_of(&a.path.key("token_file"));
                doc.error(span, e);
                None
            }
        },
        None => None,
    };
    let written = doc.strings(&a, "hosts").unwrap_or_default();
    let hosts = match parse_admin_hosts(written.iter().map(|(h, _)| h.clone()).collect()) {
        Ok(hosts) => hosts,
        Err(e) => {
            let span = doc.span_of(&a.path.key("hosts"));
            doc.error(span, e.replace("--admin-host", "`hosts`:"));
            Vec::new()
        }
    };
    Some(Admin {
        listen,
        token,
        token_file,
        hosts,
    })
}

#[cfg(test)]
mod tests;
