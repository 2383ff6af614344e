//! How an exchange ends: what each pump's outcome leads to (done, a replay, a 502 or
//! 504 of ours, a gRPC call's DEADLINE_EXCEEDED), a backend that times out or a gRPC
//! call that runs past its deadline, and a client that stalls, which is never the
//! backend's fault.

use std::fmt::Write as _;

use log::{debug, warn};
use slab::Slab;

use super::super::client::{
    ClientConn, ClientState, Step, answer, become_idle, client_mut, close_client, drive,
};
use super::super::head::RequestId;
use super::super::pump::{Pump, pump};
use super::super::upstream::{close_upstream, release_upstream};
use super::refused::{refused_request, retry_refused};
use super::{Exchange, Replay, replay};
use crate::backend::BackendId;
use crate::event_loop::{Conn, Core};
use crate::grpc::DEADLINE_EXCEEDED;
use crate::http::head::Method;
use crate::metrics::Failure;
use crate::probe::observe;

/// Ends an exchange that produced no response with an error of our own.
pub(in crate::http) fn fail_exchange(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    ex: Box<Exchange>,
    status: u16,
    text: &str,
) {
    let took = core.now.saturating_duration_since(ex.started);
    // A response under way was counted when its head came (`pump`), as the status its
    // client got, which the access log says too; a backend's fault in the break is
    // counted among its failures. Counting it again here counted one request twice.
    if !ex.responded {
        match ex.tried.count() {
            0 => core.metrics.local_response(status),
            _ => core
                .metrics
                .request(ex.backend, ex.client.method, status, took),
        }
    }
    let Some(c) = client_mut(conns, key) else {
        return core.exchanges.put(ex);
    };
    let backend = (ex.tried.count() > 0).then_some(ex.backend);
    core.answered(
        c.peer,
        took,
        backend,
        ex.log.answered(Some(status), &ex.request_id),
    );
    if ex.responded {
        // What came before the break still goes out (its sends may have been held this
        // turn); the close that follows tells the client the response was cut short.
        c.state = ClientState::Answering { close: true };
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
        return core.exchanges.put(ex);
    }
    let close = !ex.request_body.is_done() || !ex.client.keep_alive;
    if let (Some(len), Some(buf)) = (ex.replayable_head, c.io.input.as_mut()) {
        buf.consume(len);
    }
    if let Some(out) = c.io.output.as_mut() {
        out.clear();
    }
    if status == 504 && ex.grpc {
        answer_deadline_exceeded(c, core, key, &ex.request_id, close);
    } else {
        answer(c, core, key, status, text, Some(&ex.request_id), close);
    }
    core.exchanges.put(ex);
}

/// The server timer of client `key`'s exchange fired, on backend connection `ukey`: its
/// backend was silent for its server timeout, or the gRPC call's deadline passed. Before
/// the answer starts, the client gets 504 (DEADLINE_EXCEEDED for a gRPC call). Once it
/// has started, a call past its deadline is ended as a gRPC proxy ends one: an HTTP/2
/// stream reset with CANCEL (which a gRPC client reads as DEADLINE_EXCEEDED once its
/// deadline has passed), an HTTP/1.1 connection closed. The backend is blamed for a
/// silence, or for a call it had whole and had not begun to answer by its deadline; not
/// for a client still sending, nor for a streaming call that answered until its deadline.
/// Either way the backend's connection, or stream, is closed, never reused mid-response.
pub(in crate::http) fn server_timed_out(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    (ukey, backend): (usize, BackendId),
) {
    let blame = |core: &mut Core| {
        warn!("backend {} timed out", core.backends[backend].label);
        observe(core, backend, Some(Failure::Timeout), "response timed out");
    };
    let Some(c) = client_mut(conns, key) else {
        blame(core);
        return close_upstream(conns, core, ukey);
    };
    let ClientState::Proxying(ex) = std::mem::replace(&mut c.state, ClientState::Idle) else {
        return blame(core);
    };
    let past_deadline = ex.deadline.is_some_and(|d| d <= core.now);
    if past_deadline && ex.responded {
        debug!("request {:?}: its gRPC deadline passed", ex.request_id);
        c.io.sock.cancel();
    } else if !past_deadline || ex.request_body.is_done() {
        blame(core);
    }
    core.backends[backend].request_done();
    close_upstream(conns, core, ukey);
    let text = "the backend did not answer in time";
    fail_exchange(conns, core, key, ex, 504, text);
    drive(conns, core, key);
}

/// A gRPC call that ran out of time at lb gets what a gRPC client reads as
/// DEADLINE_EXCEEDED: a trailers-only response, HTTP 200 with the status in its headers
/// and no body (a 504 would read as UNAVAILABLE).
fn answer_deadline_exceeded(
    c: &mut ClientConn,
    core: &mut Core,
    key: usize,
    id: &RequestId,
    close: bool,
) {
    let close = close || core.draining;
    let out = c.io.output.get_or_insert_with(|| core.buffers.get());
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: {DEADLINE_EXCEEDED}\r\n\
         Grpc-Message: lb: the backend did not answer before the deadline\r\n\
         Content-Length: 0\r\nX-Request-Id: {}\r\n",
        id.as_str()
    );
    if close {
        let _ = out.write_str("Connection: close\r\n");
    }
    let _ = out.write_str("\r\n");
    c.state = ClientState::Answering { close };
    core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
}

