//! `[pools.NAME]`: backends, strategy, health, timeouts and the fan-out's settings, each
//! with the default and the bounds of the flag of the same name.

use super::doc::{Doc, Table};
use super::{number_or_default, parsed};
use crate::config::backends::{parse_line, read_backends_file};
use crate::config::fanout::{RetryOn, StatusSet};
use crate::config::flags::{as_duration, number_flag};
use crate::config::model::{BackendProtocol, CheckKind, Fanout, Health, KeyPath, Pool};
use crate::grpc::message::MAX_SERVICE;
use crate::proxy_protocol;
use crate::strategy;

type Value<'i> = toml::Spanned<toml::de::DeValue<'i>>;

pub(super) const POOL: &[&str] = &[
    "backends",
    "backends_file",
    "strategy",
    "health",
    "connect_timeout",
    "server_timeout",
    "retries",
    "pool_size",
    "send_proxy",
    "protocol",
    "fanout",
];

pub(super) const HEALTH: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "rise",
    "fall",
    "expect",
    "kind",
    "grpc_service",
];

pub(super) const FANOUT: &[&str] = &[
    "count",
    "success_status",
    "retry_on",
    "retry_base",
    "retry_max",
    "retry_jitter",
    "attempts",
    "timeout",
    "max_response",
];

pub fn read(doc: &mut Doc, value: &Value) -> Vec<Pool> {
    let path = KeyPath("pools".into());
    let mut pools = Vec::new();
    for (name, v) in doc.named(value, path.clone(), "`pools`") {
        let what = format!("[pools.{name}]");
        if let Some(t) = doc.table(v, path.key(&name), &what, POOL) {
            pools.push(read_pool(doc, &t, name));
        }
    }
    pools
}

fn read_pool(doc: &mut Doc, t: &Table, name: String) -> Pool {
    let mut backends = Vec::new();
    for (i, (line, span)) in doc
        .strings(t, "backends")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("{} (pools.{name}.backends[{i}])", doc.place(&span));
        match parse_line(&line, at) {
            Ok(b) => backends.push(b),
            Err(e) => {
                doc.error(span, e);
                doc.dropped = true;
            }
        }
    }
    let strategy = parsed(doc, t, "strategy", |s| {
        strategy::canonical(s).map(str::to_string).ok_or_else(|| {
            format!(
                "unknown strategy '{s}' (one of: {})",
                strategy::NAMES.join(", ")
            )
        })
    })
    .unwrap_or_else(|| "round-robin".to_string());
    let health = match doc.get(t, "health") {
        Some(v) => doc.table(v, t.path.key("health"), "`health`", HEALTH),
        None => None,
    };
    let fanout = match doc.get(t, "fanout") {
        Some(v) => doc.table(v, t.path.key("fanout"), "`fanout`", FANOUT),
        None => None,
    };
    let backends_file = doc.string(t, "backends_file");
    if let Some(path) = &backends_file {
        // Read as `lb -c` reads it at start: its errors name the file and the line.
        match read_backends_file(&doc.dir.join(path).display().to_string()) {
            Ok(lines) => {
                doc.listed.insert(name.clone(), lines);
            }
            Err(e) => {
                let span = doc.span_of(&t.path.key("backends_file"));
                doc.error(span, e);
            }
        }
    }
    Pool {
        name,
        backends,
        backends_file,
        strategy,
        health: read_health(doc, health.as_ref()),
        connect_timeout: as_duration(number_or_default(doc, t, "connect_timeout")),
        server_timeout: as_duration(number_or_default(doc, t, "server_timeout")),
        retries: number_or_default(doc, t, "retries") as u32,
        pool_size: number_or_default(doc, t, "pool_size") as usize,
        send_proxy: parsed(doc, t, "send_proxy", |s| match s {
            "v1" => Ok(proxy_protocol::Version::V1),
            "v2" => Ok(proxy_protocol::Version::V2),
            _ => Err(format!("'{s}' is not a PROXY protocol version (v1 or v2)")),
        }),
        backend_protocol: parsed(doc, t, "protocol", |s| match s {
            "http1" => Ok(BackendProtocol::Http1),
            "h2" => Ok(BackendProtocol::H2),
            _ => Err(format!("'{s}' is not a backend protocol (http1 or h2)")),
        })
        .unwrap_or_default(),
        fanout: read_fanout(doc, fanout.as_ref()),
    }
}

