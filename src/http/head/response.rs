//! A backend's response head: its framing, whether either connection may be kept,
//! and the head written for the client.

use super::fields::{
    self, MessageFields, Overflow, copy_fields, has_bare_lf, offset, switches_to_offered,
    within_field_limit,
};
use super::{MAX_HEADER_BLOCK, MAX_HEADERS, MAX_REQUEST_LINE, Method, RequestId};
use crate::buffer::Buffer;
use crate::http::body::Framing;
use crate::route::Edits;

/// What the proxy needs to know about a backend's response head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead {
    pub status: u16,
    pub len: usize,
    /// How the body is framed as it arrives from the backend.
    pub framing: Framing,
    /// The backend connection may carry another request after this response.
    pub reusable: bool,
    /// The client connection must close after this response.
    pub close_client: bool,
    /// Chunked framing is stripped on the way out (for an HTTP/1.0 client).
    pub dechunk: bool,
}

impl ResponseHead {
    /// 1xx but 101: more responses follow.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && !self.is_switch()
    }

    /// 101 Switching Protocols: what follows is the new protocol.
    pub fn is_switch(&self) -> bool {
        self.status == 101
    }
}

/// What the client side of an exchange asked for, which shapes the response we forward.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide {
    pub method: Method,
    pub version: u8,
    pub keep_alive: bool,
    /// The request asked for an upgrade: a 101 is welcome.
    pub upgrade: bool,
}

impl ClientSide {
    /// While lb drains before exiting, every response tells its client to close.
    pub fn unless_draining(self, draining: bool) -> Self {
        ClientSide {
            keep_alive: self.keep_alive && !draining,
            ..self
        }
    }
}

/// Parses a backend's response head at the start of `buf` and writes the head for the
/// client into `out`. `offered` is the request's Upgrade value, which a 101 must keep to.
/// `Err` carries why the response is unusable (answered with 502).
pub fn parse_response(
    buf: &[u8],
    client: ClientSide,
    offered: &[u8],
    (request_id, rules): (&RequestId, Option<&Edits>),
    out: &mut Buffer,
) -> Result<Option<ResponseHead>, &'static str> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_REQUEST_LINE + MAX_HEADER_BLOCK => {
            return Err("response head too large");
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("malformed response head"),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err("malformed status line");
    };
    let switching = status == 101;
    if switching && !client.upgrade {
        return Err("101 Switching Protocols to a request that asked for no upgrade");
    }
    if has_bare_lf(&buf[..len]) {
        return Err("line ending without CR");
    }
    let headers = &*resp.headers;
    let mut msg = MessageFields::default();
    let mut has_id = false;
    for (i, h) in headers.iter().enumerate() {
        if !msg.read(i, h)? && h.name.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        }
    }
    msg.check(false)?;
    // A 101 to a protocol the client did not offer would turn its connection into a
    // tunnel of bytes it cannot read.
    if switching
        && !msg
            .upgrade_field
            .is_some_and(|i| switches_to_offered(headers[i].value, offered))
    {
        return Err("101 Switching Protocols to a protocol the request did not offer");
    }
    let (chunked, content_length) = (msg.chunked, msg.content_length);
    let bodiless = client.method == Method::Head
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    let framing = match (bodiless, chunked, content_length) {
        (true, _, _) => Framing::Done,
        (false, true, _) => Framing::chunked(),
        (false, false, Some(0)) => Framing::Done,
        (false, false, Some(n)) => Framing::Length(n),
        (false, false, None) => Framing::UntilClose,
    };
    let until_close = framing == Framing::UntilClose;
    let dechunk = chunked && !bodiless && client.version == 0;
    // Framing fields on a status that has no body say nothing we can trust about where
    // the next response starts; and an HTTP/1.0 message with Transfer-Encoding is to be
    // read as faulty framing and its connection closed (RFC 9112 §6.1).
    let no_body_status = (100..200).contains(&status) || status == 204 || status == 304;
    let doubtful = (no_body_status && chunked)
        || (status == 204 && content_length.is_some_and(|n| n > 0))
        || (chunked && version == 0);
    let reusable = !msg.close && (version == 1 || msg.keep_alive) && !until_close && !doubtful;
    let close_client = !client.keep_alive || until_close || dechunk || (chunked && version == 0);
    let too_big = "response head too large to forward";
    let first_header = headers
        .first()
        .map_or(len - 2, |h| offset(buf, h.name.as_bytes()));
    fields::put(out, &buf[..first_header]).map_err(|Overflow| too_big)?;
    // 1xx and 204 must not carry framing fields (RFC 9110 §8.6); a 304's are dropped as
    // nginx does, so that no client takes them for a body to wait for.
    // A 101's Upgrade field goes on: it names the protocol that follows.
    // The route's rules shape the final answer, not an interim one.
    let final_head = switching || !(100..200).contains(&status);
    let drop = |i: usize, h: &httparse::Header| {
        let te = h.name.eq_ignore_ascii_case("transfer-encoding");
        let framing_field = te || h.name.eq_ignore_ascii_case("content-length");
        let kept_upgrade = switching && Some(i) == msg.upgrade_field;
        (!kept_upgrade && msg.is_hop_by_hop(h.name, headers))
            || (dechunk && te)
            || (no_body_status && framing_field)
            || (final_head && rules.is_some_and(|r| r.drops(h.name)))
    };
    let kept = copy_fields(out, buf, headers, len - 2, drop, |_, _, _| Ok(()))
        .map_err(|Overflow| too_big)?;
    let connection = switching || close_client || client.version == 0;
    let ours = usize::from(final_head) * (usize::from(connection) + usize::from(!has_id));
    within_field_limit(kept + ours).map_err(|Overflow| too_big)?;
    let put = |out: &mut Buffer, b: &[u8]| fields::put(out, b).map_err(|Overflow| too_big);
    if final_head {
        if switching {
            put(out, b"Connection: upgrade\r\n")?;
        } else if close_client {
            put(out, b"Connection: close\r\n")?;
        } else if client.version == 0 {
            put(out, b"Connection: keep-alive\r\n")?;
        }
        if !has_id {
            put(out, b"X-Request-Id: ")?;
            put(out, request_id.as_bytes())?;
            put(out, b"\r\n")?;
        }
        if let Some(rules) = rules {
            rules.write_added(out).map_err(|_| too_big)?;
        }
    }
    put(out, b"\r\n")?;
    Ok(Some(ResponseHead {
        status,
        len,
        framing,
        reusable,
        close_client,
        dechunk,
    }))
}
