//! A backend HTTP/2 connection's deadlines, on its one timer: the connect and the
//! server's SETTINGS (the pool's connect timeout), frames or a window the server holds
//! shut (its server timeout), and idle without streams (`idle_timeout`: no PINGs keep it).
//! An exchange's wait for its response is its own `UpstreamConn`'s server timeout.

use std::time::Instant;

use slab::Slab;

use super::{H2Upstream, drive, fail, h2_mut, wake_upstream};
use crate::event_loop::{Conn, Core};
use crate::h2::error::ErrorCode;
use crate::metrics::Failure;

fn deadline(h: &H2Upstream, core: &Core) -> Option<Instant> {
    [
        h.connecting_since.map(|t| t + h.connect_timeout),
        h.codec
            .settings_unacked_since()
            .map(|t| t + h.connect_timeout),
        h.blocked_since.map(|t| t + h.server_timeout),
        h.codec.oldest_stall().map(|(_, t)| t + h.server_timeout),
        h.idle_since.map(|t| t + core.cfg.idle_timeout),
    ]
    .into_iter()
    .flatten()
    .min()
}

pub(super) fn arm_timer(h: &mut H2Upstream, core: &mut Core, key: usize) {
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
    let past = |t: Option<Instant>, after| t.is_some_and(|t| t + after <= now);
    if past(h.connecting_since, h.connect_timeout) {
        return fail(conns, core, key, Failure::Timeout, "connect timed out");
    }
    if past(h.codec.settings_unacked_since(), h.connect_timeout) {
        h.codec.abort(ErrorCode::SETTINGS_TIMEOUT);
        return fail(
            conns,
            core,
            key,
            Failure::Timeout,
            "no SETTINGS ack in time",
        );
    }
    if past(h.blocked_since, h.server_timeout) {
        return fail(conns, core, key, Failure::Timeout, "frames left unread");
    }
    if let Some((id, since)) = h.codec.oldest_stall()
        && since + h.server_timeout <= now
    {
        if id == 0 {
            return fail(conns, core, key, Failure::Timeout, "connection window shut");
        }
        h.codec.send_reset(id, ErrorCode::CANCEL);
        if let Some(at) = h.streams.iter().position(|s| s.id == Some(id)) {
            let s = h.streams.swap_remove(at);
            s.break_off();
            wake_upstream(conns, core, &s);
        }
    } else if past(h.idle_since, core.cfg.idle_timeout) {
        h.codec.go_away();
    }
    drive(conns, core, key);
}
