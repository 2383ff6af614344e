//! Active health checks, run from the event loop: every `--health-interval` each backend
//! gets a non-blocking `GET --health-path` (HTTP mode), a gRPC Health/Check over HTTP/2
//! (`kind = "grpc"`), or a bare connect (TCP mode).
//! Results from checks and from real traffic feed one `HealthState` per backend.

use std::io;
use std::time::{Duration, Instant};

use log::warn;
use mio::net::TcpStream;
use slab::Slab;

use crate::backend::{BackendId, Role};
use crate::buffer::BufferPool;
use crate::config::UNRESOLVED;
use crate::conn::{Filled, Socket};
use crate::event_loop::{Conn, Core, Timer};
use crate::fanout;
use crate::grpc::health::{HealthCall, Verdict};
use crate::health::Checks;
use crate::health::Transition;
pub use crate::health::{HealthMonitor, LastCheck};
use crate::http::upstream::backend_socket;
use crate::limits::is_local_exhaustion;
use crate::metrics::Failure;
use crate::timer::TimerId;

/// Counts a failure of real traffic and feeds it to the passive health check. A backend
/// it takes down is down for every worker, and logged once, by the worker that did it. One
/// that could not connect, or got no answer in time, also tells the fan-out that lb cannot
/// reach the backend.
pub fn observe(core: &mut Core, backend: BackendId, failure: Option<Failure>, why: &str) {
    if let Some(f) = failure {
        core.metrics.failure(backend, f);
        if matches!(f, Failure::Connect | Failure::Timeout) {
            fanout::unreachable(core, backend, why);
        }
    }
    observe_result(core, backend, failure.is_none(), why);
}

/// Feeds one result of real traffic to the passive health check, without counting it.
pub fn observe_result(core: &mut Core, backend: BackendId, passed: bool, why: &str) {
    let went_down = core.health.observed(&mut core.backends, backend, passed);
    if went_down && publish_health(core, backend, false) {
        warn!(
            "backend {} DOWN after {} failed requests: {why}",
            core.backends[backend].label,
            core.settings(backend).health.fall
        );
    }
}

/// Tells the other workers that backend `id` went up or down; false if one of them had
/// already said so (so it is logged once).
fn publish_health(core: &Core, id: BackendId, up: bool) -> bool {
    core.shared.workers() == 1 || core.shared.set_health(core.worker, id, up)
}

/// A backend joined slot `id`: it starts up, and reachable, for every worker.
pub fn joined(core: &Core, id: BackendId) {
    publish_health(core, id, true);
    if core.shared.workers() > 1 {
        core.shared.set_reachable(core.worker, id, true);
    }
}

/// Follows the health that other workers published (backends they took down, and, from
/// worker 0's checks, backends that came back), and whether lb can reach each backend,
/// which decides whether its POST copies wait (`fanout::follow_published`).
pub fn follow_published(conns: &mut Slab<Conn>, core: &mut Core) {
    if let Some(flags) = core.shared.health() {
        for id in 0..core.backends.len() {
            let up = flags.get(id).copied().unwrap_or(true);
            let b = &core.backends[id];
            if b.up != up && b.role != Role::Vacant {
                core.health.follow(&mut core.backends, id, up, core.now);
            }
        }
    }
    fanout::follow_published(conns, core);
}

/// One check in flight.
pub struct Probe {
    /// TLS for an `https://` backend, with a PROXY header first under `--send-proxy`,
    /// like any connection to that backend.
    pub io: Socket,
    pub backend: BackendId,
    /// The slot's generation when the check started: a result for a backend that has
    /// since left is dropped.
    generation: u32,
    started: Instant,
    pub serial: u32,
    pub timer: Option<TimerId>,
    state: ProbeState,
}

enum ProbeState {
    Connecting,
    /// Sending the check request; this many bytes went out.
    Sending(usize),
    /// Waiting for the status line.
    Reading,
    /// A gRPC health call in progress.
    Calling(Box<GrpcCall>),
}

/// A gRPC health call and the frames it queued that the socket has not taken yet.
struct GrpcCall {
    call: HealthCall,
    out: Vec<u8>,
    sent: usize,
}

