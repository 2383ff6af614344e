//! A raw-frame client driving a server `Connection`: it writes any frame sequence, and
//! records the events the connection made and the frames it sent back.

use std::time::{Duration, Instant};

use crate::h2::connection::{Connection, Event, PREFACE};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{self, Head, flag, kind};
use crate::h2::hpack::Encoder;
use crate::h2::limits::Limits;

/// An `Event`, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Request {
        stream: u32,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        end_stream: bool,
    },
    TooLarge(u32),
    Trailers(u32),
    Data {
        stream: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Reset(u32, ErrorCode),
    Window(u32),
    GoAway(u32, ErrorCode),
}

/// A frame the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Sent {
    pub fn code(&self) -> ErrorCode {
        let at = if self.kind == kind::GOAWAY { 4 } else { 0 };
        let b = self.payload.get(at..at + 4).unwrap_or(&[0; 4]);
        ErrorCode(u32::from_be_bytes(b.try_into().unwrap()))
    }
}

pub const REQUEST: &[(&[u8], &[u8])] = &[
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/"),
    (b":authority", b"example.com"),
];

pub fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = u32::try_from(payload.len()).unwrap();
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_settings(&mut out, params);
    out
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_window_update(&mut out, stream, increment);
    out
}

pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_data(&mut out, stream, bytes, end_stream);
    out
}

pub fn rst(stream: u32, code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_rst_stream(&mut out, stream, code);
    out
}

pub fn ping() -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_ping(&mut out, *b"12345678", false);
    out
}

pub struct Client {
    pub conn: Connection,
    pub now: Instant,
    encoder: Encoder,
    pub events: Vec<Ev>,
    /// The connection's error, if it ended with one.
    pub failed: Option<ErrorCode>,
    pub sent: Vec<Sent>,
    unparsed: Vec<u8>,
}

impl Client {
    /// A client that sent its preface and SETTINGS, and read (and acknowledged) the
    /// server's.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let mut client = Self::raw(limits);
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(&[]));
        hello.extend(raw(kind::SETTINGS, flag::ACK, 0, &[]));
        client.send(&hello);
        assert_eq!(client.failed, None);
        client.take_sent();
        client
    }

    /// A client that has sent nothing yet.
    pub fn raw(limits: Limits) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(limits, now),
            now,
            encoder: Encoder::new(),
            events: Vec::new(),
            failed: None,
            sent: Vec::new(),
            unparsed: Vec::new(),
        }
    }

    pub fn later(&mut self, by: Duration) {
        self.now += by;
    }

    /// A header block for `fields`, as HEADERS (and CONTINUATIONs if it is large).
    pub fn block(&mut self, fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut block = Vec::new();
        self.encoder.encode(fields.iter().copied(), &mut block);
        block
    }

    pub fn headers_frame(
        &mut self,
        stream: u32,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> Vec<u8> {
        let block = self.block(fields);
        let mut out = Vec::new();
        frame::encode_headers(
            &mut out,
            stream,
            &block,
            end_stream,
            frame::DEFAULT_MAX_FRAME_SIZE,
        );
        out
    }

    pub fn request(&mut self, stream: u32, end_stream: bool) -> Vec<u8> {
        self.headers_frame(stream, REQUEST, end_stream)
    }

    /// Feeds `bytes` to the connection, collecting events until they are used up or the
    /// connection fails; returns the events of this call.
    pub fn send(&mut self, bytes: &[u8]) -> Vec<Ev> {
        let first = self.events.len();
        let mut at = 0;
        while self.failed.is_none() {
            match self.conn.next_event(&bytes[at..], self.now) {
                Err(goaway) => self.failed = Some(goaway.code),
                Ok((n, event)) => {
                    at += n;
                    match event {
                        Some(event) => self.events.push(own(event)),
                        None => break,
                    }
                }
            }
        }
        self.read_output();
        self.events[first..].to_vec()
    }

    fn read_output(&mut self) {
        self.conn.take_output(&mut self.unparsed);
        let mut at = 0;
        while let Some(head) = Head::parse(&self.unparsed[at..]) {
            let end = at + frame::HEADER_LEN + head.len as usize;
            if end > self.unparsed.len() {
                break;
            }
            self.sent.push(Sent {
                kind: head.kind,
                flags: head.flags,
                stream: head.stream,
                payload: self.unparsed[at + frame::HEADER_LEN..end].to_vec(),
            });
            at = end;
        }
        self.unparsed.drain(..at);
    }

    /// The frames the server sent since the last call.
    pub fn take_sent(&mut self) -> Vec<Sent> {
        self.read_output();
        std::mem::take(&mut self.sent)
    }

    /// The GOAWAY the server sent, if any: its code.
    pub fn goaway(&mut self) -> Option<ErrorCode> {
        self.read_output();
        self.sent
            .iter()
            .find(|f| f.kind == kind::GOAWAY)
            .map(Sent::code)
    }

    /// The RST_STREAMs the server sent.
    pub fn resets(&mut self) -> Vec<(u32, ErrorCode)> {
        self.read_output();
        self.sent
            .iter()
            .filter(|f| f.kind == kind::RST_STREAM)
            .map(|f| (f.stream, f.code()))
            .collect()
    }
}

fn own(event: Event<'_>) -> Ev {
    match event {
        Event::Request {
            stream,
            headers,
            end_stream,
        } => Ev::Request {
            stream,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
            end_stream,
        },
        Event::RequestTooLarge { stream, .. } => Ev::TooLarge(stream),
        Event::Trailers { stream, .. } => Ev::Trailers(stream),
        Event::Data {
            stream,
            data,
            end_stream,
        } => Ev::Data {
            stream,
            data: data.to_vec(),
            end_stream,
        },
        Event::Reset { stream, code } => Ev::Reset(stream, code),
        Event::WindowOpened { stream } => Ev::Window(stream),
        Event::GoAway { last_stream, code } => Ev::GoAway(last_stream, code),
    }
}
