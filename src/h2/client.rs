//! A client's HTTP/2 connection (RFC 9113), sans IO, for lb's connections to backends
//! that speak h2 (gRPC): lb opens streams, sends each exchange's request on one and reads
//! the response events back. Bytes in, events out, frames to send queued for the caller,
//! as in the server's `connection`. A backend is less hostile than a client, but a broken
//! or compromised one must not spin or bloat lb: every rule a server can break is a
//! connection or stream error with its §5.4 code, and the flood and size bounds of
//! `Limits` hold here too.

mod recv;
mod send;
mod stream;

use std::ops::Range;
use std::time::Instant;

use super::connection::{GoAway, PREFACE};
use super::error::{Error, ErrorCode};
use super::flow::{RecvWindow, Window};
use super::frame::{self, DEFAULT_MAX_FRAME_SIZE, Frame, Head, kind};
use super::hpack::{Decoder, Encoder, HeaderList};
use super::limits::{Flood, Limits};
use super::settings::{DEFAULT_WINDOW, Settings, id};
use stream::Streams;

pub use send::OpenError;

/// The receive window of each stream, announced in our SETTINGS: the protocol's initial
/// one. What lb holds of all streams together is bounded by `Limits::connection_window`.
pub const STREAM_WINDOW: u32 = DEFAULT_WINDOW;

/// The connection's life (§3.4, §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Our preface is queued; the server's first frame must be its SETTINGS.
    AwaitingSettings,
    Open,
    /// The server's GOAWAY, or our own: no new stream; those up to `last_stream` finish,
    /// then the connection is closed.
    Draining {
        last_stream: u32,
    },
    Closed,
}

/// What the caller must act on. Header lists and bodies borrow from the connection and the
/// input until the next call.
#[derive(Debug)]
pub enum ClientEvent<'a> {
    /// A 1xx response (§8.1; never 101, which HTTP/2 does not have): the final response
    /// follows on the same stream.
    Interim {
        stream: u32,
        status: u16,
        headers: &'a HeaderList,
    },
    /// The response's header section, checked as §8.3.2 asks.
    Response {
        stream: u32,
        status: u16,
        headers: &'a HeaderList,
        end_stream: bool,
    },
    /// Response body bytes; report them with `consumed` once passed on.
    Data {
        stream: u32,
        data: &'a [u8],
        end_stream: bool,
    },
    /// The response's trailer section; the response is complete.
    Trailers {
        stream: u32,
        headers: &'a HeaderList,
    },
    /// The stream is gone: reset by the server, by us for its error, or refused by a
    /// GOAWAY (REFUSED_STREAM: the server did not process it, so it may be retried
    /// elsewhere, §8.7). NO_ERROR after a complete response only stops the request body.
    Reset { stream: u32, code: ErrorCode },
    /// The server's window grew for `stream`, or for the connection (0: every stream
    /// with something pending may try again).
    WindowOpened { stream: u32 },
    /// The server's GOAWAY; the streams it refused follow as `Reset` events.
    GoAway { last_stream: u32, code: ErrorCode },
    /// The server's settings changed: `can_open` may differ, and a larger initial window
    /// lets every stream with something pending try again.
    SettingsChanged,
}

/// A `ClientEvent` without its borrows, so that frame handling can return it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Emit {
    Interim {
        stream: u32,
        status: u16,
    },
    Response {
        stream: u32,
        status: u16,
        end_stream: bool,
    },
    Data {
        stream: u32,
        at: Range<usize>,
        end_stream: bool,
    },
    Trailers {
        stream: u32,
    },
    Reset {
        stream: u32,
        code: ErrorCode,
    },
    WindowOpened {
        stream: u32,
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
    },
    SettingsChanged,
}

/// A header block being received across CONTINUATION frames.
#[derive(Clone, Copy, Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    self_dependent: bool,
    frames: u32,
}

