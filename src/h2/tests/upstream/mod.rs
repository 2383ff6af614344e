//! The client codec (`h2::client`): against lb's own server `Connection` in memory, against
//! a raw-frame server that breaks the rules one at a time, and the mapping of messages
//! between HTTP/1.1 and a backend's HTTP/2.

mod exchange;
mod floods;
mod hostile;
mod mapping;

use std::time::Instant;

use super::client::{Ev, Sent};
use crate::h2::client::{ClientConnection, ClientEvent};
use crate::h2::connection::{Connection, Event};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{self, Head};
use crate::h2::hpack::{Encoder, HeaderList};
use crate::h2::limits::Limits;

pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A `ClientEvent`, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CEv {
    Interim(u32, u16),
    Response {
        stream: u32,
        status: u16,
        headers: Fields,
        end_stream: bool,
    },
    Data {
        stream: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Trailers(u32, Fields),
    Reset(u32, ErrorCode),
    Window(u32),
    GoAway(u32, ErrorCode),
    Settings,
}

fn fields(list: &HeaderList) -> Fields {
    list.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

pub fn list(fields: &[(&str, &str)]) -> HeaderList {
    let mut list = HeaderList::new();
    for (name, value) in fields {
        list.push(name.as_bytes(), value.as_bytes());
    }
    list
}

pub fn get(path: &str) -> HeaderList {
    list(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "backend"),
        (":path", path),
    ])
}

fn own(event: ClientEvent<'_>) -> CEv {
    match event {
        ClientEvent::Interim { stream, status, .. } => CEv::Interim(stream, status),
        ClientEvent::Response {
            stream,
            status,
            headers,
            end_stream,
        } => CEv::Response {
            stream,
            status,
            headers: fields(headers),
            end_stream,
        },
        ClientEvent::Data {
            stream,
            data,
            end_stream,
        } => CEv::Data {
            stream,
            data: data.to_vec(),
            end_stream,
        },
        ClientEvent::Trailers { stream, headers } => CEv::Trailers(stream, fields(headers)),
        ClientEvent::Reset { stream, code } => CEv::Reset(stream, code),
        ClientEvent::WindowOpened { stream } => CEv::Window(stream),
        ClientEvent::GoAway { last_stream, code } => CEv::GoAway(last_stream, code),
        ClientEvent::SettingsChanged => CEv::Settings,
    }
}

fn own_server(event: Event<'_>) -> Ev {
    match event {
        Event::Request {
            stream,
            headers,
            end_stream,
        } => Ev::Request {
            stream,
            headers: fields(headers),
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

/// Feeds `input` to the client until it is used up or the connection fails; the events,
/// and the connection's error if it failed.
fn feed_client(
    client: &mut ClientConnection,
    input: &mut Vec<u8>,
    now: Instant,
    events: &mut Vec<CEv>,
) -> Option<ErrorCode> {
    loop {
        match client.next_event(input, now) {
            Err(goaway) => return Some(goaway.code),
            Ok((n, event)) => {
                let event = event.map(own);
                input.drain(..n);
                match event {
                    Some(event) => events.push(event),
                    None => return None,
                }
            }
        }
    }
}

/// lb's client codec and lb's server codec, each writing to the other in memory.
pub struct Pair {
    pub client: ClientConnection,
    pub server: Connection,
    pub now: Instant,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// What each side saw since the last `take_events`.
    pub client_events: Vec<CEv>,
    pub server_events: Vec<Ev>,
}

impl Pair {
    /// Both sides after the handshake: prefaces, SETTINGS and their acks exchanged.
    pub fn new(client: Limits, server: Limits) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            client: ClientConnection::new(client, now),
            server: Connection::new(server, now),
            now,
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        };
        pair.pump();
        assert_eq!(pair.client.settings_unacked_since(), None);
        assert_eq!(pair.server.settings_unacked_since(), None);
        pair.take_events();
        pair
    }

    /// Moves bytes both ways until neither side has anything more to say.
    pub fn pump(&mut self) {
        loop {
            self.client.take_output(&mut self.to_server);
            self.server.take_output(&mut self.to_client);
            if self.to_server.is_empty() && self.to_client.is_empty() {
                return;
            }
            loop {
                match self.server.next_event(&self.to_server, self.now) {
                    Err(goaway) => panic!("the server failed: {goaway:?}"),
                    Ok((n, event)) => {
                        let event = event.map(own_server);
                        self.to_server.drain(..n);
                        match event {
                            Some(event) => self.server_events.push(event),
                            None => break,
                        }
                    }
                }
            }
            if let Some(code) = feed_client(
                &mut self.client,
                &mut self.to_client,
                self.now,
                &mut self.client_events,
            ) {
                panic!("the client failed: {code:?}");
            }
        }
    }

    pub fn take_events(&mut self) -> (Vec<CEv>, Vec<Ev>) {
        (
            std::mem::take(&mut self.client_events),
            std::mem::take(&mut self.server_events),
        )
    }
}

/// A server that writes raw frames to the client codec and reads what it sends back.
pub struct RawServer {
    pub client: ClientConnection,
    pub now: Instant,
    pub encoder: Encoder,
    pub events: Vec<CEv>,
    pub failed: Option<ErrorCode>,
    sent: Vec<u8>,
}

impl RawServer {
    /// After the handshake: the server's SETTINGS (`params`) and its ack of ours.
    pub fn new(limits: Limits, params: &[(u16, u32)]) -> Self {
        let now = Instant::now();
        let mut server = Self {
            client: ClientConnection::new(limits, now),
            now,
            encoder: Encoder::new(),
            events: Vec::new(),
            failed: None,
            sent: Vec::new(),
        };
        let mut hello = Vec::new();
        frame::encode_settings(&mut hello, params);
        frame::encode_settings_ack(&mut hello);
        server.send(&hello);
        assert_eq!(server.failed, None);
        server.frames();
        server
    }

    /// Feeds `bytes` to the client; the events of this call.
    pub fn send(&mut self, bytes: &[u8]) -> Vec<CEv> {
        let first = self.events.len();
        let mut input = bytes.to_vec();
        if self.failed.is_none() {
            self.failed = feed_client(&mut self.client, &mut input, self.now, &mut self.events);
        }
        self.events[first..].to_vec()
    }

    /// A response header block for `fields`, as HEADERS and CONTINUATIONs.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let mut block = Vec::new();
        self.encoder.encode(
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &mut block,
        );
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

    /// Every frame the client sent since the last call (the preface's magic skipped).
    pub fn frames(&mut self) -> Vec<Sent> {
        self.client.take_output(&mut self.sent);
        let mut bytes = std::mem::take(&mut self.sent);
        if bytes.starts_with(crate::h2::connection::PREFACE) {
            bytes.drain(..crate::h2::connection::PREFACE.len());
        }
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(head) = Head::parse(&bytes[at..]) {
            let end = at + frame::HEADER_LEN + head.len as usize;
            out.push(Sent {
                kind: head.kind,
                flags: head.flags,
                stream: head.stream,
                payload: bytes[at + frame::HEADER_LEN..end].to_vec(),
            });
            at = end;
        }
        out
    }

    /// The RST_STREAMs and GOAWAYs the client sent since the last call.
    pub fn errors(&mut self) -> Vec<(u8, u32, ErrorCode)> {
        self.frames()
            .into_iter()
            .filter(|f| f.kind == frame::kind::RST_STREAM || f.kind == frame::kind::GOAWAY)
            .map(|f| (f.kind, f.stream, f.code()))
            .collect()
    }
}