/// What a check got.
enum Answer {
    /// TCP mode: the connect is the check.
    Connected,
    Status(u16),
    Grpc(Verdict),
}

/// Arms the next check of `id`, `after` from now.
pub fn schedule(core: &mut Core, id: BackendId, after: Duration) {
    let generation = core.backends[id].generation;
    core.timers
        .insert(core.now + after, Timer::Check { id, generation });
}

/// Starts a check of `id`; the result comes through `probe_ready` or `probe_timed_out`.
/// A check timer set for a backend that has left the slot since is dropped; a backend in
/// maintenance is not checked, but its timer goes on.
pub fn start(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId, generation: u32) {
    let b = &core.backends[id];
    if b.generation != generation || b.role == Role::Vacant {
        return;
    }
    // Nowhere to connect to until its name resolves: it stays down, unchecked.
    if !b.checked() || b.addr == UNRESOLVED {
        return schedule(core, id, core.health.checks[id].interval);
    }
    let addr = b.addr;
    let check = (generation, core.now);
    let connected = TcpStream::connect(addr)
        .and_then(|sock| backend_socket(core, sock, id, None))
        .and_then(|mut io| {
            let key = conns.vacant_key();
            core.register(&mut io.sock, key, 0).map(|()| io)
        });
    let io = match connected {
        Ok(io) => io,
        // lb's own shortage says nothing about the backend: no result, check again later.
        Err(e) if is_local_exhaustion(&e) => {
            core.exhausted("checking a backend", &e);
            return schedule(core, id, core.health.checks[id].interval);
        }
        Err(e) => {
            finish_check(conns, core, id, check, (Check::Unanswered, &e.to_string()));
            return;
        }
    };
    let entry = conns.vacant_entry();
    let key = entry.key();
    let serial = core.next_serial();
    let mut probe = Probe {
        io,
        backend: id,
        generation,
        started: check.1,
        serial,
        timer: None,
        state: ProbeState::Connecting,
    };
    let timeout = core.health.checks[id].timeout;
    core.arm(&mut probe.timer, timeout, key, serial);
    entry.insert(Conn::Probe(probe));
}

/// How a check ended: passed (a status its pool expects, by default any but a 5xx, or a
/// TCP connect), a failing status, or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Passed,
    Failed,
    Unanswered,
}

/// Records the result of the check of `id` (of that generation, started then) and
/// schedules the next one. Any answer, even a failing status, tells the fan-out that lb
/// can reach the backend; no answer, that it cannot (`fanout::checked`).
fn finish_check(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    id: BackendId,
    (generation, started): (u32, Instant),
    (result, why): (Check, &str),
) {
    if core.backends[id].generation != generation {
        return;
    }
    let times = (started, core.now);
    let passed = result == Check::Passed;
    let transition = core
        .health
        .checked(&mut core.backends, id, (passed, why), times);
    if let Some(t) = transition {
        publish_health(core, id, t == Transition::CameUp);
    }
    schedule(core, id, core.health.checks[id].interval);
    fanout::checked(conns, core, id, result != Check::Unanswered, why);
}

fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize, result: Check, why: &str) {
    if let Some(Conn::Probe(mut p)) = conns.try_remove(key) {
        core.disarm(&mut p.timer);
        p.io.release_buffers(&mut core.buffers);
        let _ = core.registry.deregister(&mut p.io.sock);
        finish_check(
            conns,
            core,
            p.backend,
            (p.generation, p.started),
            (result, why),
        );
    }
}

pub fn probe_timed_out(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Probe(p)) = conns.get_mut(key) {
        p.timer = None;
        let why = match p.state {
            ProbeState::Connecting => "connect timed out",
            _ => "no answer in time",
        };
        close(conns, core, key, Check::Unanswered, why);
    }
}

