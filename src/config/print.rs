//! A `Site` written as a config file: what `lb --print-config` prints for the flags
//! given, so that a user can move from flags to a file. Values equal to their default are
//! left out; reading the output back gives the same site.

use std::fmt::Write as _;
use std::time::Duration;

use super::flags::{Unit, number_flag, show};
use super::model::{Action, FieldMatch, HeaderEdits, HostPattern, PathMatch, Rewrite, Site};
use super::model::{
    BackendProtocol, CheckKind, Fanout, Health, Listener, Pool, Process, Protocol, Route,
};
use super::{AccessLogTo, DEFAULT_ADMIN, JournalSync, LogFormat, RetryOn, StatusSet};

/// A TOML string, quoted and escaped.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

/// `key = value` entries whose values differ from the flag of the same name's default.
struct Entries(Vec<String>);

impl Entries {
    fn push(&mut self, key: &str, value: String) {
        self.0.push(format!("{key} = {value}"));
    }

    /// A number under the bounds and default of `flag`, left out at its default.
    fn number(&mut self, key: &str, flag: &str, value: u64) {
        let f = number_flag(flag);
        if value == f.default {
            return;
        }
        let written = match f.unit {
            Unit::Count => value.to_string(),
            unit => q(&show(unit, value)),
        };
        self.push(key, written);
    }

    fn duration(&mut self, key: &str, flag: &str, value: Duration) {
        self.number(
            key,
            flag,
            u64::try_from(value.as_millis()).unwrap_or(u64::MAX),
        );
    }

    /// As lines of a table.
    fn lines(&self, out: &mut String) {
        for e in &self.0 {
            let _ = writeln!(out, "{e}");
        }
    }

    /// As an inline table, or nothing if every value is at its default.
    fn inline(&self, key: &str, out: &mut Entries) {
        if !self.0.is_empty() {
            out.push(key, format!("{{ {} }}", self.0.join(", ")));
        }
    }
}

impl Site {
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        process(&self.process, &mut out);
        let mut admin = Entries(Vec::new());
        if self.admin.listen != Some(DEFAULT_ADMIN) {
            let listen = self
                .admin
                .listen
                .map_or("off".to_string(), |a| a.to_string());
            admin.push("listen", q(&listen));
        }
        if let Some(file) = &self.admin.token_file {
            admin.push("token_file", q(file));
        }
        if !self.admin.hosts.is_empty() {
            admin.push("hosts", list(self.admin.hosts.iter().map(|h| q(h))));
        }
        if !admin.0.is_empty() {
            out.push_str("\n[admin]\n");
            admin.lines(&mut out);
        }
        for l in &self.listeners {
            listener(l, &mut out);
        }
        for p in &self.pools {
            pool(p, &mut out);
        }
        for r in &self.routes {
            route(r, &mut out);
        }
        // Each section starts with a blank line; the file does not.
        out.trim_start_matches('\n').to_string()
    }
}

fn process(p: &Process, out: &mut String) {
    let mut e = Entries(Vec::new());
    if p.workers_auto {
        e.push("workers", q("auto"));
    } else if p.workers != 1 {
        e.push("workers", p.workers.to_string());
    }
    if p.max_connections_given {
        e.push("max_connections", p.max_connections.to_string());
    }
    e.duration("client_timeout", "client-timeout", p.client_timeout);
    e.duration("idle_timeout", "idle-timeout", p.idle_timeout);
    e.duration("drain_timeout", "drain-timeout", p.drain_timeout);
    e.number("max_body", "max-body", p.max_body);
    let default = super::fanout::bound_of(None, p.max_body, p.max_connections as u64);
    if default != Ok(p.max_buffered_bytes) {
        e.push(
            "max_buffered_bytes",
            q(&show(Unit::Size, p.max_buffered_bytes)),
        );
    }
    e.number("client_min_rate", "client-min-rate", p.client_min_rate);
    e.number("max_pending", "max-pending", p.max_pending as u64);
    e.number(
        "max_pending_bytes",
        "max-pending-bytes",
        p.max_pending_bytes,
    );
    e.duration("leave_timeout", "leave-timeout", p.leave_timeout);
    if let Some(j) = &p.journal {
        e.push("journal", q(&j.to_string()));
    }
    if p.journal_sync != JournalSync::Batch {
        e.push("journal_sync", q(p.journal_sync.name()));
    }
    e.duration("resolve_interval", "resolve-interval", p.resolve_interval);
    if let Some(h) = &p.hosts_file {
        e.push("hosts_file", q(&h.display().to_string()));
    }
    if let Some(ca) = &p.backend_ca {
        e.push("backend_ca", q(ca));
    }
    e.lines(out);
    let mut log = Entries(Vec::new());
    if p.log_level != log::LevelFilter::Info {
        log.push("level", q(&p.log_level.as_str().to_ascii_lowercase()));
    }
    if p.log_format == LogFormat::Json {
        log.push("format", q("json"));
    }
    match &p.access_log {
        AccessLogTo::Off => {}
        AccessLogTo::Stdout => log.push("access_log", q("stdout")),
        AccessLogTo::File(path) => log.push("access_log", q(&path.display().to_string())),
    }
    if !log.0.is_empty() {
        out.push_str("\n[log]\n");
        log.lines(out);
    }
}

