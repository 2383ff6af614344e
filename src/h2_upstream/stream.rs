//! One exchange's stream to an HTTP/2 backend: the HTTP/1.1 request that lb's HTTP/1
//! code writes into the stream's `StreamIo` (its `answer` side here) is read as a head
//! (`message::request_list`) and a body in the framing the head names, and sent as
//! HEADERS and DATA; the response events are written back as an HTTP/1.1 response
//! (`message::write_response_head`) into the side the HTTP/1 code reads (`request`):
//! DATA as body bytes, chunked when there is no length, and trailers as chunked
//! trailers.
//!
//! For a backend stream the `StreamIo` roles are mirrored: `answer` carries the request
//! out, `request` the response in, and `credit` the response body the exchange took.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use crate::conn::StreamIo;
use crate::h2::client::{ClientConnection, OpenError};
use crate::h2::error::ErrorCode;
use crate::h2::hpack::HeaderList;
use crate::h2::message::{
    BodyFraming, LAST_CHUNK, check_response, put_chunk_size, request_list, write_response_head,
    write_trailers,
};
use crate::http::body::{Framing, Segment};

/// The most fields a request head may have; lb's own HTTP/1 code wrote it.
const MAX_FIELDS: usize = 128;

/// Where the request is in going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// Waiting for (the rest of) its head.
    Head,
    /// Its body, as framed in HTTP/1.1.
    Body(Framing),
    /// END_STREAM went out.
    Done,
    /// The server answered whole and stopped the request (RST_STREAM NO_ERROR): what the
    /// exchange still writes is dropped.
    Discard,
}

/// Where the response is in coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiving {
    Head,
    Body(BodyFraming),
    Done,
}

/// Why a stream ends before its exchange is done with it: the exchange's next read fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken(pub &'static str);

pub struct Stream {
    /// Its exchange's backend connection: slab key and serial.
    pub upstream: (usize, u32),
    pub io: Rc<RefCell<StreamIo>>,
    /// Its id once opened on the connection.
    pub id: Option<u32>,
    sending: Sending,
    receiving: Receiving,
    /// A HEAD request: no body follows the response head.
    head_only: bool,
    /// The exchange has something new to read or room to write since it last looked.
    pub news: bool,
    /// Its exchange was let hand its request over (its `UpstreamConn` is `Busy`).
    pub admitted: bool,
}

impl Stream {
    pub fn new(upstream: (usize, u32), io: Rc<RefCell<StreamIo>>) -> Self {
        Stream {
            upstream,
            io,
            id: None,
            sending: Sending::Head,
            receiving: Receiving::Head,
            head_only: false,
            news: false,
            admitted: false,
        }
    }

    /// The response came whole and the request went whole: the server is done with it.
    pub fn complete(&self) -> bool {
        self.receiving == Receiving::Done
            && matches!(self.sending, Sending::Done | Sending::Discard)
    }

