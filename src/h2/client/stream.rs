//! One stream lb opened to a backend: its two halves as enums stepped by value (RFC 9113
//! §5.1, with §8.1's response phases on the half the server sends), its windows, and the
//! table of live streams.

use std::time::Instant;

use crate::h2::error::ErrorCode;
use crate::h2::flow::{RecvWindow, Window};
use crate::h2::stream::BodyLength;

/// What we still send on a stream: the request's body and trailers, until END_STREAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    Open,
    Ended,
}

/// What the server still sends on a stream (§8.1): interim responses, then the final one,
/// its body and maybe trailers, until END_STREAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    AwaitingResponse,
    Body,
    Ended,
}

/// A received frame, as far as the server's half of the stream is concerned. A header
/// section is interim when it carries a 1xx status; in the body it is trailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Headers { interim: bool, end_stream: bool },
    Data { end_stream: bool },
}

impl Remote {
    /// The half's state after `frame`, or the code of the stream error it is.
    pub fn received(self, frame: Received) -> Result<Self, ErrorCode> {
        use Received::{Data, Headers};
        let ended = |end_stream| match end_stream {
            true => Self::Ended,
            false => Self::Body,
        };
        match (self, frame) {
            // §8.1: an interim response cannot end the stream.
            (
                Self::AwaitingResponse,
                Headers {
                    interim: true,
                    end_stream: true,
                },
            ) => Err(ErrorCode::PROTOCOL_ERROR),
            (Self::AwaitingResponse, Headers { interim: true, .. }) => Ok(Self::AwaitingResponse),
            (Self::AwaitingResponse, Headers { end_stream, .. }) => Ok(ended(end_stream)),
            // §8.1: content before the response's header section is malformed.
            (Self::AwaitingResponse, Data { .. }) => Err(ErrorCode::PROTOCOL_ERROR),
            // §8.1: a second header section is trailers, and ends the stream.
            (
                Self::Body,
                Headers {
                    end_stream: false, ..
                },
            ) => Err(ErrorCode::PROTOCOL_ERROR),
            (Self::Body, Headers { .. }) => Ok(Self::Ended),
            (Self::Body, Data { end_stream }) => Ok(ended(end_stream)),
            // §5.1 half-closed (remote).
            (Self::Ended, _) => Err(ErrorCode::STREAM_CLOSED),
        }
    }
}

/// One live stream.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub id: u32,
    pub local: Local,
    pub remote: Remote,
    /// What we may still send on it (the server's window).
    pub send: Window,
    /// What the server may still send on it.
    pub recv: RecvWindow,
    /// The response's content-length against its DATA (§8.1.1).
    pub body: BodyLength,
    /// The request was a HEAD: its response's content-length describes no DATA.
    pub head_request: bool,
    /// Response body bytes passed to the caller and not yet reported consumed.
    pub held: u32,
    /// What the caller's last `send_data` could not send.
    pub pending: usize,
    /// Since when the server's window has been too small to send into.
    pub stalled_since: Option<Instant>,
}

impl Stream {
    /// Both halves ended (§5.1 closed): the stream leaves the table.
    pub fn is_closed(&self) -> bool {
        self.local == Local::Ended && self.remote == Remote::Ended
    }
}

/// How many of our own resets to remember: the server has frames in flight for a stream
/// for about one round trip after we reset it.
const RECENT_RESETS: usize = 16;

#[derive(Debug)]
pub struct Streams {
    live: Vec<Stream>,
    recent_resets: [u32; RECENT_RESETS],
    next_reset: usize,
}

impl Streams {
    /// Room for `max` live streams, allocated once.
    pub fn new(max: u32) -> Self {
        Self {
            live: Vec::with_capacity(usize::try_from(max).unwrap_or(0)),
            recent_resets: [0; RECENT_RESETS],
            next_reset: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&Stream> {
        self.live.iter().find(|s| s.id == id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.live.iter_mut().find(|s| s.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.live.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.live.iter_mut()
    }

    pub fn clear(&mut self) {
        self.live.clear();
    }

    pub fn insert(&mut self, stream: Stream) {
        self.live.push(stream);
    }

    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        let at = self.live.iter().position(|s| s.id == id)?;
        Some(self.live.swap_remove(at))
    }

    /// The first live stream above `last`: one a GOAWAY refused.
    pub fn first_above(&self, last: u32) -> Option<u32> {
        self.live.iter().map(|s| s.id).find(|&id| id > last)
    }

    /// We reset `id`: frames the server sent before it learnt so are ignored.
    pub fn note_reset(&mut self, id: u32) {
        if let Some(slot) = self.recent_resets.get_mut(self.next_reset) {
            *slot = id;
        }
        self.next_reset = (self.next_reset + 1) % RECENT_RESETS;
    }

    pub fn was_reset(&self, id: u32) -> bool {
        id != 0 && self.recent_resets.contains(&id)
    }
}
