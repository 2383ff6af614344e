//! HTTP/2 frames (RFC 9113 §4 and §6): decoding one frame from received bytes, with every
//! size, flag and stream-identifier rule of §6 mapped to its §7 code and §5.4 kind, and
//! encoders for the frames a server sends.

use super::error::{Error, ErrorCode};

/// The fixed frame header (§4.1).
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value, and the least a peer may set (§6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest stream identifier and window (§5.1.1, §6.9.1): 31 bits.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// The 9-byte frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// With the reserved bit cleared (§4.1: it is ignored on receipt).
    pub stream: u32,
}

impl Head {
    /// The header at the start of `input`, or `None` when fewer than 9 bytes are there.
    pub fn parse(input: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = input.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_STREAM_ID,
        })
    }

    fn has(self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One decoded frame; payloads borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// What the frame counts against flow control: the whole payload, padding included
        /// (§6.9.1).
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        /// The priority fields name the stream itself (§5.3.1: a stream error).
        self_dependent: bool,
        fragment: &'a [u8],
    },
    Priority {
        stream: u32,
    },
    RstStream {
        stream: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        /// Whole 6-byte parameters; `settings::Settings::apply` reads them.
        params: &'a [u8],
    },
    PushPromise {
        stream: u32,
        promised: u32,
        end_headers: bool,
        fragment: &'a [u8],
    },
    Ping {
        ack: bool,
        opaque: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        fragment: &'a [u8],
    },
    /// A type this endpoint does not know: ignored (§4.1, §5.5), except inside a header
    /// block, which is why its stream is kept.
    Unknown {
        kind: u8,
        stream: u32,
    },
}

fn connection(code: ErrorCode) -> Error {
    Error::Connection(code)
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// The frame at the start of `input` and the bytes it takes, `Ok(None)` until it is all
/// there. `max_frame_size` is the SETTINGS_MAX_FRAME_SIZE this endpoint advertised.
pub fn decode(input: &[u8], max_frame_size: u32) -> Result<Option<(Frame<'_>, usize)>, Error> {
    let Some(head) = Head::parse(input) else {
        return Ok(None);
    };
    // Checked before the payload arrives, so an oversized frame is never buffered. Always a
    // connection error: a stream error would mean skipping bytes not received yet (§4.2
    // allows ending the connection for any frame size error).
    if head.len > max_frame_size {
        return Err(connection(ErrorCode::FRAME_SIZE_ERROR));
    }
    let len = usize::try_from(head.len).map_err(|_| connection(ErrorCode::FRAME_SIZE_ERROR))?;
    let Some(payload) = input.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((frame(head, payload)?, HEADER_LEN + len)))
}

