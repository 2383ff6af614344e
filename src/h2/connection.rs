//! A server's HTTP/2 connection (RFC 9113), sans IO: bytes in, events out, frames to send
//! queued for the caller. The connection's life is an enum; streams live in a table that
//! is allocated once; every flood and size limit of `Limits` is enforced here, so the
//! caller only ever sees requests, bodies, trailers and resets.

mod recv;
mod send;
mod streams;

use std::ops::Range;
use std::time::Instant;

use super::error::{Error, ErrorCode};
use super::flow::{RecvWindow, Window};
use super::frame::{self, DEFAULT_MAX_FRAME_SIZE, Frame, Head, kind};
use super::hpack::{Decoder, Encoder, HeaderList};
use super::limits::{Flood, Limits, Resets};
use super::settings::{DEFAULT_WINDOW, Settings};
use streams::Streams;

pub use send::SendError;

/// What a client sends first (§3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The connection's life (§3.4, §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    AwaitingPreface,
    /// The preface came; the client's first frame must be its SETTINGS.
    AwaitingSettings,
    Open,
    /// We sent GOAWAY: streams up to `last_stream` finish, later ones are refused.
    GoingAway {
        last_stream: u32,
    },
    Closed,
}

/// What the caller must act on. Header lists and bodies borrow from the connection and the
/// input until the next call.
pub enum Event<'a> {
    /// A new request's header section.
    Request {
        stream: u32,
        headers: &'a HeaderList,
        end_stream: bool,
    },
    /// A new request whose header list exceeded SETTINGS_MAX_HEADER_LIST_SIZE: answer 431
    /// or reset it.
    RequestTooLarge { stream: u32, end_stream: bool },
    /// A request's trailer section; the request is complete.
    Trailers {
        stream: u32,
        headers: &'a HeaderList,
    },
    /// Request body bytes; report them with `consumed` once passed on.
    Data {
        stream: u32,
        data: &'a [u8],
        end_stream: bool,
    },
    /// The stream is gone (reset by the client, or by us for its error): abandon its
    /// exchange.
    Reset { stream: u32, code: ErrorCode },
    /// The client's window grew for `stream`, or for the connection (0: every stream
    /// with something pending may try again).
    WindowOpened { stream: u32 },
    /// The client's GOAWAY.
    GoAway { last_stream: u32, code: ErrorCode },
}

/// An `Event` without its borrows, so that frame handling can return it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Emit {
    Request {
        stream: u32,
        end_stream: bool,
    },
    RequestTooLarge {
        stream: u32,
        end_stream: bool,
    },
    Trailers {
        stream: u32,
    },
    Data {
        stream: u32,
        at: Range<usize>,
        end_stream: bool,
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
}

/// The connection ended with a GOAWAY of this code, queued in the output: write it, then
/// close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoAway {
    pub code: ErrorCode,
    pub last_stream: u32,
}

/// A header block being received across CONTINUATION frames.
#[derive(Clone, Copy, Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    self_dependent: bool,
    frames: u32,
}

pub struct Connection {
    state: State,
    limits: Limits,
    /// The client's settings.
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
    /// The highest stream id the client used: ids up to it are open or closed, never idle.
    last_peer_stream: u32,
    output: Vec<u8>,
    /// Frames the client provoked that sit in `output`.
    provoked: u32,
    flood: Flood,
    resets: Resets,
    /// An encoded header block before it is framed, reused.
    scratch: Vec<u8>,
}