/// A number from sub-table `t` (absent: the flag's default), under the flag `flag`.
fn sub_number(doc: &mut Doc, t: Option<&Table>, key: &str, flag: &str) -> u64 {
    t.and_then(|t| doc.number(t, key, flag))
        .unwrap_or(number_flag(flag).default)
}

fn read_health(doc: &mut Doc, t: Option<&Table>) -> Health {
    let path = t.and_then(|t| {
        parsed(doc, t, "path", |s| {
            if s.starts_with('/')
                && !s
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                Ok(s.to_string())
            } else {
                Err(format!("'{s}' is not a path (it starts with /, no spaces)"))
            }
        })
    });
    let interval = as_duration(sub_number(doc, t, "interval", "health-interval"));
    if let Some(t) = t.filter(|_| interval.is_zero()) {
        for key in [
            "timeout",
            "path",
            "rise",
            "fall",
            "expect",
            "kind",
            "grpc_service",
        ] {
            if t.has(key) {
                let span = doc.key_span(t, key);
                doc.warning(
                    span,
                    format!("`{key}` is ignored: `interval` 0 turns health checks off"),
                );
            }
        }
    }
    Health {
        interval,
        timeout: as_duration(sub_number(doc, t, "timeout", "health-timeout")),
        path: path.unwrap_or_else(|| "/".to_string()),
        rise: sub_number(doc, t, "rise", "rise") as u32,
        fall: sub_number(doc, t, "fall", "fall") as u32,
        expect: t
            .and_then(|t| parsed(doc, t, "expect", StatusSet::parse))
            .unwrap_or(StatusSet::PASSING),
        kind: t.map_or(CheckKind::Http, |t| read_check_kind(doc, t)),
    }
}

/// `kind` and what goes with it: a gRPC check has no path or statuses of its own, and a
/// service name only a gRPC check can ask about.
fn read_check_kind(doc: &mut Doc, t: &Table) -> CheckKind {
    let grpc = parsed(doc, t, "kind", |s| match s {
        "http" => Ok(false),
        "grpc" => Ok(true),
        _ => Err(format!(
            "'{s}' is not a kind of health check (http or grpc)"
        )),
    })
    .unwrap_or(false);
    let service = parsed(doc, t, "grpc_service", |s| {
        if s.len() <= MAX_SERVICE && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(s.to_string())
        } else {
            Err(format!(
                "'{s}' is not a gRPC service name (at most {MAX_SERVICE} characters, no spaces)"
            ))
        }
    });
    if !grpc {
        if t.has("grpc_service") {
            let span = doc.key_span(t, "grpc_service");
            doc.error(span, "`grpc_service` needs `kind = \"grpc\"`");
        }
        return CheckKind::Http;
    }
    for key in ["path", "expect"] {
        if t.has(key) {
            let span = doc.key_span(t, key);
            doc.error(
                span,
                format!("`{key}` does nothing with `kind = \"grpc\"`: the check calls grpc.health.v1.Health/Check"),
            );
        }
    }
    CheckKind::Grpc {
        service: service.unwrap_or_default(),
    }
}

fn read_fanout(doc: &mut Doc, t: Option<&Table>) -> Fanout {
    let retry_base = as_duration(sub_number(doc, t, "retry_base", "retry-base"));
    let given_max = t.is_some_and(|t| t.has("retry_max"));
    let mut retry_max = as_duration(sub_number(doc, t, "retry_max", "retry-max"));
    if !given_max {
        // The default cap must not contradict a base given alone.
        retry_max = retry_max.max(retry_base);
    }
    Fanout {
        count: sub_number(doc, t, "count", "fanout") as usize,
        success_status: t
            .and_then(|t| parsed(doc, t, "success_status", StatusSet::parse))
            .unwrap_or(StatusSet::SUCCESS),
        retry_on: t
            .and_then(|t| parsed(doc, t, "retry_on", RetryOn::parse))
            .unwrap_or(RetryOn::DEFAULT),
        retry_base,
        retry_max,
        retry_jitter: as_duration(sub_number(doc, t, "retry_jitter", "retry-jitter")),
        retry_attempts: sub_number(doc, t, "attempts", "retry-attempts") as u32,
        timeout: as_duration(sub_number(doc, t, "timeout", "fanout-timeout")),
        max_response: sub_number(doc, t, "max_response", "fanout-max-response"),
    }
}
