//! An HTTP/2 connection's deadlines, on its one timer: idle (which frames that open no
//! stream do not reset), SETTINGS unacknowledged, windows held shut (which 1-byte
//! WINDOW_UPDATEs do not reset), and frames the client does not read.

use std::time::Instant;

use slab::Slab;

use super::{H2Conn, close, close_client_side, drive, h2_mut};
use crate::event_loop::{Conn, Core};
use crate::h2::error::ErrorCode;

/// The earliest of the connection's deadlines: idle, SETTINGS unacknowledged, a stream
/// or the connection stalled by the client's windows, frames the client does not read.
fn deadline(h: &H2Conn, core: &Core) -> Option<Instant> {
    let wait = core.cfg.client_timeout;
    [
        h.idle_since.map(|t| t + core.cfg.idle_timeout),
        h.codec.settings_unacked_since().map(|t| t + wait),
        h.codec.oldest_stall().map(|(_, t)| t + wait),
        h.blocked_since.map(|t| t + wait),
        h.block_since.map(|t| t + wait),
    ]
    .into_iter()
    .flatten()
    .min()
}

pub(super) fn arm_timer(h: &mut H2Conn, core: &mut Core, key: usize) {
    let next = deadline(h, core);
    core.arm_at((&mut h.timer, &mut h.timer_at), next, key, h.serial);
}

/// The connection's timer: whichever deadline passed ends what it guards.
pub fn timer_fired(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    h.timer = None;
    h.timer_at = None;
    let now = core.now;
    let wait = core.cfg.client_timeout;
    let past = |t: Option<Instant>, after| t.is_some_and(|t| t + after <= now);
    if past(h.blocked_since, wait) {
        // As an HTTP/1.1 answer held for a slow reader: a window's quota keeps it, a
        // trickle does not.
        if h.written < core.window_quota() {
            core.too_slow(h.peer, "reading its HTTP/2 frames");
            return close(conns, core, key);
        }
        h.blocked_since = Some(now);
        h.written = 0;
    }
    if past(h.codec.settings_unacked_since(), wait) {
        h.codec.abort(ErrorCode::SETTINGS_TIMEOUT);
    } else if past(h.block_since, wait) {
        // A request head that never ends, as a partial HTTP/1.1 head gets 408.
        core.too_slow(h.peer, "sending an HTTP/2 header block");
        h.codec.abort(ErrorCode::PROTOCOL_ERROR);
    } else if let Some((id, since)) = h.codec.oldest_stall()
        && since + wait <= now
    {
        if id == 0 {
            core.too_slow(h.peer, "opening its HTTP/2 connection window");
            h.codec.abort(ErrorCode::ENHANCE_YOUR_CALM);
        } else if let Some(at) = h.streams.iter().position(|s| s.id == id) {
            core.too_slow(h.peer, "opening an HTTP/2 stream's window");
            h.codec.send_reset(id, ErrorCode::CANCEL);
            let stream = h.streams.swap_remove(at);
            stream.abandon();
            close_client_side(conns, core, stream.client);
        }
    } else if past(h.idle_since, core.cfg.idle_timeout) {
        h.codec.go_away(false);
    }
    drive(conns, core, key);
}