impl Connection {
    /// A server connection that has sent nothing yet: its SETTINGS and the connection
    /// window's WINDOW_UPDATE are queued at once (§3.4 allows them before the preface).
    pub fn new(limits: Limits, now: Instant) -> Self {
        let ours = Settings {
            header_table_size: limits.header_table_size,
            max_concurrent_streams: limits.max_concurrent_streams,
            max_header_list_size: limits.max_header_list_size,
            ..Settings::default()
        };
        let mut output = Vec::new();
        let params: Vec<(u16, u32)> = ours.changed().collect();
        frame::encode_settings(&mut output, &params);
        let extra = limits.connection_window.saturating_sub(DEFAULT_WINDOW);
        if extra > 0 {
            frame::encode_window_update(&mut output, 0, extra);
        }
        Self {
            state: State::AwaitingPreface,
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
            last_peer_stream: 0,
            output,
            provoked: 0,
            flood: Flood::new(now),
            resets: Resets::default(),
            scratch: Vec::new(),
            limits,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Reads frames from `input` until one makes an event or no whole frame is left;
    /// returns the bytes used (drop them from the input) and the event. On a connection
    /// error the GOAWAY is queued and the connection is closed.
    pub fn next_event<'a>(
        &'a mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Event<'a>>), GoAway> {
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

    fn event<'a>(&'a self, emit: Emit, input: &'a [u8], start: usize) -> Event<'a> {
        match emit {
            Emit::Request { stream, end_stream } => Event::Request {
                stream,
                headers: &self.headers,
                end_stream,
            },
            Emit::RequestTooLarge { stream, end_stream } => {
                Event::RequestTooLarge { stream, end_stream }
            }
            Emit::Trailers { stream } => Event::Trailers {
                stream,
                headers: &self.headers,
            },
            Emit::Data {
                stream,
                at,
                end_stream,
            } => Event::Data {
                stream,
                data: input
                    .get(start + at.start..start + at.end)
                    .unwrap_or_default(),
                end_stream,
            },
            Emit::Reset { stream, code } => Event::Reset { stream, code },
            Emit::WindowOpened { stream } => Event::WindowOpened { stream },
            Emit::GoAway { last_stream, code } => Event::GoAway { last_stream, code },
        }
    }

    /// One frame (or the preface): the bytes it took and the event it makes, `Ok(None)`
    /// when more input is needed; `Err` is a connection error.
    fn step(
        &mut self,
        input: &[u8],
        now: Instant,
    ) -> Result<Option<(usize, Option<Emit>)>, ErrorCode> {
        match self.state {
            State::Closed => return Ok(None),
            State::AwaitingPreface => {
                let seen = input.len().min(PREFACE.len());
                if input.get(..seen) != PREFACE.get(..seen) {
                    return Err(ErrorCode::PROTOCOL_ERROR);
                }
                if seen < PREFACE.len() {
                    return Ok(None);
                }
                self.state = State::AwaitingSettings;
                return Ok(Some((PREFACE.len(), None)));
            }
            State::AwaitingSettings | State::Open | State::GoingAway { .. } => {}
        }
        let Some(head) = Head::parse(input) else {
            return Ok(None);
        };
        // §3.4: the client's preface ends with a SETTINGS frame.
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
            // §8.4: a client cannot push.
            Frame::PushPromise { .. } => return Err(ErrorCode::PROTOCOL_ERROR),
            Frame::GoAway {
                last_stream, code, ..
            } => {
                self.flood.idle(now, &self.limits)?;
                Some(Emit::GoAway { last_stream, code })
            }
            // Priority signals are deprecated (§5.3.2) and unknown frames ignored (§5.5):
            // both only cost work.
            Frame::Priority { .. } | Frame::Unknown { .. } => {
                self.flood.idle(now, &self.limits)?;
                None
            }
        };
        Ok(Some((used, emit)))
    }

    /// Queues the GOAWAY for a connection error and closes.
    fn fail(&mut self, code: ErrorCode) -> GoAway {
        frame::encode_goaway(&mut self.output, self.last_peer_stream, code, &[]);
        self.open_block = None;
        self.streams.clear();
        self.state = State::Closed;
        GoAway {
            code,
            last_stream: self.last_peer_stream,
        }
    }

    /// Counts one more frame the client made us queue; too many unread is
    /// ENHANCE_YOUR_CALM.
    fn provoke(&mut self) -> Result<(), ErrorCode> {
        self.provoked = self.provoked.saturating_add(1);
        match self.provoked > self.limits.max_queued_control_frames {
            true => Err(ErrorCode::ENHANCE_YOUR_CALM),
            false => Ok(()),
        }
    }

    /// Since when our SETTINGS have gone unacknowledged (§6.5.3: past the caller's
    /// deadline, `abort(ErrorCode::SETTINGS_TIMEOUT)`).
    pub fn settings_unacked_since(&self) -> Option<Instant> {
        self.settings_sent_at
    }

    /// Since when `stream` (0: the connection) has had data to send and too small a window
    /// from the client to send it; WINDOW_UPDATEs that leave the window below
    /// `Limits::useful_window` do not reset it.
    pub fn stalled_since(&self, stream: u32) -> Option<Instant> {
        match stream {
            0 => self.stalled_since,
            _ => self.streams.get(stream).and_then(|s| s.stalled_since),
        }
    }

    /// The longest stall, connection (0) or stream, for the caller's one timer.
    pub fn oldest_stall(&self) -> Option<(u32, Instant)> {
        let streams = self
            .streams
            .iter()
            .filter_map(|s| s.stalled_since.map(|at| (s.id, at)));
        self.stalled_since
            .map(|at| (0, at))
            .into_iter()
            .chain(streams)
            .min_by_key(|&(_, at)| at)
    }

    /// A header block has begun and its END_HEADERS has not come: like a partial HTTP/1.1
    /// head, the caller gives it a deadline.
    pub fn in_header_block(&self) -> bool {
        self.open_block.is_some()
    }

    /// Live streams, for the caller's accounting.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }
}
