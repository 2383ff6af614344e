//! One stream's life (RFC 9113 §5.1) as an enum stepped by value on the frames received
//! and sent, and the §8.1.1 check of a request's content-length against its DATA.

use super::error::{Error, ErrorCode};

/// §5.1's states a server's stream goes through (no push, so no reserved states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Open,
    /// We sent END_STREAM; the client may still send.
    HalfClosedLocal,
    /// The client sent END_STREAM; we are answering.
    HalfClosedRemote,
    Closed,
}

/// A frame that moves a stream, as far as its state is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Headers { end_stream: bool },
    Data { end_stream: bool },
    Reset,
}

/// Sending a frame the stream's state forbids: the caller's mistake, never the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSendable;

impl State {
    /// The state after receiving `step` on stream `id`, or the error §5.1 names.
    pub fn received(self, id: u32, step: Step) -> Result<Self, Error> {
        use State::*;
        let stream_error = |code| Err(Error::Stream(id, code));
        match (self, step) {
            // §5.1 idle: only HEADERS (and PRIORITY) may arrive.
            (Idle, Step::Headers { end_stream }) => {
                Ok(if end_stream { HalfClosedRemote } else { Open })
            }
            (Idle, _) => Err(Error::Connection(ErrorCode::PROTOCOL_ERROR)),
            (_, Step::Reset) => Ok(Closed),
            // §8.1: a second HEADERS is a trailer section and must end the stream.
            (Open | HalfClosedLocal, Step::Headers { end_stream: false }) => {
                stream_error(ErrorCode::PROTOCOL_ERROR)
            }
            (Open, Step::Headers { .. } | Step::Data { end_stream: true }) => Ok(HalfClosedRemote),
            (Open, Step::Data { .. }) => Ok(Open),
            (HalfClosedLocal, Step::Headers { .. } | Step::Data { end_stream: true }) => Ok(Closed),
            (HalfClosedLocal, Step::Data { .. }) => Ok(HalfClosedLocal),
            // §5.1 half-closed (remote) and closed: STREAM_CLOSED.
            (HalfClosedRemote | Closed, _) => stream_error(ErrorCode::STREAM_CLOSED),
        }
    }

    /// The state after sending `step`.
    pub fn sent(self, step: Step) -> Result<Self, NotSendable> {
        use State::*;
        match (self, step) {
            (Closed, _) | (Idle, _) => Err(NotSendable),
            (_, Step::Reset) => Ok(Closed),
            (HalfClosedLocal, _) => Err(NotSendable),
            (Open, Step::Headers { end_stream } | Step::Data { end_stream }) => {
                Ok(if end_stream { HalfClosedLocal } else { Open })
            }
            (HalfClosedRemote, Step::Headers { end_stream } | Step::Data { end_stream }) => {
                Ok(if end_stream { Closed } else { HalfClosedRemote })
            }
        }
    }

    /// Counts against SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Open | Self::HalfClosedLocal | Self::HalfClosedRemote
        )
    }
}

/// A request body's length against the content-length its header declared (§8.1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyLength {
    declared: Option<u64>,
    received: u64,
}

impl BodyLength {
    /// From the content-length values of a request (`None` when it has none). Values that
    /// are not all the same decimal number make the request malformed (§8.1.1, RFC 9110
    /// §8.6).
    pub fn new<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<Self, ErrorCode> {
        let Some(first) = values.next() else {
            return Ok(Self {
                declared: None,
                received: 0,
            });
        };
        let declared = parse_length(first)?;
        if values.any(|v| parse_length(v) != Ok(declared)) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        Ok(Self {
            declared: Some(declared),
            received: 0,
        })
    }

    /// DATA of `n` payload bytes; more than declared, or a different total at END_STREAM,
    /// is a stream PROTOCOL_ERROR.
    pub fn data(&mut self, n: usize, end_stream: bool) -> Result<(), ErrorCode> {
        self.received = self
            .received
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        match self.declared {
            Some(declared) if self.received > declared => Err(ErrorCode::PROTOCOL_ERROR),
            Some(declared) if end_stream && self.received != declared => {
                Err(ErrorCode::PROTOCOL_ERROR)
            }
            _ => Ok(()),
        }
    }
}

fn parse_length(value: &[u8]) -> Result<u64, ErrorCode> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    Ok(value.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}
