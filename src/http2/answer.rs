//! A stream's answer, as lb's HTTP/1 code wrote it for its client side, turned into
//! HEADERS and DATA frames within the client's windows: the head becomes a header list
//! (`h2::message::response_head`), the body its payload without the HTTP/1.1 framing,
//! and a chunked body's trailers a trailing HEADERS (gRPC's status travels there).

use std::time::Instant;

use crate::conn::StreamIo;
use crate::h2::connection::{Connection, SendError};
use crate::h2::hpack::HeaderList;
use crate::h2::message::{ResponseKind, response_head, response_trailers};
use crate::http::body::{Framing, Segment};
use crate::http::chunked::Part;

/// The most fields an answer head may have here; lb's own HTTP/1 code writes the head, so
/// more means a backend sent more than any HTTP/2 client should get.
const MAX_FIELDS: usize = 256;

/// Where a stream's answer is.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Waiting for (the rest of) a head: the first, or the final one after a 1xx.
    Head,
    /// Sending the body; `Framing` says which bytes are payload.
    Body(Framing),
    /// The stream's END_STREAM went out.
    Done,
}

/// The answer cannot be relayed (a head lb could not read, a 101 nobody asked for): the
/// stream is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrelayable;

impl From<SendError> for Unrelayable {
    fn from(_: SendError) -> Self {
        Unrelayable
    }
}

impl Answer {
    pub fn is_done(&self) -> bool {
        matches!(self, Answer::Done)
    }

