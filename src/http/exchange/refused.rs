//! A request an HTTP/2 backend refused before answering (RST_STREAM REFUSED_STREAM, or a
//! GOAWAY whose last stream is below it): the server processed none of it, so whatever
//! its method it goes elsewhere as after a refused connect (RFC 9113 §8.7), within the
//! same --retries, if lb still holds all of it that went out (`conn::replay`). A request
//! whose streamed body went out beyond what is kept cannot be sent again: it gets the
//! answer of any other failure before a response.
//!
//! With no other backend left to pick, the refusing backend takes it once more, on
//! another stream (a backend restarting gracefully sends GOAWAY, and a new connection to
//! the same address is served by its new process), each time counted against --retries as
//! another backend would be: a backend that refuses every stream gets --retries + 1 tries,
//! then the 502 of any request it could not be given.
//!
//! A refusal is load shedding (a server at its stream limit, or restarting), not a fault:
//! it is not fed to passive health, neither as a failure, which would take down a backend
//! that is only busy, nor as a success, which would hide the failures of one that is not.

use slab::Slab;

use super::{Exchange, retry};
use crate::backend::BackendId;
use crate::buffer::Buffer;
use crate::event_loop::{Conn, Core};
use crate::http::upstream::UpstreamConn;
use crate::pool::PoolId;
use crate::strategy::{Members, PickContext};

/// Sends `forward`, the whole request of `ex` that its backend refused, to another
/// backend, or to the same one if no other is left (its refusing stream is closed).
/// A refusal by GOAWAY leaves the connection draining, and a draining connection is given
/// no new stream (`h2_upstream::open`), so the request goes on another or a new one. A
/// REFUSED_STREAM on a live connection may be sent on that same connection again: the
/// server may have room by then, and --retries bounds the tries.
pub(super) fn retry_refused(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    ex: Box<Exchange>,
    forward: Buffer,
) {
    let again = Some(ex.backend);
    retry(conns, core, key, ex, forward, "stream refused", again);
}

/// `backend`, if its pool would still pick it (a member, and up).
pub(super) fn pick_again(
    core: &mut Core,
    pool: PoolId,
    ctx: &PickContext,
    backend: BackendId,
) -> Option<BackendId> {
    let p = &mut core.pools[pool];
    let members = Members::of(&core.backends, &p.members);
    p.strategy.pick(members, ctx, &|id| id == backend)
}

/// The request of `u`, a stream its server refused, whole and ready to go elsewhere: what
/// the stream sent and held, then what `u` had not yet handed it.
pub(super) fn refused_request(core: &mut Core, u: &UpstreamConn) -> Option<Buffer> {
    if !u.io.sock.refused() {
        return None;
    }
    let mut forward = core.buffers.get();
    let waiting = u.io.output.as_ref().map(|b| b.data()).unwrap_or_default();
    if u.io.sock.refused_request(&mut forward) && forward.push(waiting) {
        return Some(forward);
    }
    core.buffers.put(forward);
    None
}