/// The client stopped sending its body, or taking its response, for --client-timeout:
/// its own fault, so the backend connection is closed without blame, and the client
/// gets 408 if nothing was answered yet, or a cut-short response and a close.
pub(in crate::http) fn client_stalled(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(c) = client_mut(conns, key) else {
        return;
    };
    let ClientState::Proxying(ex) = std::mem::replace(&mut c.state, ClientState::Idle) else {
        return;
    };
    debug!("request {:?}: the client stalled", ex.request_id);
    let took = core.now.saturating_duration_since(ex.started);
    let responded = ex.responded;
    // Logged with the backend's status if its answer had begun, else with our 408.
    let line = ex.log.answered((!responded).then_some(408), &ex.request_id);
    core.answered(c.peer, took, Some(ex.backend), line);
    if !responded {
        core.metrics.local_response(408);
        if let Some(out) = c.io.output.as_mut() {
            out.clear();
        }
        let text = "timed out waiting for the client";
        answer(c, core, key, 408, text, Some(&ex.request_id), true);
    }
    let (backend, upstream) = (ex.backend, ex.upstream);
    core.exchanges.put(ex);
    core.backends[backend].request_done();
    close_upstream(conns, core, upstream);
    if responded {
        // Its answer had begun: nothing more can be said, and it was not reading anyway.
        close_client(conns, core, key);
    }
}

pub(in crate::http) fn proxy_step(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Box<Exchange>,
) -> Step {
    let ukey = ex.upstream;
    let Some((Conn::Client(c), Conn::Upstream(u))) = conns.get2_mut(key, ukey) else {
        return Step::Close;
    };
    let result = pump(c, &mut ex, u, core, key);
    match result {
        Pump::Wait => {
            c.state = ClientState::Proxying(ex);
            Step::Wait
        }
        Pump::Yield => {
            c.state = ClientState::Proxying(ex);
            core.revisit.push(key);
            Step::Wait
        }
        Pump::Done {
            reusable,
            close_client,
        } => {
            let backend = ex.backend;
            let took = core.now.saturating_duration_since(ex.started);
            let answer = ex.log.answered(None, &ex.request_id);
            core.answered(c.peer, took, Some(backend), answer);
            core.backends[backend].request_done();
            let body_done = ex.request_body.is_done();
            core.exchanges.put(ex);
            let reusable = reusable && body_done && u.io.input_len() == 0;
            release_upstream(conns, core, ukey, reusable);
            let Some(c) = client_mut(conns, key) else {
                return Step::Close;
            };
            // A half-closed client is closed once the requests it sent are all answered.
            if close_client || !body_done || (c.io.read_closed && c.io.input_len() == 0) {
                return Step::Close;
            }
            become_idle(c, core, key);
            Step::Again
        }
        Pump::UpstreamFailed(why) => {
            let backend = ex.backend;
            core.backends[backend].request_done();
            // Refused by an h2 backend before answering, with all of it still held: sent
            // elsewhere as after a refused connect, or to the same backend if no other is
            // left, and not blamed (exchange/refused.rs).
            if let Some(forward) = refused_request(core, u) {
                close_upstream(conns, core, ukey);
                retry_refused(conns, core, key, ex, forward);
                return Step::Again;
            }
            let refused = u.io.sock.refused();
            let replayable = ex.replayable_head.is_some();
            let stale = u.reused && replayable;
            close_upstream(conns, core, ukey);
            if stale {
                // A pooled connection the backend had closed: send the request again, fresh.
                return replay(conns, core, key, ex, Replay::SameBackend);
            }
            warn!(
                "backend {} failed request {:?}: {why}",
                core.backends[backend].label, ex.request_id
            );
            // A refusal lb could not replay (its body went out beyond what lb keeps) is
            // answered as a failure, but is still no fault of the backend's.
            if !refused {
                observe(core, backend, Some(Failure::Reset), why);
            }
            if replayable && matches!(ex.client.method, Method::Get | Method::Head) {
                // Nothing came back, and a GET or HEAD may be sent twice (RFC 9110 9.2.2).
                return replay(conns, core, key, ex, Replay::Elsewhere);
            }
            fail_exchange(conns, core, key, ex, 502, "the backend failed to answer");
            Step::Again
        }
        Pump::BadResponse(why) => {
            warn!(
                "backend {} broke its response to {:?}: {why}",
                core.backends[ex.backend].label, ex.request_id
            );
            let backend = ex.backend;
            observe(core, backend, Some(Failure::BadResponse), why);
            core.backends[backend].request_done();
            close_upstream(conns, core, ukey);
            fail_exchange(
                conns,
                core,
                key,
                ex,
                502,
                "the backend sent a broken response",
            );
            Step::Again
        }
        Pump::BadRequest(why) => {
            debug!("request {:?}: {why}", ex.request_id);
            let backend = ex.backend;
            core.backends[backend].request_done();
            close_upstream(conns, core, ukey);
            fail_exchange(conns, core, key, ex, 400, why);
            Step::Again
        }
        Pump::ClientGone => {
            c.state = ClientState::Proxying(ex);
            Step::Close
        }
        Pump::Upgraded => {
            let took = core.now.saturating_duration_since(ex.started);
            let answer = ex.log.answered(None, &ex.request_id);
            core.answered(c.peer, took, Some(ex.backend), answer);
            core.exchanges.put(ex);
            // The backend counts the tunnel as in flight until it closes.
            crate::tcp::tunnel(conns, core, key, ukey);
            Step::Wait
        }
    }
}
