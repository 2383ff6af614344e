//! A backend stream's request, kept as it goes out, for the one case where lb may send it
//! again whatever its method: the server refused the stream (RST_STREAM REFUSED_STREAM,
//! or a GOAWAY whose last stream is below it) before answering, so it processed none of
//! it (RFC 9113 §8.7). It is kept while the whole request so far fits one buffer, since a
//! refused request goes elsewhere in one (`retry_elsewhere`); a longer body, or one the
//! server began to answer, is dropped and the request can no longer be replayed.

use crate::buffer::Buffer;
use crate::state::BUFFER_SIZE;

pub struct Replay {
    /// The request bytes that went out, in HTTP/1.1 as lb's HTTP/1 code wrote them.
    sent: Vec<u8>,
    /// `sent` is all of the request that went out.
    whole: bool,
    /// The server refused the stream before answering.
    refused: bool,
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            sent: Vec::new(),
            whole: true,
            refused: false,
        }
    }
}

impl Replay {
    /// For the next stream; keeps the capacity, so that a request allocates nothing.
    pub fn clear(&mut self) {
        self.sent.clear();
        self.whole = true;
        self.refused = false;
    }

    /// `bytes` went out.
    pub fn sent(&mut self, bytes: &[u8]) {
        if !self.whole {
            return;
        }
        if self.sent.len().saturating_add(bytes.len()) > BUFFER_SIZE {
            // Requests this long are few: what they took is freed now, not kept for reuse.
            self.whole = false;
            self.sent = Vec::new();
            return;
        }
        self.sent.extend_from_slice(bytes);
    }

    /// The server answered: the request is never replayed.
    pub fn give_up(&mut self) {
        self.whole = false;
        self.sent.clear();
    }

    pub fn refuse(&mut self) {
        self.refused = true;
    }

    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The request of a refused stream, all that went out and then `unsent`, pushed onto
    /// `out`; false, with `out` as it was, if the stream was not refused, the request was
    /// not kept whole, or it does not fit.
    pub fn copy_into(&self, unsent: &[u8], out: &mut Buffer) -> bool {
        let len = self.sent.len().saturating_add(unsent.len());
        if !(self.refused && self.whole) || out.room() < len {
            return false;
        }
        out.push(&self.sent) && out.push(unsent)
    }
}