    /// Frames what `io.answer` holds, as far as the windows let; removes what went.
    /// `head_only`: the request was a HEAD, whose answer has no body whatever it says.
    pub fn pump(
        &mut self,
        codec: &mut Connection,
        (id, head_only): (u32, bool),
        io: &mut StreamIo,
        list: &mut HeaderList,
        now: Instant,
    ) -> Result<(), Unrelayable> {
        loop {
            match *self {
                Answer::Done => return Ok(()),
                Answer::Head => {
                    let Some((used, next)) = head(codec, id, head_only, &io.answer, list)? else {
                        return match io.answer_ended {
                            true => Err(Unrelayable),
                            false => Ok(()),
                        };
                    };
                    io.answer.drain(..used);
                    *self = next;
                }
                Answer::Body(framing) => {
                    let (used, next) = body(codec, id, framing, io, list, now)?;
                    io.answer.drain(..used);
                    let stuck = used == 0 && matches!(next, Answer::Body(_));
                    *self = next;
                    if stuck {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Reads one head from `answer` and sends its HEADERS; `None` until it is whole.
fn head(
    codec: &mut Connection,
    id: u32,
    head_only: bool,
    answer: &[u8],
    list: &mut HeaderList,
) -> Result<Option<(usize, Answer)>, Unrelayable> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Response::new(&mut fields);
    let used = match parsed.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Unrelayable),
    };
    let status = parsed.code.ok_or(Unrelayable)?;
    let fields = parsed.headers.iter().map(|h| (h.name, h.value));
    let kind = response_head(status, fields.clone(), list).map_err(|_| Unrelayable)?;
    let framing = match kind {
        ResponseKind::Tunnel => return Err(Unrelayable),
        ResponseKind::Interim => None,
        ResponseKind::Final if head_only || status == 204 || status == 304 => Some(Framing::Done),
        ResponseKind::Final => Some(body_framing(fields)?),
    };
    let next = match framing {
        None => Answer::Head,
        Some(Framing::Done) => Answer::Done,
        Some(framing) => Answer::Body(framing),
    };
    codec.send_headers(id, list.iter(), next.is_done())?;
    Ok(Some((used, next)))
}

/// How the body of a final answer is framed: lb's HTTP/1 code passes on chunked answers
/// as they came, and otherwise a length or the end of the answer.
fn body_framing<'a>(
    mut fields: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<Framing, Unrelayable> {
    let mut framing = Framing::UntilClose;
    for (name, value) in fields.by_ref() {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Ok(Framing::chunked());
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(Unrelayable)?;
            framing = match n {
                0 => Framing::Done,
                n => Framing::Length(n),
            };
        }
    }
    Ok(framing)
}

/// Sends body payload from `io.answer` until the windows or the input run out; returns
/// the bytes used and where the answer is then.
fn body(
    codec: &mut Connection,
    id: u32,
    mut framing: Framing,
    io: &StreamIo,
    list: &mut HeaderList,
    now: Instant,
) -> Result<(usize, Answer), Unrelayable> {
    let mut used = 0;
    loop {
        let rest = io.answer.get(used..).unwrap_or_default();
        if rest.is_empty() {
            if io.answer_ended {
                // Closed before its length or last chunk: the client must not take it
                // for whole.
                if !matches!(framing, Framing::UntilClose) {
                    return Err(Unrelayable);
                }
                codec.send_data(id, &[], true, now)?;
                return Ok((used, Answer::Done));
            }
            return Ok((used, Answer::Body(framing)));
        }
        let mut after = framing;
        match after.next(rest).map_err(|_| Unrelayable)? {
            None => return Ok((used, Answer::Done)),
            Some(Segment::Framing(n)) => {
                if in_trailers(&after) {
                    // The trailer section is sent whole: wait for its end, unless the
                    // answer was cut off inside it.
                    if io.answer_ended {
                        return Err(Unrelayable);
                    }
                    return Ok((used, Answer::Body(framing)));
                }
                let section = trailer_section(framing, rest.get(..n).unwrap_or_default());
                used += n;
                framing = after;
                if framing.is_done() {
                    end_with_trailers(codec, id, section, list, now)?;
                    return Ok((used, Answer::Done));
                }
            }
            Some(Segment::Data(n)) => {
                let payload = rest.get(..n).unwrap_or_default();
                let end = after.is_done();
                let sent = codec.send_data(id, payload, end, now)?;
                if sent == n {
                    used += n;
                    framing = after;
                    if end {
                        return Ok((used, Answer::Done));
                    }
                    continue;
                }
                // The windows took part of it: the framing counts only what went.
                let _ = framing.next(payload.get(..sent).unwrap_or_default());
                return Ok((used + sent, Answer::Body(framing)));
            }
        }
    }
}

/// Inside a chunked body's trailer section, before its final CRLF.
fn in_trailers(framing: &Framing) -> bool {
    matches!(
        framing,
        Framing::Chunked(c) if matches!(
            c.part,
            Part::TrailerStart | Part::TrailerName | Part::TrailerValue | Part::TrailerLf | Part::FinalLf
        )
    )
}

/// The trailer fields (with the final CRLF) in `bytes`, framing read from `before`: what
/// follows the last chunk's size line.
fn trailer_section(before: Framing, bytes: &[u8]) -> &[u8] {
    let Framing::Chunked(mut c) = before else {
        return &[];
    };
    for (i, &b) in bytes.iter().enumerate() {
        if c.step(b).is_err() {
            return &[];
        }
        if c.part == Part::TrailerStart {
            return bytes.get(i + 1..).unwrap_or_default();
        }
    }
    &[]
}

/// Ends the stream: with a HEADERS of the trailers if the section has any that may cross,
/// else with an empty DATA.
fn end_with_trailers(
    codec: &mut Connection,
    id: u32,
    section: &[u8],
    list: &mut HeaderList,
    now: Instant,
) -> Result<(), Unrelayable> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let parsed = match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        _ => &[],
    };
    list.clear();
    if !parsed.is_empty() {
        response_trailers(parsed.iter().map(|h| (h.name, h.value)), list)
            .map_err(|_| Unrelayable)?;
    }
    match list.is_empty() {
        true => codec.send_data(id, &[], true, now)?,
        false => {
            codec.send_headers(id, list.iter(), true)?;
            0
        }
    };
    Ok(())
}
