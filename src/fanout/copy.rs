//! One copy's conversation with its backend: the shared request goes out, the answer
//! comes in, and the first success is kept for the waiting client.

use super::{CopyFailure, Job, Phase};
use crate::buffer::BufferPool;
use crate::conn::Filled;
use crate::http::body::Framing;
use crate::http::head;
use crate::http::upstream::UpstreamConn;

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) framing: Framing,
    pub(super) dechunk: bool,
    pub(super) reusable: bool,
    /// The answer for the client, when this copy is the first success and someone waits.
    pub(super) capture: Option<Vec<u8>>,
    pub(super) close_client: bool,
}

pub(super) enum CopyStep {
    Wait,
    Answered,
    Failed(CopyFailure, &'static str),
}

/// Moves the request out (unless sends are held) and the answer in, as far as the
/// socket allows.
pub(super) fn step_copy(
    u: &mut UpstreamConn,
    j: &mut Job,
    copy: usize,
    buffers: &mut BufferPool,
    send: bool,
    success: u16,
    max_body: u64,
) -> CopyStep {
    let Phase::InFlight { sent, response, .. } = &mut j.copies[copy].phase else {
        return CopyStep::Failed(CopyFailure::Reset, "copy is not in flight");
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
                    return CopyStep::Failed(CopyFailure::Reset, "connection lost while sending");
                }
            }
        }
        // What a TLS session still holds goes out too.
        if send && u.io.flush(buffers).is_err() {
            return CopyStep::Failed(CopyFailure::Reset, "connection lost while sending");
        }
        match u.io.fill(buffers) {
            Filled::Got => progress = true,
            Filled::Nothing => {}
            Filled::Eof if matches!(response, Some(r) if r.framing == Framing::UntilClose) => {
                if u.io.input_len() == 0 {
                    return CopyStep::Answered;
                }
            }
            Filled::Eof | Filled::Failed => {
                if u.io.input_len() == 0 || response.is_some() {
                    return CopyStep::Failed(
                        CopyFailure::Reset,
                        "connection closed before a whole answer",
                    );
                }
            }
        }
        if response.is_none() && u.io.input_len() > 0 {
            let mut out = buffers.get();
            let parsed =
                head::parse_response(u.io.input_data(), j.client_side, &j.request_id, &mut out);
            match parsed {
                Ok(None) => {
                    buffers.put(out);
                    if u.io.read_closed {
                        return CopyStep::Failed(
                            CopyFailure::BadResponse,
                            "connection closed mid-head",
                        );
                    }
                }
                Err(why) => {
                    buffers.put(out);
                    return CopyStep::Failed(CopyFailure::BadResponse, why);
                }
                Ok(Some(resp)) => {
                    progress = true;
                    if let Some(input) = u.io.input.as_mut() {
                        input.consume(resp.len);
                    }
                    if !resp.is_interim() {
                        let wanted = resp.status == success && !j.answered && j.client.is_some();
                        *response = Some(Response {
                            status: resp.status,
                            framing: resp.framing,
                            dechunk: resp.dechunk,
                            reusable: resp.reusable,
                            capture: wanted.then(|| out.data().to_vec()),
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
                    if let Some(cap) = capture.as_mut() {
                        cap.extend_from_slice(b);
                    }
                }) {
                    Ok(used) => used,
                    Err(e) => return CopyStep::Failed(CopyFailure::BadResponse, e.0),
                };
                if capture
                    .as_ref()
                    .is_some_and(|cap| cap.len() as u64 > max_body)
                {
                    *capture = None;
                }
                input.consume(used);
                progress |= used > 0;
            }
            buffers.release_if_empty(&mut u.io.input);
            if r.framing.is_done() {
                return if r.status == success {
                    CopyStep::Answered
                } else {
                    CopyStep::Failed(CopyFailure::Status(r.status), "status is not a success")
                };
            }
        }
        if !progress {
            return CopyStep::Wait;
        }
    }
}
