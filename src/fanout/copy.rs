//! One copy's conversation with its backend: the shared request goes out, the answer
//! comes in, and an answer the waiting client may get is kept for it.

use super::outcome::{Answer, Outcome, Rules};
use super::{Job, Phase};
use crate::buffer::BufferPool;
use crate::conn::Filled;
use crate::http::body::Framing;
use crate::http::head;
use crate::http::upstream::UpstreamConn;

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) outcome: Outcome,
    pub(super) framing: Framing,
    pub(super) dechunk: bool,
    pub(super) reusable: bool,
    pub(super) capture: Capture,
    pub(super) close_client: bool,
}

/// The answer as the client would get it (head as forwarded, body as received).
pub(super) enum Capture {
    /// Nobody waits for this answer.
    Skip,
    Keep(Vec<u8>),
    /// Over --fanout-max-response: dropped.
    TooLarge,
}

pub(super) enum CopyStep {
    Wait,
    /// A whole answer came: the response, with its capture.
    Answered(Response),
    Failed(Answer, &'static str),
}

/// Moves the request out (unless sends are held) and the answer in, as far as the
/// socket allows.
pub(super) fn step_copy(
    u: &mut UpstreamConn,
    j: &mut Job,
    copy: usize,
    buffers: &mut BufferPool,
    send: bool,
    rules: &Rules,
) -> CopyStep {
    let waiting = j.client.is_some() && !j.answered;
    let want_refusal = waiting && j.refusal.is_none();
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
                (&j.request_id, None),
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
                Ok(Some(resp)) => {
                    progress = true;
                    if let Some(input) = u.io.input.as_mut() {
                        input.consume(resp.len);
                    }
                    if !resp.is_interim() {
                        let outcome = rules.classify(Answer::Status(resp.status));
                        let wanted = match outcome {
                            Outcome::Delivered => waiting,
                            Outcome::Refused => want_refusal,
                            Outcome::Retryable | Outcome::GivenUp => false,
                        };
                        *response = Some(Response {
                            status: resp.status,
                            outcome,
                            framing: resp.framing,
                            dechunk: resp.dechunk,
                            reusable: resp.reusable,
                            capture: if wanted {
                                Capture::Keep(out.data().to_vec())
                            } else {
                                Capture::Skip
                            },
                            close_client: resp.close_client,
                        });
                    }
                    buffers.put(out);
                }
            }
        }
        if let Some(r) = response.as_mut() {
            if let Some(input) = u.io.input.as_mut() {
                let capture = &mut r.capture;
                let used = match r.framing.forward(input.data(), r.dechunk, |b| {
                    if let Capture::Keep(cap) = capture {
                        cap.extend_from_slice(b);
                    }
                }) {
                    Ok(used) => used,
                    Err(e) => return CopyStep::Failed(Answer::BadResponse, e.0),
                };
                if matches!(capture, Capture::Keep(cap) if cap.len() as u64 > rules.max_response) {
                    *capture = Capture::TooLarge;
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