/// Steps check `key` after a readiness event.
pub fn probe_ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::Probe(p)) = conns.get_mut(key) else {
        return;
    };
    let checks = &core.health.checks[p.backend];
    let label = &core.backends[p.backend].label;
    let host = label.strip_prefix("https://").unwrap_or(label);
    match step(p, (checks, host), core.now, &mut core.buffers) {
        Ok(None) => {}
        Ok(Some(Answer::Connected | Answer::Grpc(Ok(())))) => {
            close(conns, core, key, Check::Passed, "")
        }
        Ok(Some(Answer::Status(status))) if checks.expect.contains(status) => {
            close(conns, core, key, Check::Passed, "")
        }
        Ok(Some(Answer::Status(status))) => {
            let why = format!("status {status}");
            close(conns, core, key, Check::Failed, &why);
        }
        Ok(Some(Answer::Grpc(Err(why)))) => close(conns, core, key, Check::Failed, &why),
        Err(e) => {
            let why = e.to_string();
            close(conns, core, key, Check::Unanswered, &why);
        }
    }
}

/// Advances a check of the backend at `host` as far as the socket allows; `Ok(Some(_))`
/// when it is decided.
fn step(
    p: &mut Probe,
    (checks, host): (&Checks, &str),
    now: Instant,
    pool: &mut BufferPool,
) -> io::Result<Option<Answer>> {
    let request = checks.request();
    loop {
        match &mut p.state {
            ProbeState::Connecting => {
                if !(p.io.writable || p.io.readable) {
                    return Ok(None);
                }
                if let Some(e) = p.io.sock.take_error()? {
                    return Err(e);
                }
                match p.io.sock.peer_addr() {
                    Ok(_) => match &checks.grpc {
                        Some(service) => {
                            let call =
                                HealthCall::new(host, service, now).map_err(io::Error::other)?;
                            p.state = ProbeState::Calling(Box::new(GrpcCall {
                                call,
                                out: Vec::new(),
                                sent: 0,
                            }));
                        }
                        None if request.is_empty() => return Ok(Some(Answer::Connected)),
                        None => p.state = ProbeState::Sending(0),
                    },
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            ProbeState::Sending(sent) => match p.io.send(&request[*sent..]) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    *sent += n;
                    if *sent == request.len() {
                        p.state = ProbeState::Reading;
                    }
                }
                Err(_) => return Err(lost()),
            },
            ProbeState::Reading => {
                if p.io.input_len() >= 12 {
                    return parse_status(&p.io.input_data()[..12]).map(|s| Some(Answer::Status(s)));
                }
                if !read(&mut p.io, pool)? {
                    return Ok(None);
                }
            }
            ProbeState::Calling(g) => {
                if g.sent == g.out.len() {
                    g.out.clear();
                    g.sent = 0;
                    g.call.take_output(&mut g.out);
                }
                while let Some(rest) = g.out.get(g.sent..).filter(|r| !r.is_empty()) {
                    match p.io.send(rest) {
                        Ok(0) => break,
                        Ok(n) => g.sent += n,
                        Err(_) => return Err(lost()),
                    }
                }
                if !read(&mut p.io, pool)? {
                    return Ok(None);
                }
                let (used, verdict) = g.call.receive(p.io.input_data(), now);
                if let Some(input) = p.io.input.as_mut() {
                    input.consume(used);
                }
                if let Some(verdict) = verdict {
                    return Ok(Some(Answer::Grpc(verdict)));
                }
            }
        }
    }
}

fn lost() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection lost")
}

/// Reads once more of the answer: false when nothing is there yet.
fn read(io: &mut Socket, pool: &mut BufferPool) -> io::Result<bool> {
    match io.fill(pool) {
        Filled::Got => Ok(true),
        Filled::Nothing => Ok(false),
        Filled::Eof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed without answering",
        )),
        Filled::Failed => Err(lost()),
    }
}

/// The status code of "HTTP/1.x NNN".
fn parse_status(line: &[u8]) -> io::Result<u16> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP status line");
    if !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return Err(bad());
    }
    std::str::from_utf8(&line[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK").unwrap(), 200);
        assert_eq!(parse_status(b"HTTP/1.0 503 X").unwrap(), 503);
        assert!(parse_status(b"SSH-2.0-Open").is_err());
        assert!(parse_status(b"HTTP/1.1 2x0 O").is_err());
    }
}
