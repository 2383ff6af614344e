//! A backend's response head: its framing, whether either connection may be kept,
//! and the head written for the client.

use super::{
    MAX_HEADER_BLOCK, MAX_HEADERS, MAX_REQUEST_LINE, Method, RequestId, has_bare_lf, is_hop_by_hop,
    listed_in_connection, offset, parse_length, tokens, trim,
};
use crate::buffer::Buffer;
use crate::http::body::Framing;

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
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// What the client side of an exchange asked for, which shapes the response we forward.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide {
    pub method: Method,
    pub version: u8,
    pub keep_alive: bool,
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
/// client into `out`. `Err` carries why the response is unusable (answered with 502).
pub fn parse_response(
    buf: &[u8],
    client: ClientSide,
    request_id: &RequestId,
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
    if status == 101 {
        return Err("protocol upgrade is not supported");
    }
    if has_bare_lf(&buf[..len]) {
        return Err("line ending without CR");
    }
    let headers = &*resp.headers;
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut has_id = false;
    let mut connection = [0usize; 4];
    let mut n_connection = 0;
    for (i, h) in headers.iter().enumerate() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err("several Content-Length fields");
            }
            content_length = Some(parse_length(h.value).ok_or("invalid Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err("Transfer-Encoding other than a single chunked");
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            if n_connection == connection.len() {
                return Err("too many Connection fields");
            }
            connection[n_connection] = i;
            n_connection += 1;
            for t in tokens(h.value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        }
    }
    if chunked && content_length.is_some() {
        return Err("both Content-Length and Transfer-Encoding");
    }
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
    let reusable = !close && (version == 1 || keep_alive_token) && !until_close && !doubtful;
    let close_client = !client.keep_alive || until_close || dechunk || (chunked && version == 0);
    let connection = &connection[..n_connection];

    let too_big = "response head too large to forward";
    let put = |out: &mut Buffer, b: &[u8]| if out.push(b) { Ok(()) } else { Err(too_big) };
    let headers_end = len - 2;
    let first_header = headers
        .first()
        .map_or(headers_end, |h| offset(buf, h.name.as_bytes()));
    put(out, &buf[..first_header])?;
    let mut run_start = None;
    for (i, h) in headers.iter().enumerate() {
        let start = offset(buf, h.name.as_bytes());
        let end = headers
            .get(i + 1)
            .map_or(headers_end, |next| offset(buf, next.name.as_bytes()));
        let framing_field = h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("content-length");
        // 1xx and 204 must not carry them (RFC 9110 §8.6); a 304's are dropped as nginx
        // does, so that no client takes them for a body to wait for.
        let drop = is_hop_by_hop(h.name)
            || (dechunk && h.name.eq_ignore_ascii_case("transfer-encoding"))
            || (no_body_status && framing_field)
            || listed_in_connection(h.name, headers, connection);
        if drop {
            if let Some(s) = run_start.take() {
                put(out, &buf[s..start])?;
            }
        } else {
            run_start.get_or_insert(start);
        }
        if i + 1 == headers.len()
            && let Some(s) = run_start.take()
        {
            put(out, &buf[s..end])?;
        }
    }
    if !(100..200).contains(&status) {
        if close_client {
            put(out, b"Connection: close\r\n")?;
        } else if client.version == 0 {
            put(out, b"Connection: keep-alive\r\n")?;
        }
        if !has_id {
            put(out, b"X-Request-Id: ")?;
            put(out, request_id.as_bytes())?;
            put(out, b"\r\n")?;
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