pub struct ClientConnection {
    state: State,
    limits: Limits,
    /// The server's settings.
    peer: Settings,
    settings_sent_at: Option<Instant>,
    decoder: Decoder,
    encoder: Encoder,
    headers: HeaderList,
    /// The fragments of a header block split into CONTINUATIONs, reused.
    block: Vec<u8>,
    open_block: Option<Block>,
    streams: Streams,
    send_window: Window,
    recv_window: RecvWindow,
    /// What the last `send_data` could not send for the connection's window, and since when
    /// that window has been too small.
    pending: usize,
    stalled_since: Option<Instant>,
    /// The id the next stream gets, and the last one opened: ids up to it are open or
    /// closed, never idle.
    next_stream: u32,
    last_opened: u32,
    output: Vec<u8>,
    /// Frames the server provoked that sit in `output`.
    provoked: u32,
    flood: Flood,
    /// An encoded header block before it is framed, reused.
    scratch: Vec<u8>,
}

impl ClientConnection {
    /// A client connection whose preface is queued: the magic, our SETTINGS (no push) and
    /// the connection window's WINDOW_UPDATE. Streams may open at once (§3.4).
    pub fn new(limits: Limits, now: Instant) -> Self {
        let mut output = PREFACE.to_vec();
        frame::encode_settings(
            &mut output,
            &[
                (id::HEADER_TABLE_SIZE, limits.header_table_size),
                (id::ENABLE_PUSH, 0),
                (id::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (id::MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
            ],
        );
        let extra = limits.connection_window.saturating_sub(DEFAULT_WINDOW);
        if extra > 0 {
            frame::encode_window_update(&mut output, 0, extra);
        }
        Self {
            state: State::AwaitingSettings,
            peer: Settings::default(),
            settings_sent_at: Some(now),
            decoder: Decoder::new(limits.header_table_size, limits.max_header_list_size),
            encoder: Encoder::new(),
            headers: HeaderList::new(),
            block: Vec::new(),
            open_block: None,
            streams: Streams::new(limits.max_concurrent_streams),
            send_window: Window::new(DEFAULT_WINDOW),
            recv_window: RecvWindow::new(limits.connection_window.max(DEFAULT_WINDOW)),
            pending: 0,
            stalled_since: None,
            next_stream: 1,
            last_opened: 0,
            output,
            provoked: 0,
            flood: Flood::new(now),
            scratch: Vec::new(),
            limits,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Reads frames from `input` until one makes an event or no whole frame is left;
    /// returns the bytes used (drop them from the input) and the event. On a connection
    /// error the GOAWAY is queued and the connection is closed: every stream is lost.
    pub fn next_event<'a>(
        &'a mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<ClientEvent<'a>>), GoAway> {
        if let Some(stream) = self.refuse_next() {
            let code = ErrorCode::REFUSED_STREAM;
            return Ok((0, Some(ClientEvent::Reset { stream, code })));
        }
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            match self.step(rest, now) {
                Err(code) => return Err(self.fail(code)),
                Ok(None) => return Ok((used, None)),
                Ok(Some((n, emit))) => {
                    let start = used;
                    used += n;
                    if let Some(emit) = emit {
                        return Ok((used, Some(self.event(emit, input, start))));
                    }
                }
            }
        }
    }

    /// A live stream above the last one a GOAWAY let finish, taken out of the table.
    fn refuse_next(&mut self) -> Option<u32> {
        let State::Draining { last_stream } = self.state else {
            return None;
        };
        let id = self.streams.first_above(last_stream)?;
        self.close_stream(id);
        Some(id)
    }

    fn event<'a>(&'a self, emit: Emit, input: &'a [u8], start: usize) -> ClientEvent<'a> {
        let headers = &self.headers;
        match emit {
            Emit::Interim { stream, status } => ClientEvent::Interim {
                stream,
                status,
                headers,
            },
            Emit::Response {
                stream,
                status,
                end_stream,
            } => ClientEvent::Response {
                stream,
                status,
                headers,
                end_stream,
            },
            Emit::Data {
                stream,
                at,
                end_stream,
            } => ClientEvent::Data {
                stream,
                data: input
                    .get(start + at.start..start + at.end)
                    .unwrap_or_default(),
                end_stream,
            },
            Emit::Trailers { stream } => ClientEvent::Trailers { stream, headers },
            Emit::Reset { stream, code } => ClientEvent::Reset { stream, code },
            Emit::WindowOpened { stream } => ClientEvent::WindowOpened { stream },
            Emit::GoAway { last_stream, code } => ClientEvent::GoAway { last_stream, code },
            Emit::SettingsChanged => ClientEvent::SettingsChanged,
        }
    }

    /// One frame: the bytes it took and the event it makes, `Ok(None)` when more input is
    /// needed; `Err` is a connection error.
    fn step(
        &mut self,
        input: &[u8],
        now: Instant,
    ) -> Result<Option<(usize, Option<Emit>)>, ErrorCode> {
        if self.state == State::Closed {
            return Ok(None);
        }
        let Some(head) = Head::parse(input) else {
            return Ok(None);
        };
        // §3.4: the server's preface is a SETTINGS frame.
        if self.state == State::AwaitingSettings
            && (head.kind != kind::SETTINGS || head.flags & frame::flag::ACK != 0)
        {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        // §6.10: nothing may come between the frames of a header block.
        if self.open_block.is_some() && head.kind != kind::CONTINUATION {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        let (frame, used) = match frame::decode(input, DEFAULT_MAX_FRAME_SIZE) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Ok(None),
            Err(Error::Connection(code)) => return Err(code),
            Err(Error::Stream(stream, code)) => {
                let used = frame::HEADER_LEN.saturating_add(head.len as usize);
                return Ok(Some((used, self.stream_error(stream, code)?)));
            }
        };
        let emit = match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => {
                let offset = (data.as_ptr() as usize).saturating_sub(input.as_ptr() as usize);
                let at = offset..offset + data.len();
                self.on_data(stream, end_stream, at, flow_len, now)?
            }
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                self_dependent,
                fragment,
            } => {
                let block = Block {
                    stream,
                    end_stream,
                    self_dependent,
                    frames: 1,
                };
                self.on_headers(block, end_headers, fragment, now)?
            }
            Frame::Continuation {
                stream,
                end_headers,
                fragment,
            } => self.on_continuation(stream, end_headers, fragment, now)?,
            Frame::RstStream { stream, code } => self.on_reset(stream, code, now)?,
            Frame::Settings { ack, params } => self.on_settings(ack, params, now)?,
            Frame::WindowUpdate { stream, increment } => {
                self.on_window_update(stream, increment, now)?
            }
            Frame::Ping { ack, opaque } => {
                self.flood.idle(now, &self.limits)?;
                if !ack {
                    self.provoke()?;
                    frame::encode_ping(&mut self.output, opaque, true);
                }
                None
            }
            // §8.4: we disabled push, so a promise is a connection error.
            Frame::PushPromise { .. } => return Err(ErrorCode::PROTOCOL_ERROR),
            Frame::GoAway {
                last_stream, code, ..
            } => self.on_goaway(last_stream, code, now)?,
            // Priority signals are deprecated (§5.3.2) and unknown frames ignored (§5.5):
            // both only cost work.
            Frame::Priority { .. } | Frame::Unknown { .. } => {
                self.flood.idle(now, &self.limits)?;
                None
            }
        };
        Ok(Some((used, emit)))
    }

    /// Queues the GOAWAY for a connection error and closes. No stream of the server's was
    /// ever processed (§6.8: the last stream id is 0).
    fn fail(&mut self, code: ErrorCode) -> GoAway {
        frame::encode_goaway(&mut self.output, 0, code, &[]);
        self.open_block = None;
        self.streams.clear();
        self.state = State::Closed;
        GoAway {
            code,
            last_stream: 0,
        }
    }

    /// Counts one more frame the server made us queue; too many unread is
    /// ENHANCE_YOUR_CALM.
    fn provoke(&mut self) -> Result<(), ErrorCode> {
        self.provoked = self.provoked.saturating_add(1);
        match self.provoked > self.limits.max_queued_control_frames {
            true => Err(ErrorCode::ENHANCE_YOUR_CALM),
            false => Ok(()),
        }
    }

    /// An id no frame of the server's may name yet (§5.1 idle): one we have not opened,
    /// or an even one, which only a push could open.
    fn is_idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id > self.last_opened
    }

    /// Live streams, for the caller's accounting.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// How many more streams may open now: within the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS and our own `Limits::max_concurrent_streams`, and
    /// none once the connection drains.
    pub fn can_open(&self) -> usize {
        if !matches!(self.state, State::AwaitingSettings | State::Open) {
            return 0;
        }
        let max = self
            .peer
            .max_concurrent_streams
            .min(self.limits.max_concurrent_streams);
        usize::try_from(max)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.streams.len())
    }
}