    /// Opens the stream once its request head is whole. `Ok(false)`: not yet (no whole
    /// head, or the connection has no room for another stream); `Err`: the request cannot
    /// go to this backend as HTTP/2.
    pub fn open(
        &mut self,
        codec: &mut ClientConnection,
        list: &mut HeaderList,
        scheme: &str,
    ) -> Result<bool, Broken> {
        let io = self.io.borrow();
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut parsed = httparse::Request::new(&mut fields);
        let used = match parsed.parse(&io.answer) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(_) => return Err(Broken("request head lb could not read back")),
        };
        let method = parsed.method.unwrap_or_default();
        let target = parsed.path.unwrap_or_default().as_bytes();
        let fields = parsed.headers.iter().map(|h| (h.name, h.value));
        request_list(method, target, scheme, fields.clone(), list).map_err(Broken)?;
        // lb's HTTP/1 code drops TE as hop-by-hop; lb relays trailers whatever the client,
        // and gRPC servers want to be told so.
        if !list.iter().any(|(name, _)| name == b"te") {
            list.push(b"te", b"trailers");
        }
        let body = request_framing(fields).ok_or(Broken("request framing lb could not read"))?;
        let id = match codec.open_stream(list, body.is_done()) {
            Ok(id) => id,
            Err(OpenError::Busy) => return Ok(false),
            Err(OpenError::Closed) => return Err(Broken("connection closing")),
            Err(OpenError::TooLarge) => return Err(Broken("request head over the server's limit")),
        };
        self.head_only = method == "HEAD";
        drop(io);
        self.io.borrow_mut().answer_sent(used);
        self.id = Some(id);
        self.sending = match body {
            Framing::Done => Sending::Done,
            framing => Sending::Body(framing),
        };
        self.news = true;
        Ok(true)
    }

    /// Sends what the windows let of the request body the exchange wrote, and gives the
    /// server back the window for the response body it read.
    pub fn send(&mut self, codec: &mut ClientConnection, now: Instant) -> Result<(), Broken> {
        let Some(id) = self.id else {
            return Ok(());
        };
        let mut io = self.io.borrow_mut();
        let credit = std::mem::take(&mut io.credit);
        if credit > 0 {
            codec.consumed(id, credit);
        }
        match self.sending {
            Sending::Head | Sending::Done => Ok(()),
            Sending::Discard => {
                self.news |= !io.answer.is_empty();
                io.answer.clear();
                Ok(())
            }
            Sending::Body(framing) => {
                let before = io.answer.len();
                let (used, next) = send_body(codec, id, framing, &io, now)?;
                io.answer_sent(used);
                self.sending = next;
                self.news |= io.answer.len() < before;
                Ok(())
            }
        }
    }

    /// The response's head (a 1xx or the final one).
    pub fn response(&mut self, list: &HeaderList, end_stream: bool) -> Result<(), Broken> {
        let mut response = check_response(list).map_err(Broken)?;
        // Headers that end the stream (gRPC's trailers-only answer) are a whole answer:
        // an empty body of known length, not a chunked one whose end comes as DATA.
        let bodiless = matches!(response.status, 100..=199 | 204 | 304);
        if end_stream && response.content_length.is_none() && !bodiless {
            response.content_length = Some(0);
        }
        let mut io = self.io.borrow_mut();
        // Once the server answers, even with a 1xx, it has the request: never replayed.
        io.replay.give_up();
        let framing = write_response_head(&response, list, &mut io.request);
        self.news = true;
        if response.status < 200 {
            return Ok(());
        }
        self.receiving = match (self.head_only, framing) {
            (true, _) | (_, BodyFraming::None) => Receiving::Done,
            (false, framing) => Receiving::Body(framing),
        };
        if end_stream {
            match self.receiving {
                Receiving::Body(BodyFraming::Chunked) => io.request.extend_from_slice(LAST_CHUNK),
                Receiving::Body(BodyFraming::Length(n)) if n > 0 => {
                    return Err(Broken("response ended before its content-length"));
                }
                _ => {}
            }
            self.receiving = Receiving::Done;
        }
        Ok(())
    }

    /// Response body bytes, `end` with the last.
    pub fn data(&mut self, data: &[u8], end: bool) {
        let Receiving::Body(framing) = self.receiving else {
            return;
        };
        self.news = true;
        let mut io = self.io.borrow_mut();
        if !data.is_empty() {
            if framing == BodyFraming::Chunked {
                put_chunk_size(&mut io.request, data.len());
            }
            io.request.extend_from_slice(data);
            if framing == BodyFraming::Chunked {
                io.request.extend_from_slice(b"\r\n");
            }
            io.body_unread = io.body_unread.saturating_add(data.len());
        }
        if end {
            if framing == BodyFraming::Chunked {
                io.request.extend_from_slice(LAST_CHUNK);
            }
            self.receiving = Receiving::Done;
        }
    }

    /// The response's trailers, which end it: chunked trailers for a chunked body; a body
    /// of known length has no place for them in HTTP/1.1.
    pub fn trailers(&mut self, list: &HeaderList) -> Result<(), Broken> {
        self.news = true;
        let mut io = self.io.borrow_mut();
        match self.receiving {
            Receiving::Body(BodyFraming::Chunked) => {
                write_trailers(list, &mut io.request).map_err(Broken)?;
            }
            Receiving::Body(BodyFraming::Length(_)) => {}
            Receiving::Head => return Err(Broken("trailers without a response")),
            Receiving::Body(_) | Receiving::Done => {}
        }
        self.receiving = Receiving::Done;
        Ok(())
    }

    /// The server reset the stream with `code`: NO_ERROR after a whole response only stops
    /// the request body (§8.1); anything else fails the exchange's next read.
    /// REFUSED_STREAM before any answer (also a GOAWAY's, for a stream above its last one)
    /// says the server processed none of the request (§8.7): the exchange may send it
    /// elsewhere (`Replay`).
    pub fn reset(&mut self, code: ErrorCode) -> Option<Broken> {
        self.news = true;
        if code == ErrorCode::NO_ERROR && self.receiving == Receiving::Done {
            self.sending = Sending::Discard;
            return None;
        }
        self.break_off();
        if code == ErrorCode::REFUSED_STREAM && self.receiving == Receiving::Head {
            self.io.borrow_mut().replay.refuse();
            return Some(Broken("stream refused by the backend"));
        }
        Some(Broken("stream reset by the backend"))
    }

    /// The stream is lost: the exchange's next read or write fails.
    pub fn break_off(&self) {
        self.io.borrow_mut().reset = true;
    }

    /// Its connection is gone: a response that came whole is still read (its framing
    /// says where it ends); any other fails.
    pub fn lost(&self) {
        if self.receiving != Receiving::Done {
            self.break_off();
        }
    }

    /// The exchange closed its side: the stream is reset unless it is over.
    pub fn closed(&self, codec: &mut ClientConnection) {
        if let Some(id) = self.id.filter(|_| !self.complete()) {
            codec.send_reset(id, ErrorCode::CANCEL);
        }
    }
}

