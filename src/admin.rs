//! The admin listener: `/metrics`, `/stats`, `/healthz` and the runtime control API under
//! `/backends` (`api.rs`), served by the same event loop as the traffic. One request per
//! connection, answered with `Connection: close`. This is not the hot path, so it reads
//! into a `Vec` and renders into `String`s.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Role};
use crate::config::model::{Process, Protocol, Source};
use crate::event_loop::Core;
use crate::front::Front;
use crate::metrics::history::History;
use crate::metrics::prometheus::LabelValue;
use crate::metrics::{BackendMetrics, Metrics, prometheus};
use crate::pool::Pool;
use crate::probe::HealthMonitor;
use crate::shared::Load;
use crate::store::cluster::Cluster;

pub mod api;
mod auth;
mod conn;
mod gather;
pub mod peers;
mod stats;
mod totals;

pub use conn::{AdminConn, Open, accept, answer_later, close, ready, timed_out};
pub use gather::{gathered, sample_history};
use totals::Totals;
pub use totals::{WorkerLine, worker_stats};

/// The largest request head read; an admin request is a request line and a few headers.
const MAX_HEAD: usize = 8 * 1024;

/// What the admin pages show, borrowed from the loop's state.
pub struct View<'a> {
    pub cfg: &'a Process,
    pub pools: &'a [Pool],
    pub fronts: &'a [Front],
    /// The site is the flags' (one pool, one route).
    pub flags: bool,
    /// The routes' names, in the site's order, and the requests each took.
    pub routes: Vec<&'a str>,
    /// By route index: what it matches and what it does, in words.
    pub described: &'a [(String, String)],
    /// The traffic listener's bound address (`--listen` may have asked for port 0).
    pub listen: &'a str,
    pub backends: &'a [Backend],
    pub metrics: &'a Metrics,
    pub history: &'a History,
    pub health: &'a HealthMonitor,
    /// By backend slot, summed over the workers.
    pub load: &'a [Load],
    /// Each worker's own line.
    pub workers: &'a [WorkerLine],
    pub clients_open: usize,
    /// POSTs still being delivered (bounded by --max-pending).
    pub posts_pending: usize,
    /// The instances sharing a PostgreSQL store, as worker 0's store thread last read them.
    pub cluster: Option<&'a Cluster>,
    pub now: Instant,
}

impl<'a> View<'a> {
    /// Worker 0's backends and health, with every worker's counters in `totals`.
    pub fn of(core: &'a Core, totals: &'a Totals) -> Self {
        View {
            cfg: &core.cfg,
            pools: &core.pools,
            fronts: &core.fronts,
            flags: core.source == Source::Flags,
            routes: core.routes.names(),
            described: &core.routes.described,
            listen: &core.default_host,
            backends: &core.backends,
            metrics: &totals.metrics,
            history: &core.history,
            health: &core.health,
            load: &totals.load,
            workers: &totals.workers,
            clients_open: totals.clients_open,
            posts_pending: totals.posts,
            cluster: core.fanout.journal().and_then(|s| s.cluster()),
            now: core.now,
        }
    }

    /// Backend `id`'s load in all workers.
    pub fn load(&self, id: usize) -> Load {
        self.load.get(id).copied().unwrap_or_default()
    }

    pub fn uptime(&self) -> Duration {
        self.now.saturating_duration_since(self.metrics.started)
    }

    /// The labels of backend `id`'s series: `backend="..."`, and `pool="..."` beside it
    /// when lb runs a config file (the flags' one pool says nothing, and their series
    /// stay as they were before pools).
    pub fn labels(&self, id: usize) -> BackendLabels<'a> {
        let b = &self.backends[id];
        BackendLabels {
            backend: &b.label,
            pool: (!self.flags).then(|| self.pools[b.pool].name()),
        }
    }

    /// Every pool carries TCP connections: what is about HTTP has nothing to show.
    pub fn tcp_only(&self) -> bool {
        self.pools.iter().all(|p| p.protocol == Protocol::Tcp)
    }

    /// The pool of backend `id`.
    pub fn pool_of(&self, id: usize) -> &'a Pool {
        &self.pools[self.backends[id].pool]
    }

    /// The backends to show: the listed ones, and removed ones still finishing their work.
    pub fn listed(&self) -> impl Iterator<Item = (usize, &'a Backend, &'a BackendMetrics)> + 'a {
        self.backends
            .iter()
            .zip(&self.metrics.backends)
            .enumerate()
            .filter(|(_, (b, _))| b.role != Role::Vacant)
            .map(|(id, (b, bm))| (id, b, bm))
    }
}

/// Prometheus labels of one backend's series (see `View::labels`).
pub struct BackendLabels<'a> {
    backend: &'a str,
    pool: Option<&'a str>,
}

impl std::fmt::Display for BackendLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backend=\"{}\"", LabelValue(self.backend))?;
        match self.pool {
            Some(pool) => write!(f, ",pool=\"{}\"", LabelValue(pool)),
            None => Ok(()),
        }
    }
}

/// Whether `head` holds a whole request head, or as much as will be read of one.
fn head_done(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let parsed = httparse::Request::new(&mut headers).parse(head);
    !matches!(parsed, Ok(httparse::Status::Partial)) || head.len() >= MAX_HEAD
}

enum Answer {
    Now(Vec<u8>),
    /// For `api::handle`: the control API under /backends.
    Control,
}

/// The whole response to the request head in `head`, or `None` while it is incomplete.
fn answer(head: &[u8], view: &View) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(head);
    let (method, path) = match (parsed, req.method, req.path) {
        (Ok(httparse::Status::Complete(_)), Some(method), Some(path)) => (method, path),
        (Ok(httparse::Status::Partial), ..) if head.len() < MAX_HEAD => return None,
        (Ok(httparse::Status::Partial), ..) | (Err(httparse::Error::TooManyHeaders), ..) => {
            return Some(Answer::Now(response(
                431,
                TEXT,
                b"request head too large\n",
                false,
            )));
        }
        _ => {
            return Some(Answer::Now(response(
                400,
                TEXT,
                b"malformed request\n",
                false,
            )));
        }
    };
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path == "/backends" || path.starts_with("/backends/") || path.starts_with("/pools/") {
        return Some(Answer::Control);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return Some(Answer::Now(response(
            405,
            TEXT,
            b"only GET and HEAD here\n",
            false,
        )));
    }
    Some(Answer::Now(match path {
        "/metrics" => {
            let mut body = String::with_capacity(16 * 1024);
            prometheus::render(view, &mut body);
            response(200, prometheus::CONTENT_TYPE, body.as_bytes(), head_only)
        }
        "/stats" => {
            let mut body = String::with_capacity(16 * 1024);
            stats::render(view, &mut body);
            response(200, HTML, body.as_bytes(), head_only)
        }
        "/healthz" => response(200, TEXT, b"ok\n", head_only),
        _ => response(
            404,
            TEXT,
            b"not found: try /stats, /metrics, /healthz or /backends\n",
            head_only,
        ),
    }))
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let allow = [("Allow", "GET, HEAD")];
    let extra: &[(&str, &str)] = if status == 405 { &allow } else { &[] };
    response_with(status, content_type, body, head_only, extra)
}

/// A whole response with `extra` header fields.
fn response_with(
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(head, "\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