fn listener(l: &Listener, out: &mut String) {
    let _ = writeln!(out, "\n[listeners.{}]", key(&l.name));
    let mut e = Entries(Vec::new());
    e.push("address", q(&l.address.to_string()));
    if l.protocol == Protocol::Tcp {
        e.push("mode", q("tcp"));
    }
    if let Some(p) = &l.pool {
        e.push("pool", q(p));
    }
    if let Some(r) = &l.routes {
        e.push("routes", list(r.iter().map(|n| q(n))));
    }
    if !l.tls.is_empty() {
        let pairs = l
            .tls
            .iter()
            .map(|c| format!("{{ cert = {}, key = {} }}", q(&c.cert), q(&c.key)));
        e.push("tls", list(pairs));
    }
    match &l.accept_proxy {
        None => {}
        Some(from) if from.is_empty() => e.push("accept_proxy", "true".into()),
        Some(from) => e.push("accept_proxy", list(from.iter().map(|c| q(&c.to_string())))),
    }
    if l.h2c {
        e.push("h2c", "true".into());
    }
    e.lines(out);
}

fn pool(p: &Pool, out: &mut String) {
    let _ = writeln!(out, "\n[pools.{}]", key(&p.name));
    let mut e = Entries(Vec::new());
    let backends = p.backends.iter().map(|b| match b.weight {
        1 => q(&b.label),
        w => q(&format!("{},weight={w}", b.label)),
    });
    e.push("backends", list(backends));
    if let Some(f) = &p.backends_file {
        e.push("backends_file", q(f));
    }
    if p.strategy != "round-robin" {
        e.push("strategy", q(&p.strategy));
    }
    health(&p.health, &mut e);
    e.duration("connect_timeout", "connect-timeout", p.connect_timeout);
    e.duration("server_timeout", "server-timeout", p.server_timeout);
    e.number("retries", "retries", u64::from(p.retries));
    e.number("pool_size", "pool-size", p.pool_size as u64);
    if let Some(v) = p.send_proxy {
        e.push("send_proxy", q(v.name()));
    }
    if p.backend_protocol != BackendProtocol::Http1 {
        e.push("protocol", q(p.backend_protocol.name()));
    }
    fanout(&p.fanout, &mut e);
    e.lines(out);
}

fn health(h: &Health, out: &mut Entries) {
    let mut e = Entries(Vec::new());
    if h.path != "/" {
        e.push("path", q(&h.path));
    }
    e.duration("interval", "health-interval", h.interval);
    e.duration("timeout", "health-timeout", h.timeout);
    e.number("rise", "rise", u64::from(h.rise));
    e.number("fall", "fall", u64::from(h.fall));
    if h.expect != StatusSet::PASSING {
        e.push("expect", q(&h.expect.to_string()));
    }
    if let CheckKind::Grpc { service } = &h.kind {
        e.push("kind", q("grpc"));
        if !service.is_empty() {
            e.push("grpc_service", q(service));
        }
    }
    e.inline("health", out);
}

fn fanout(f: &Fanout, out: &mut Entries) {
    let mut e = Entries(Vec::new());
    e.number("count", "fanout", f.count as u64);
    if f.success_status != StatusSet::SUCCESS {
        e.push("success_status", q(&f.success_status.to_string()));
    }
    if f.retry_on != RetryOn::DEFAULT {
        e.push("retry_on", q(&f.retry_on.to_string()));
    }
    e.duration("retry_base", "retry-base", f.retry_base);
    e.duration("retry_max", "retry-max", f.retry_max);
    e.duration("retry_jitter", "retry-jitter", f.retry_jitter);
    e.number("attempts", "retry-attempts", u64::from(f.retry_attempts));
    e.duration("timeout", "fanout-timeout", f.timeout);
    e.number("max_response", "fanout-max-response", f.max_response);
    e.inline("fanout", out);
}