/// The request body's framing, from the head lb's HTTP/1 code wrote: chunked, a length,
/// or none. `None`: a length lb cannot read.
fn request_framing<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])>) -> Option<Framing> {
    let mut framing = Framing::Done;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Some(Framing::chunked());
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())?;
            framing = match n {
                0 => Framing::Done,
                n => Framing::Length(n),
            };
        }
    }
    Some(framing)
}

/// Sends body payload from `io.answer` until the windows or the bytes run out; returns the
/// bytes used and where the request is then. A chunked body's trailers are not carried:
/// its last chunk ends the stream.
fn send_body(
    codec: &mut ClientConnection,
    id: u32,
    mut framing: Framing,
    io: &StreamIo,
    now: Instant,
) -> Result<(usize, Sending), Broken> {
    let mut used = 0;
    loop {
        let rest = io.answer.get(used..).unwrap_or_default();
        if rest.is_empty() {
            return Ok((used, Sending::Body(framing)));
        }
        let mut after = framing;
        let segment = after
            .next(rest)
            .map_err(|_| Broken("request body framing broken"))?;
        match segment {
            None => return Ok((used, Sending::Body(framing))),
            Some(Segment::Framing(n)) => {
                used += n;
                framing = after;
                if framing.is_done() {
                    send(codec, id, &[], true, now)?;
                    return Ok((used, Sending::Done));
                }
            }
            Some(Segment::Data(n)) => {
                let payload = rest.get(..n).unwrap_or_default();
                // A chunked body ends with its last chunk, which is framing.
                let end = after.is_done();
                let sent = send(codec, id, payload, end, now)?;
                if sent == n {
                    used += n;
                    framing = after;
                    if end {
                        return Ok((used, Sending::Done));
                    }
                    continue;
                }
                let _ = framing.next(payload.get(..sent).unwrap_or_default());
                return Ok((used + sent, Sending::Body(framing)));
            }
        }
    }
}

fn send(
    codec: &mut ClientConnection,
    id: u32,
    data: &[u8],
    end: bool,
    now: Instant,
) -> Result<usize, Broken> {
    codec
        .send_data(id, data, end, now)
        .map_err(|_| Broken("stream closed while sending"))
}
