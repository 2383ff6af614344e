//! A request an HTTP/2 backend refused before answering (RST_STREAM REFUSED_STREAM, or a
//! GOAWAY whose last stream is below it): the server processed none of it, so whatever
//! its method it goes elsewhere as after a refused connect (RFC 9113 §8.7), within the
//! same --retries, if lb still holds all of it that went out (`conn::replay`). A request
//! whose streamed body went out beyond what is kept cannot be sent again: it gets the
//! answer of any other failure before a response.
//!
//! A refusal is load shedding (a server at its stream limit, or restarting), not a fault:
//! it is not fed to passive health, neither as a failure, which would take down a backend
//! that is only busy, nor as a success, which would hide the failures of one that is not.

use crate::buffer::Buffer;
use crate::event_loop::Core;
use crate::http::upstream::UpstreamConn;

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
