//! The admin listener: `/metrics`, `/stats`, `/healthz` and the runtime control API under
//! `/backends` (`api.rs`), served by the same event loop as the traffic. One request per
//! connection, answered with `Connection: close`. This is not the hot path, so it reads
//! into a `Vec` and renders into `String`s.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpStream;
use slab::Slab;

use crate::backend::{Backend, Role};
use crate::config::Config;
use crate::event_loop::{Conn, Core};
use crate::metrics::history::History;
use crate::metrics::{BackendMetrics, Metrics, prometheus};
use crate::probe::HealthMonitor;
use crate::shared::Load;
use crate::timer::TimerId;

pub mod api;
mod auth;
mod gather;
mod stats;
mod totals;

pub use gather::{gathered, sample_history};
use totals::Totals;
pub use totals::{WorkerLine, worker_stats};

/// The largest request head read; an admin request is a request line and a few headers.
const MAX_HEAD: usize = 8 * 1024;
/// A whole admin connection, from accept to close: a slow client is cut off after this.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections open at once; more are closed at accept so that a flood of them
/// cannot pile up next to the traffic.
const MAX_OPEN: usize = 64;

/// What the admin pages show, borrowed from the loop's state.
pub struct View<'a> {
    pub cfg: &'a Config,
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
    pub now: Instant,
}

impl<'a> View<'a> {
    /// Worker 0's backends and health, with every worker's counters in `totals`.
    pub fn of(core: &'a Core, totals: &'a Totals) -> Self {
        View {
            cfg: &core.cfg,
            listen: &core.default_host,
            backends: &core.backends,
            metrics: &totals.metrics,
            history: &core.history,
            health: &core.health,
            load: &totals.load,
            workers: &totals.workers,
            clients_open: totals.clients_open,
            posts_pending: totals.posts,
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

pub struct AdminConn {
    sock: TcpStream,
    peer: SocketAddr,
    pub serial: u32,
    timer: Option<TimerId>,
    state: State,
    /// With several workers: fresh counters asked of every worker before answering.
    gather: Gather,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gather {
    NotYet,
    /// Asked, as this request number (see `Shared::want_stats`).
    Waiting(u64),
    Done,
}

enum State {
    /// The request head so far.
    Reading(Vec<u8>),
    /// A control request waits for the resolver thread (`api::added`).
    Waiting,
    Writing {
        out: Vec<u8>,
        sent: usize,
    },
    /// Answered and half-closed: reading until the client closes, so that bytes it sent
    /// and we never read do not turn our close into a reset that could eat the answer.
    Draining,
}

pub fn accept(conns: &mut Slab<Conn>, core: &mut Core, mut sock: TcpStream, peer: SocketAddr) {
    if core.admin_open >= MAX_OPEN {
        debug!("{MAX_OPEN} admin connections open: closing a new one");
        return;
    }
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.register(&mut sock, key, 0) {
        debug!("cannot register admin connection: {e}");
        return;
    }
    let serial = core.next_serial();
    let mut conn = AdminConn {
        sock,
        peer,
        serial,
        timer: None,
        state: State::Reading(Vec::new()),
        gather: if core.shared.workers() > 1 {
            Gather::NotYet
        } else {
            Gather::Done
        },
    };
    core.arm(&mut conn.timer, TIMEOUT, key, serial);
    entry.insert(Conn::Admin(conn));
    core.admin_open += 1;
}

/// What stepping an admin connection came to.
enum Flow {
    Wait,
    Done,
    /// A complete request, to be answered once every worker has published its counters.
    Gather,
    /// A complete request for the control API, which needs the loop's state.
    Control(Vec<u8>),
}

pub fn ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    loop {
        let Some(Conn::Admin(a)) = conns.get_mut(key) else {
            return;
        };
        match step(a, core) {
            Ok(Flow::Wait) => return,
            Ok(Flow::Done) => return close(conns, core, key),
            Ok(Flow::Gather) => return gather::ask(core, a, key),
            Ok(Flow::Control(head)) => {
                a.state = State::Waiting;
                let (peer, serial) = (a.peer, a.serial);
                match api::handle(conns, core, (key, serial), peer, &head) {
                    Some(out) => set_answer(conns, key, out),
                    None => return,
                }
            }
            Err(e) => {
                debug!("admin connection: {e}");
                return close(conns, core, key);
            }
        }
    }
}

/// Gives a waiting connection its answer; it is written as the socket allows.
fn set_answer(conns: &mut Slab<Conn>, key: usize, out: Vec<u8>) {
    if let Some(Conn::Admin(a)) = conns.get_mut(key) {
        a.state = State::Writing { out, sent: 0 };
    }
}

/// The answer a control request waited for is ready.
pub fn answer_later(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (key, serial): (usize, u32),
    out: Vec<u8>,
) {
    match conns.get(key) {
        Some(Conn::Admin(a)) if a.serial == serial && matches!(a.state, State::Waiting) => {
            set_answer(conns, key, out);
            ready(conns, core, key);
        }
        _ => {}
    }
}

pub fn timed_out(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Admin(a)) = conns.get_mut(key) {
        a.timer = None;
        close(conns, core, key);
    }
}

pub fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Admin(mut a)) = conns.try_remove(key) {
        core.disarm(&mut a.timer);
        let _ = core.registry.deregister(&mut a.sock);
        core.admin_open -= 1;
    }
}

/// Advances a connection as far as its socket allows.
fn step(a: &mut AdminConn, core: &Core) -> io::Result<Flow> {
    let mut chunk = [0u8; 4096];
    loop {
        match &mut a.state {
            State::Reading(head) if head_done(head) => match a.gather {
                Gather::NotYet => return Ok(Flow::Gather),
                Gather::Waiting(_) => return Ok(Flow::Wait),
                Gather::Done => {
                    let totals = Totals::gather(core);
                    match answer(head, &View::of(core, &totals)) {
                        Some(Answer::Now(out)) => a.state = State::Writing { out, sent: 0 },
                        Some(Answer::Control) => {
                            return Ok(Flow::Control(std::mem::take(head)));
                        }
                        None => return Ok(Flow::Wait),
                    }
                }
            },
            State::Reading(head) => {
                let room = (MAX_HEAD - head.len()).min(chunk.len());
                match a.sock.read(&mut chunk[..room]) {
                    // Gone before sending a whole request: there is no one to answer.
                    Ok(0) => return Ok(Flow::Done),
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            State::Waiting => return Ok(Flow::Wait),
            State::Writing { out, sent } => {
                if *sent == out.len() {
                    a.sock.shutdown(Shutdown::Write)?;
                    a.state = State::Draining;
                    continue;
                }
                match a.sock.write(&out[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            State::Draining => match a.sock.read(&mut chunk) {
                Ok(0) => return Ok(Flow::Done),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            },
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
    if path == "/backends" || path.starts_with("/backends/") {
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
