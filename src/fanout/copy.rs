//! One copy's conversation with its backend: the shared request goes out, the answer
//! comes in, and what the waiting client may get of it is decided: the delivered answer
//! streams to it from this connection, a refusal is kept whole in case nothing can be
//! delivered.

use std::sync::Arc;

use super::outcome::{Answer, Outcome, Rules};
use super::{Job, Phase};
use crate::budget::HeldBytes;
use crate::buffer::{Buffer, BufferPool};
use crate::conn::Filled;
use crate::http::body::Framing;
use crate::http::head;
use crate::http::upstream::UpstreamConn;
use crate::shared::Shared;

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) outcome: Outcome,
    pub(super) framing: Framing,
    pub(super) dechunk: bool,
    pub(super) reusable: bool,
    pub(super) capture: Capture,
    pub(super) close_client: bool,
}

/// What becomes of the answer for the client.
pub(super) enum Capture {
    /// Nobody waits for this answer.
    Skip,
    /// A refusal, kept whole (head as forwarded, body as received) in case nothing can be
    /// delivered; counted against --max-buffered-bytes.
    Keep(HeldBytes),
    /// A refusal larger than --fanout-max-response or than the room left under
    /// --max-buffered-bytes: only its status is kept.
    Dropped,
    /// The delivered answer, which streams to its client from backend connection
    /// `upstream`: its head as forwarded; the body is still in the connection.
    Stream { head: Buffer, upstream: usize },
}

pub(super) enum CopyStep {
    Wait,
    /// A delivered answer's head came before the job's record is durable: the answer
    /// waits in the connection, unread, until the record is (`Job::parked`).
    Parked,
    /// A whole answer came, or the head of one that streams to its client.
    Answered(Response),
    Failed(Answer, &'static str),
}

/// Moves the request out (unless sends are held) and the answer in, as far as the
/// socket allows. `ukey` is `u`'s slab key.
pub(super) fn step_copy(
    (u, ukey): (&mut UpstreamConn, usize),
    j: &mut Job,
    copy: usize,
    (buffers, shared): (&mut BufferPool, &Arc<Shared>),
    send: bool,
    rules: &Rules,
) -> CopyStep {
    // Another copy's delivered answer is parked for the client: this one is not needed.
    let first = j.parked.is_none_or(|(parked, _)| parked == copy);
    let waiting = j.client.is_some() && !j.answered && first;
    let want_refusal = waiting && j.refusal.is_none();
    let durable = j.durable;
    let Phase::InFlight { sent, response, .. } = &mut j.copies[copy].phase else {
        return CopyStep::Failed(Answer::Reset, "copy is not in flight");
    };
    loop {
        let mut progress = false;
        while send && *sent < j.request.len() {
            match u.io.send(&j.request[*sent..]) {
                Ok(0) => break,
                Ok(n) => {
                    *sent += n;
                    progress = true;
                }
                Err(_) => {
                    return CopyStep::Failed(Answer::Reset, "connection lost while sending");
                }
            }
        }
        // What a TLS session still holds goes out too.
        if send && u.io.flush(buffers).is_err() {
            return CopyStep::Failed(Answer::Reset, "connection lost while sending");
        }
        match u.io.fill(buffers) {
            Filled::Got => progress = true,
            Filled::Nothing => {}
            Filled::Eof if matches!(response, Some(r) if r.framing == Framing::UntilClose) => {
                if u.io.input_len() == 0
                    && let Some(r) = response.take()
                {
                    return CopyStep::Answered(r);
                }
            }
            Filled::Eof | Filled::Failed => {
                if u.io.input_len() == 0 || response.is_some() {
                    return CopyStep::Failed(
                        Answer::Reset,
                        "connection closed before a whole answer",
                    );
                }
            }
        }
        if response.is_none() && u.io.input_len() > 0 {
            let mut out = buffers.get();
            let parsed = head::parse_response(
                u.io.input_data(),
                j.client_side,
                b"",
                (
                    &j.request_id,
                    j.rules.as_ref().and_then(|r| r.response_headers()),
                ),
                &mut out,
            );
            match parsed {
                Ok(None) => {
                    buffers.put(out);
                    if u.io.read_closed {
                        return CopyStep::Failed(Answer::BadResponse, "connection closed mid-head");
                    }
                }
                Err(why) => {
                    buffers.put(out);
                    return CopyStep::Failed(Answer::BadResponse, why);
                }
                Ok(Some(resp)) if resp.is_interim() => {
                    progress = true;
                    buffers.put(out);
                    if let Some(input) = u.io.input.as_mut() {
                        input.consume(resp.len);
                    }
                }
                Ok(Some(resp)) => {
                    let outcome = rules.classify(Answer::Status(resp.status));
                    let delivered = outcome == Outcome::Delivered && waiting;
                    if delivered && !durable {
                        // The client hears of a delivery only once the job's record is
                        // durable; the backend's answer can wait in its socket till then.
                        buffers.put(out);
                        return CopyStep::Parked;
                    }
                    progress = true;
                    if let Some(input) = u.io.input.as_mut() {
                        input.consume(resp.len);
                    }
                    let mut r = Response {
                        status: resp.status,
                        outcome,
                        framing: resp.framing,
                        dechunk: resp.dechunk,
                        reusable: resp.reusable,
                        capture: Capture::Skip,
                        close_client: resp.close_client,
                    };
                    if delivered {
                        // Answered before the whole request went out: the rest is not
                        // sent, so the connection cannot carry another one.
                        r.reusable &= *sent >= j.request.len();
                        r.capture = Capture::Stream {
                            head: out,
                            upstream: ukey,
                        };
                        return CopyStep::Answered(r);
                    }
                    if outcome == Outcome::Refused && want_refusal {
                        let mut held = HeldBytes::with_capacity(shared, out.len());
                        let fits = out.len() as u64 <= rules.max_response;
                        r.capture = match held.extend(out.data(), rules.max_buffered) {
                            Ok(()) if fits => Capture::Keep(held),
                            _ => Capture::Dropped,
                        };
                    }
                    buffers.put(out);
                    *response = Some(r);
                }
            }
        }
        if let Some(r) = response.as_mut() {
            if let Some(input) = u.io.input.as_mut() {
                let capture = &mut r.capture;
                let mut dropped = false;
                let used = match r.framing.forward(input.data(), r.dechunk, |b| {
                    if let Capture::Keep(held) = capture
                        && !dropped
                    {
                        let fits = (held.len() + b.len()) as u64 <= rules.max_response;
                        dropped = !fits || held.extend(b, rules.max_buffered).is_err();
                    }
                }) {
                    Ok(used) => used,
                    Err(e) => return CopyStep::Failed(Answer::BadResponse, e.0),
                };
                if dropped {
                    *capture = Capture::Dropped;
                }
                input.consume(used);
                progress |= used > 0;
            }
            buffers.release_if_empty(&mut u.io.input);
        }
        if response.as_ref().is_some_and(|r| r.framing.is_done())
            && let Some(r) = response.take()
        {
            return CopyStep::Answered(r);
        }
        if !progress {
            return CopyStep::Wait;
        }
    }
}