fn route(r: &Route, out: &mut String) {
    out.push_str("\n[[routes]]\n");
    let mut e = Entries(Vec::new());
    if !r.name.starts_with('#') {
        e.push("name", q(&r.name));
    }
    if !r.hosts.is_empty() {
        let hosts = r.hosts.iter().map(|h| match h {
            HostPattern::Exact(name) => q(name),
            HostPattern::Suffix(suffix) => q(&format!("*{suffix}")),
        });
        e.push("host", list(hosts));
    }
    match &r.path {
        None => {}
        Some(PathMatch::Exact(p)) => e.push("path", q(p)),
        Some(PathMatch::Prefix(p)) => e.push("path_prefix", q(p)),
        Some(PathMatch::Regex(p)) => e.push("path_regex", q(p)),
    }
    if !r.methods.is_empty() {
        e.push("methods", list(r.methods.iter().map(|m| q(m))));
    }
    fields("header", &r.headers, &mut e);
    fields("query", &r.query, &mut e);
    action(&r.action, &mut e);
    let sides = [
        ("request", &r.request_headers),
        ("response", &r.response_headers),
    ];
    let rules: Vec<String> = sides
        .iter()
        .filter_map(|(side, edits)| edits_of(edits).map(|t| format!("{side} = {t}")))
        .collect();
    if !rules.is_empty() {
        e.push("headers", format!("{{ {} }}", rules.join(", ")));
    }
    e.lines(out);
}

fn fields(key: &str, matches: &[FieldMatch], out: &mut Entries) {
    if matches.is_empty() {
        return;
    }
    let items = matches.iter().map(|m| match &m.value {
        Some(v) => format!("{} = {}", q(&m.name), q(v)),
        None => format!("{} = true", q(&m.name)),
    });
    out.push(
        key,
        format!("{{ {} }}", items.collect::<Vec<_>>().join(", ")),
    );
}

fn action(a: &Action, e: &mut Entries) {
    match a {
        Action::Proxy {
            pool,
            fanout,
            rewrite,
            server_timeout,
            max_body,
        } => {
            e.push("pool", q(pool));
            if let Some(f) = fanout {
                e.push("fanout", f.to_string());
            }
            match rewrite {
                None => {}
                Some(Rewrite::StripPrefix(p)) => {
                    e.push("rewrite", format!("{{ strip_prefix = {} }}", q(p)));
                }
                Some(Rewrite::ReplacePrefix { from, to }) => e.push(
                    "rewrite",
                    format!("{{ replace_prefix = {}, with = {} }}", q(from), q(to)),
                ),
            }
            if let Some(t) = server_timeout {
                let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                e.push("timeout", q(&show(Unit::Duration, ms)));
            }
            if let Some(m) = max_body {
                e.push("max_body", q(&show(Unit::Size, *m)));
            }
        }
        Action::Redirect { to, status } => {
            e.push(
                "redirect",
                format!("{{ to = {}, status = {status} }}", q(to)),
            );
        }
        Action::Respond {
            status,
            body,
            content_type,
        } => e.push(
            "respond",
            format!(
                "{{ status = {status}, body = {}, content_type = {} }}",
                q(body),
                q(content_type)
            ),
        ),
    }
}

fn edits_of(h: &HeaderEdits) -> Option<String> {
    let pairs = |v: &[(String, String)]| {
        let items: Vec<String> = v
            .iter()
            .map(|(n, v)| format!("{} = {}", q(n), q(v)))
            .collect();
        format!("{{ {} }}", items.join(", "))
    };
    let mut parts = Vec::new();
    if !h.set.is_empty() {
        parts.push(format!("set = {}", pairs(&h.set)));
    }
    if !h.add.is_empty() {
        parts.push(format!("add = {}", pairs(&h.add)));
    }
    if !h.remove.is_empty() {
        parts.push(format!("remove = {}", list(h.remove.iter().map(|n| q(n)))));
    }
    (!parts.is_empty()).then(|| format!("{{ {} }}", parts.join(", ")))
}

/// A table name as a bare key where it can be one, quoted otherwise.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare { name.to_string() } else { q(name) }
}
