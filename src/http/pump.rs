//! The pump: moves one exchange's bytes both ways, client to backend and back, until
//! nothing more can move now, and says how the exchange stands.

use std::time::{Duration, Instant};

use super::body::Framing;
use super::client::ClientConn;
use super::exchange::{Exchange, ResponsePhase};
use super::head;
use super::upstream::{UpstreamConn, UpstreamState, arm_server_timer};
use crate::conn::{Filled, PeerGone};
use crate::event_loop::{Core, STEP_BUDGET};
use crate::held_sends::Destination;
use crate::probe;

/// What one pump of an exchange ended with.
pub(super) enum Pump {
    Wait,
    /// Moved its share for this turn with more to move: step it again after the others.
    Yield,
    Done {
        reusable: bool,
        close_client: bool,
    },
    /// The backend failed before it answered anything.
    UpstreamFailed(&'static str),
    /// The backend failed or misbehaved after the response began, or sent garbage.
    BadResponse(&'static str),
    ClientGone,
    BadRequest(&'static str),
    /// A 101 went to the client: the connection is the new protocol's now.
    Upgraded,
}

/// Moves bytes both ways until nothing more can move now. While the loop holds sends,
/// only reads and parsing happen, and client `key` is noted to be stepped again.
pub(super) fn pump(
    c: &mut ClientConn,
    ex: &mut Exchange,
    u: &mut UpstreamConn,
    core: &mut Core,
    key: usize,
) -> Pump {
    let connected = matches!(u.state, UpstreamState::Busy(_));
    let send = !core.sends.holding();
    let mut moved = 0;
    let mut moved_any = false;
    loop {
        let mut progress = false;

        if !ex.request_body.is_done() {
            match c.io.fill(&mut core.buffers) {
                Filled::Got => progress = true,
                Filled::Failed => return Pump::ClientGone,
                // A half-close: what is buffered may still complete the body.
                Filled::Eof | Filled::Nothing => {}
            }
            if c.io.input_len() > 0 {
                let out = u.io.output.get_or_insert_with(|| core.buffers.get());
                let Some(input) = c.io.input.as_mut() else {
                    return Pump::ClientGone;
                };
                let room = out.room().min(input.len());
                let forwarded = ex.request_body.forward(&input.data()[..room], false, |b| {
                    out.push(b);
                });
                let used = match forwarded {
                    Ok(used) => used,
                    Err(e) => return Pump::BadRequest(e.0),
                };
                if used > 0 {
                    input.consume(used);
                    ex.body_window += used as u64;
                    core.metrics.backends[ex.backend].bytes_sent += used as u64;
                    moved += used as u64;
                    progress = true;
                }
                core.buffers.release_if_empty(&mut c.io.input);
            }
            if c.io.read_closed && c.io.input_len() == 0 && !ex.request_body.is_done() {
                return Pump::ClientGone;
            }
        }

        if send && connected && u.io.output_len() > 0 {
            match u.io.flush(&mut core.buffers) {
                Ok(wrote) => progress |= wrote,
                Err(PeerGone) => {
                    return if ex.responded {
                        Pump::BadResponse("connection lost")
                    } else {
                        Pump::UpstreamFailed("connection lost while sending")
                    };
                }
            }
        }

        // After a 101 the backend's bytes are the new protocol's: the tunnel takes them.
        let response_open = matches!(
            ex.response,
            ResponsePhase::Head | ResponsePhase::Body { .. }
        );
        if connected && response_open {
            match u.io.fill(&mut core.buffers) {
                Filled::Got => progress = true,
                Filled::Nothing => {}
                // The end of a read-until-close body; what is buffered still goes out.
                Filled::Eof if until_close(&ex.response) => progress = true,
                Filled::Failed | Filled::Eof => {
                    if ex.responded {
                        return Pump::BadResponse("connection closed mid-response");
                    }
                    if u.io.input_len() == 0 {
                        return Pump::UpstreamFailed("connection closed before answering");
                    }
                }
            }
        }

        if ex.response == ResponsePhase::Head && u.io.input_len() > 0 && c.io.output_len() == 0 {
            let offered = ex
                .upgrade_offer
                .and_then(|(start, end)| c.io.input.as_ref()?.data().get(start..end))
                .unwrap_or_default();
            let out = c.io.output.get_or_insert_with(|| core.buffers.get());
            match head::parse_response(
                u.io.input_data(),
                ex.client.unless_draining(core.draining),
                offered,
                (
                    &ex.request_id,
                    ex.rules.as_ref().and_then(|r| r.response_headers()),
                ),
                out,
            ) {
                Ok(None) => {
                    if u.io.read_closed {
                        return Pump::BadResponse("connection closed mid-head");
                    }
                }
                Err(why) => return Pump::BadResponse(why),
                Ok(Some(resp)) => {
                    progress = true;
                    if let Some(buf) = u.io.input.as_mut() {
                        buf.consume(resp.len);
                    }
                    core.metrics.backends[ex.backend].bytes_received += resp.len as u64;
                    ex.log.bytes += resp.len as u64;
                    if resp.is_interim() {
                        if ex.client.version == 0 {
                            out.clear();
                        }
                    } else {
                        ex.responded = true;
                        ex.log.status = Some(resp.status);
                        if let (Some(len), Some(buf)) =
                            (ex.replayable_head.take(), c.io.input.as_mut())
                        {
                            buf.consume(len);
                        }
                        let elapsed = core.now.saturating_duration_since(ex.started);
                        core.metrics
                            .request(ex.backend, ex.client.method, resp.status, elapsed);
                        let passed = resp.status < 500;
                        probe::observe_result(core, ex.backend, passed, "5xx answer");
                        core.backends[ex.backend].record_response_time(elapsed.as_micros() as u64);
                        ex.response = if resp.is_switch() {
                            ResponsePhase::Switching
                        } else if resp.framing.is_done() {
                            ResponsePhase::Done {
                                reusable: resp.reusable,
                                close_client: resp.close_client,
                            }
                        } else {
                            ResponsePhase::Body {
                                framing: resp.framing,
                                dechunk: resp.dechunk,
                                reusable: resp.reusable,
                                close_client: resp.close_client,
                            }
                        };
                    }
                }
            }
        }

        if let ResponsePhase::Body {
            mut framing,
            dechunk,
            reusable,
            close_client,
        } = ex.response
            && u.io.input_len() > 0
        {
            let out = c.io.output.get_or_insert_with(|| core.buffers.get());
            let Some(input) = u.io.input.as_mut() else {
                return Pump::BadResponse("lost input");
            };
            let room = out.room().min(input.len());
            let used = match framing.forward(&input.data()[..room], dechunk, |b| {
                out.push(b);
            }) {
                Ok(used) => used,
                Err(e) => return Pump::BadResponse(e.0),
            };
            input.consume(used);
            core.metrics.backends[ex.backend].bytes_received += used as u64;
            ex.log.bytes += used as u64;
            moved += used as u64;
            progress |= used > 0;
            core.buffers.release_if_empty(&mut u.io.input);
            ex.response = if framing.is_done() {
                ResponsePhase::Done {
                    reusable,
                    close_client,
                }
            } else {
                ResponsePhase::Body {
                    framing,
                    dechunk,
                    reusable,
                    close_client,
                }
            };
        }

        if let ResponsePhase::Body { close_client, .. } = ex.response
            && until_close(&ex.response)
            && u.io.read_closed
            && u.io.input_len() == 0
        {
            ex.response = ResponsePhase::Done {
                reusable: false,
                close_client,
            };
            progress = true;
        }

        if send {
            match c.io.flush(&mut core.buffers) {
                Ok(wrote) => progress |= wrote,
                Err(PeerGone) => return Pump::ClientGone,
            }
        }

        if let ResponsePhase::Done {
            reusable,
            close_client,
        } = ex.response
            && c.io.output_len() == 0
        {
            return Pump::Done {
                reusable,
                close_client,
            };
        }
        if ex.response == ResponsePhase::Switching && c.io.output_len() == 0 {
            return Pump::Upgraded;
        }
        moved_any |= progress;
        if !progress {
            if !send {
                if connected && u.io.output_len() > 0 {
                    core.sends.later(Destination::Backend(ex.backend), key);
                } else if c.io.output_len() > 0 {
                    core.sends.later(Destination::Client, key);
                }
            }
            time_the_stalled_side(c, ex, u, core, key, moved_any, send);
            return Pump::Wait;
        }
        if moved >= STEP_BUDGET {
            time_the_stalled_side(c, ex, u, core, key, moved_any, send);
            return Pump::Yield;
        }
    }
}

/// Runs the timer of whichever side the exchange waits for, and only that side's: the
/// backend is timed (--server-timeout, 504, counted against its health) only while it
/// owes lb something, and a client that stops sending its body or taking its response
/// is timed by --client-timeout (408) and never blamed on the backend. The backend's
/// timer and a client's taking its response measure inactivity: bytes that flow push
/// them back, once per half-period, so that a busy exchange does not churn the wheel. A
/// gRPC call's deadline is absolute: it runs whichever side lb waits on
/// (`time_the_backend`). A body being sent does not push the client's timer back: each
/// window must bring its quota (`Exchange::body_window_ended`), so that a trickle cannot
/// hold the exchange.
/// Output held back for the end of the turn is no one's stall: the pump that sends it
/// decides.
fn time_the_stalled_side(
    c: &mut ClientConn,
    ex: &mut Exchange,
    u: &mut UpstreamConn,
    core: &mut Core,
    key: usize,
    moved: bool,
    sent: bool,
) {
    if !sent && (c.io.output_len() > 0 || u.io.output_len() > 0) {
        return;
    }
    let response_open = !matches!(ex.response, ResponsePhase::Done { .. });
    let backend_owes = u.io.output_len() > 0
        || (ex.request_body.is_done() && response_open && c.io.output_len() == 0);
    let body_owed = !ex.request_body.is_done() && u.io.output_len() == 0;
    let client_owes = c.io.output_len() > 0 || body_owed;
    // While connecting, the upstream timer is the connect timeout: left alone.
    if matches!(u.state, UpstreamState::Busy(_)) {
        time_the_backend(ex, u, core, moved, (backend_owes, response_open));
    }
    let due = c.timer.is_none()
        || (moved
            && !body_owed
            && half_passed(core.now, ex.client_armed_at, core.cfg.client_timeout));
    if !client_owes {
        core.disarm(&mut c.timer);
    } else if due {
        ex.client_armed_at = core.now;
        ex.body_window = 0;
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    }
}

/// The backend's timer: its server timeout while it owes lb something, pushed back as
/// bytes flow and cut short by a gRPC call's deadline; while lb waits on the client, that
/// deadline alone, which holds all the same (`ex.deadline_timer`); else none.
fn time_the_backend(
    ex: &mut Exchange,
    u: &mut UpstreamConn,
    core: &mut Core,
    moved: bool,
    (backend_owes, response_open): (bool, bool),
) {
    let waits_on_client = !backend_owes && response_open;
    let deadline_only = u.timer.is_some() && u.timer == ex.deadline_timer;
    match ex.deadline.filter(|_| waits_on_client) {
        Some(at) if !deadline_only => {
            let left = at.saturating_duration_since(core.now);
            core.arm(&mut u.timer, left, ex.upstream, u.serial);
            ex.deadline_timer = u.timer;
        }
        Some(_) => {}
        None if !backend_owes => core.disarm(&mut u.timer),
        None => {
            let due = u.timer.is_none()
                || deadline_only
                || (moved && half_passed(core.now, u.armed_at, u.server_timeout));
            if due {
                arm_server_timer(core, u, ex.upstream, ex.deadline);
            }
        }
    }
}

fn half_passed(now: Instant, armed_at: Instant, timeout: Duration) -> bool {
    now.saturating_duration_since(armed_at) > timeout / 2
}

fn until_close(phase: &ResponsePhase) -> bool {
    matches!(
        phase,
        ResponsePhase::Body {
            framing: Framing::UntilClose,
            ..
        }
    )
}