/// The payload without its padding (§6.1): the pad length byte and the padding go, and
/// padding that does not fit in the payload is a connection PROTOCOL_ERROR.
fn unpad(head: Head, payload: &[u8]) -> Result<&[u8], Error> {
    if !head.has(flag::PADDED) {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or(connection(ErrorCode::FRAME_SIZE_ERROR))?;
    rest.len()
        .checked_sub(usize::from(pad))
        .and_then(|keep| rest.get(..keep))
        .ok_or(connection(ErrorCode::PROTOCOL_ERROR))
}

fn frame(head: Head, payload: &[u8]) -> Result<Frame<'_>, Error> {
    let stream = head.stream;
    // §6: which frames need a stream and which must be on stream 0.
    let on_stream = || match stream {
        0 => Err(connection(ErrorCode::PROTOCOL_ERROR)),
        _ => Ok(()),
    };
    let on_connection = || match stream {
        0 => Ok(()),
        _ => Err(connection(ErrorCode::PROTOCOL_ERROR)),
    };
    let exact = |want: usize, error: Error| match payload.len() == want {
        true => Ok(()),
        false => Err(error),
    };
    match head.kind {
        kind::DATA => {
            on_stream()?;
            Ok(Frame::Data {
                stream,
                end_stream: head.has(flag::END_STREAM),
                data: unpad(head, payload)?,
                flow_len: head.len,
            })
        }
        kind::HEADERS => {
            on_stream()?;
            let mut fragment = unpad(head, payload)?;
            let mut self_dependent = false;
            if head.has(flag::PRIORITY) {
                let dependency = be32(fragment).ok_or(connection(ErrorCode::FRAME_SIZE_ERROR))?;
                self_dependent = dependency & MAX_STREAM_ID == stream;
                fragment = fragment
                    .get(5..)
                    .ok_or(connection(ErrorCode::FRAME_SIZE_ERROR))?;
            }
            Ok(Frame::Headers {
                stream,
                end_stream: head.has(flag::END_STREAM),
                end_headers: head.has(flag::END_HEADERS),
                self_dependent,
                fragment,
            })
        }
        kind::PRIORITY => {
            on_stream()?;
            exact(5, Error::Stream(stream, ErrorCode::FRAME_SIZE_ERROR))?;
            match be32(payload).map(|d| d & MAX_STREAM_ID) == Some(stream) {
                true => Err(Error::Stream(stream, ErrorCode::PROTOCOL_ERROR)),
                false => Ok(Frame::Priority { stream }),
            }
        }
        kind::RST_STREAM => {
            on_stream()?;
            exact(4, connection(ErrorCode::FRAME_SIZE_ERROR))?;
            let code = ErrorCode(be32(payload).unwrap_or_default());
            Ok(Frame::RstStream { stream, code })
        }
        kind::SETTINGS => {
            on_connection()?;
            let ack = head.has(flag::ACK);
            if (ack && !payload.is_empty()) || !payload.len().is_multiple_of(6) {
                return Err(connection(ErrorCode::FRAME_SIZE_ERROR));
            }
            Ok(Frame::Settings {
                ack,
                params: payload,
            })
        }
        kind::PUSH_PROMISE => {
            on_stream()?;
            let rest = unpad(head, payload)?;
            let promised = be32(rest).ok_or(connection(ErrorCode::FRAME_SIZE_ERROR))?;
            Ok(Frame::PushPromise {
                stream,
                promised: promised & MAX_STREAM_ID,
                end_headers: head.has(flag::END_HEADERS),
                fragment: rest.get(4..).unwrap_or_default(),
            })
        }
        kind::PING => {
            on_connection()?;
            let opaque: [u8; 8] = payload
                .try_into()
                .map_err(|_| connection(ErrorCode::FRAME_SIZE_ERROR))?;
            Ok(Frame::Ping {
                ack: head.has(flag::ACK),
                opaque,
            })
        }
        kind::GOAWAY => {
            on_connection()?;
            let (last, code) = be32(payload)
                .zip(payload.get(4..).and_then(be32))
                .ok_or(connection(ErrorCode::FRAME_SIZE_ERROR))?;
            Ok(Frame::GoAway {
                last_stream: last & MAX_STREAM_ID,
                code: ErrorCode(code),
                debug: payload.get(8..).unwrap_or_default(),
            })
        }
        kind::WINDOW_UPDATE => {
            exact(4, connection(ErrorCode::FRAME_SIZE_ERROR))?;
            let increment = be32(payload).unwrap_or_default() & MAX_STREAM_ID;
            match (increment, stream) {
                (0, 0) => Err(connection(ErrorCode::PROTOCOL_ERROR)),
                (0, _) => Err(Error::Stream(stream, ErrorCode::PROTOCOL_ERROR)),
                _ => Ok(Frame::WindowUpdate { stream, increment }),
            }
        }
        kind::CONTINUATION => {
            on_stream()?;
            Ok(Frame::Continuation {
                stream,
                end_headers: head.has(flag::END_HEADERS),
                fragment: payload,
            })
        }
        kind => Ok(Frame::Unknown { kind, stream }),
    }
}

/// Appends a frame header; `len` must fit in 24 bits, which every caller ensures by
/// splitting at the peer's SETTINGS_MAX_FRAME_SIZE (at most 2^24-1).
fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).min(0x00ff_ffff);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & MAX_STREAM_ID).to_be_bytes());
}

/// A header block as HEADERS then as many CONTINUATION frames as `max_frame_size` needs.
pub fn encode_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let size = usize::try_from(max_frame_size.max(1)).unwrap_or(usize::MAX);
    let mut chunks = block.chunks(size).peekable();
    let mut kind = kind::HEADERS;
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        put_head(out, 0, kind, flags | flag::END_HEADERS, stream);
        return;
    }
    while let Some(chunk) = chunks.next() {
        if chunks.peek().is_none() {
            flags |= flag::END_HEADERS;
        }
        put_head(out, chunk.len(), kind, flags, stream);
        out.extend_from_slice(chunk);
        kind = kind::CONTINUATION;
        flags = 0;
    }
}

/// One DATA frame; the caller keeps `data` within the peer's max frame size and windows.
pub fn encode_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    put_head(out, data.len(), kind::DATA, flags, stream);
    out.extend_from_slice(data);
}

pub fn encode_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    put_head(out, params.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn encode_settings_ack(out: &mut Vec<u8>) {
    put_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

pub fn encode_ping(out: &mut Vec<u8>, opaque: [u8; 8], ack: bool) {
    put_head(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&opaque);
}

pub fn encode_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.0.to_be_bytes());
}

pub fn encode_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode, debug: &[u8]) {
    put_head(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & MAX_STREAM_ID).to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(debug);
}

pub fn encode_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & MAX_STREAM_ID).to_be_bytes());
}
