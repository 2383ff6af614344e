//! Request and response heads: parsing with httparse, the RFC 9112 framing rules a
//! proxy must enforce, and writing the head we forward. Header lines that pass
//! are copied as byte runs, not rebuilt.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::body::Framing;
use crate::buffer::Buffer;

pub const MAX_REQUEST_LINE: usize = 8 * 1024;
pub const MAX_HEADER_BLOCK: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 100;
/// Longest X-Request-Id we keep and echo; a longer one is replaced by one of ours.
pub const MAX_REQUEST_ID: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// Why a request is refused: the status to answer and a one-line reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
}

const fn bad(reason: &'static str) -> Reject {
    Reject {
        status: 400,
        reason,
    }
}

/// An X-Request-Id, kept inline so that a request costs no allocation.
#[derive(Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl RequestId {
    /// At most MAX_REQUEST_ID bytes of `src`.
    pub(crate) fn from_bytes(src: &[u8]) -> Self {
        let src = &src[..src.len().min(MAX_REQUEST_ID)];
        let mut bytes = [0; MAX_REQUEST_ID];
        bytes[..src.len()].copy_from_slice(src);
        RequestId {
            bytes,
            len: src.len() as u8,
        }
    }

    /// A fresh id: 16 hex digits from a per-process random base plus a counter.
    pub fn generate(n: u64) -> Self {
        let mut bytes = [0; MAX_REQUEST_ID];
        for (i, b) in bytes[..16].iter_mut().enumerate() {
            let nibble = (n >> ((15 - i) * 4)) & 0xf;
            *b = b"0123456789abcdef"[nibble as usize];
        }
        RequestId { bytes, len: 16 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("-")
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a client's X-Request-Id is not used, if it is not: it goes into logs and to every
/// backend, so only a short run of visible ASCII is kept (no spaces, quotes or controls
/// that could forge a log field).
fn unusable_request_id(v: &[u8]) -> Option<&'static str> {
    if v.is_empty() {
        Some("is empty")
    } else if v.len() > MAX_REQUEST_ID {
        Some("is longer than 128 bytes")
    } else if !v.iter().all(|b| b.is_ascii_graphic() && *b != b'"') {
        Some("has a space, a quote or a byte that is not visible ASCII")
    } else {
        None
    }
}

/// What the proxy needs to know about a parsed request.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead {
    pub method: Method,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    /// Where the request target sits in the parsed input.
    pub path: (usize, usize),
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` we pass on (anything but h2c alone).
    pub upgrade: bool,
    pub request_id: RequestId,
}

/// What is added to every forwarded request.
pub struct ForwardInfo<'a> {
    pub client_ip: IpAddr,
    /// Used when the client sent no X-Request-Id.
    pub fresh_id: RequestId,
    /// Host header for an HTTP/1.0 request that had none (we forward as HTTP/1.1).
    pub default_host: &'a str,
    /// The client came over TLS: X-Forwarded-Proto says https.
    pub tls: bool,
}

fn offset(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty())
}

/// Hop-by-hop headers (RFC 9110 7.6.1) that never cross the proxy, plus ones we set ourselves.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "trailer",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// True when a header is named as hop-by-hop by one of the Connection headers.
fn listed_in_connection(name: &str, headers: &[httparse::Header], connection: &[usize]) -> bool {
    connection
        .iter()
        .any(|&i| tokens(headers[i].value).any(|t| t.eq_ignore_ascii_case(name.as_bytes())))
}

/// Any line ending that is not CRLF: a request with one is refused rather than
/// forwarded, since backends may split such lines differently than we did.
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

fn map_parse_error(e: httparse::Error) -> Reject {
    match e {
        httparse::Error::TooManyHeaders => Reject {
            status: 431,
            reason: "too many header fields",
        },
        httparse::Error::HeaderName => bad("invalid header name"),
        httparse::Error::HeaderValue => bad("invalid header value"),
        httparse::Error::Token => bad("invalid method"),
        httparse::Error::Version => bad("invalid HTTP version"),
        httparse::Error::NewLine => bad("invalid line ending"),
        _ => bad("malformed request"),
    }
}

/// Refuses a partial head that is already too long to become a good one.
fn check_partial(buf: &[u8]) -> Result<(), Reject> {
    let line_end = buf
        .iter()
        .take(MAX_REQUEST_LINE + 2)
        .position(|&b| b == b'\n');
    if line_end.is_none() && buf.len() > MAX_REQUEST_LINE + 1 {
        return Err(Reject {
            status: 414,
            reason: "request line too long",
        });
    }
    if buf.len() > MAX_REQUEST_LINE + MAX_HEADER_BLOCK + 4 {
        return Err(Reject {
            status: 431,
            reason: "request header block too large",
        });
    }
    Ok(())
}

/// Parses the request head at the start of `buf` and writes the head to forward into `out`.
/// `Ok(None)`: the head is not complete yet.
pub fn parse_request(
    buf: &[u8],
    info: &ForwardInfo,
    out: &mut Buffer,
) -> Result<Option<RequestHead>, Reject> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return check_partial(buf).map(|()| None),
        Err(e) => return Err(map_parse_error(e)),
    };
    let (Some(method_str), Some(target), Some(version)) = (req.method, req.path, req.version)
    else {
        return Err(bad("malformed request line"));
    };
    let line_start = offset(buf, method_str.as_bytes());
    let line_len = buf[line_start..len]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(len, |p| p + 1);
    if line_len > MAX_REQUEST_LINE + 2 {
        return Err(Reject {
            status: 414,
            reason: "request line too long",
        });
    }
    if len - line_start - line_len > MAX_HEADER_BLOCK {
        return Err(Reject {
            status: 431,
            reason: "request header block too large",
        });
    }
    if has_bare_lf(&buf[line_start..len]) {
        return Err(bad("line ending without CR"));
    }
    let method = match method_str {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "CONNECT" => {
            return Err(Reject {
                status: 405,
                reason: "CONNECT is not supported",
            });
        }
        _ => Method::Other,
    };
    let headers = &*req.headers;

    let mut content_length = None;
    let mut chunked = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut request_id = None;
    // The client's id cannot be used: its X-Request-Id lines are dropped, ours is sent.
    let mut replace_id = false;
    let mut last_xff = None;
    let mut upgrade_token = false;
    let mut upgrade_field = None;
    let mut connection = [0usize; 4];
    let mut n_connection = 0;
    for (i, h) in headers.iter().enumerate() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(bad("several Content-Length fields"));
            }
            content_length = Some(parse_length(h.value).ok_or(bad("invalid Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked {
                return Err(bad("several Transfer-Encoding fields"));
            }
            if !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(bad("Transfer-Encoding other than chunked"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            if n_connection == connection.len() {
                return Err(bad("too many Connection fields"));
            }
            connection[n_connection] = i;
            n_connection += 1;
            for t in tokens(h.value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
                upgrade_token |= t.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_field = Some(i);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("x-request-id") && request_id.is_none() && !replace_id {
            let v = trim(h.value);
            match unusable_request_id(v) {
                None => request_id = Some(RequestId::from_bytes(v)),
                Some(why) => {
                    log::debug!(
                        "X-Request-Id from {} {why}: replaced by {:?}",
                        info.client_ip,
                        info.fresh_id
                    );
                    replace_id = true;
                }
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            last_xff = Some(i);
        }
    }
    if chunked && content_length.is_some() {
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }
    if chunked && version == 0 {
        return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
    }
    if version == 1 && hosts != 1 {
        return Err(bad(if hosts == 0 {
            "missing Host"
        } else {
            "several Host fields"
        }));
    }
    if hosts > 1 {
        return Err(bad("several Host fields"));
    }
    let framing = match (chunked, content_length) {
        (true, _) => Framing::chunked(),
        (false, Some(0) | None) => Framing::Done,
        (false, Some(n)) => Framing::Length(n),
    };
    let keep_alive = !close && (version == 1 || keep_alive_token);
    // h2c is dropped: backends are spoken to in HTTP/1.1 only. A POST is fanned out,
    // and copies cannot become tunnels.
    let upgrade = upgrade_token
        && version == 1
        && method != Method::Post
        && upgrade_field
            .is_some_and(|i| tokens(headers[i].value).any(|t| !t.eq_ignore_ascii_case(b"h2c")));
    let connection = &connection[..n_connection];
    let too_big = Reject {
        status: 431,
        reason: "request head too large to forward",
    };

    let put = |out: &mut Buffer, b: &[u8]| if out.push(b) { Ok(()) } else { Err(too_big) };
    put(out, method_str.as_bytes())?;
    put(out, b" ")?;
    put(out, target.as_bytes())?;
    put(out, b" HTTP/1.1\r\n")?;
    let headers_end = len - 2;
    let mut run_start = None;
    for (i, h) in headers.iter().enumerate() {
        let start = offset(buf, h.name.as_bytes());
        let end = headers
            .get(i + 1)
            .map_or(headers_end, |next| offset(buf, next.name.as_bytes()));
        let kept_upgrade = upgrade && Some(i) == upgrade_field;
        let drop = !kept_upgrade
            && (is_hop_by_hop(h.name)
                || h.name.eq_ignore_ascii_case("x-forwarded-proto")
                || (replace_id && h.name.eq_ignore_ascii_case("x-request-id"))
                || listed_in_connection(h.name, headers, connection));
        if drop || Some(i) == last_xff {
            if let Some(s) = run_start.take() {
                put(out, &buf[s..start])?;
            }
            if Some(i) == last_xff {
                put(out, b"X-Forwarded-For: ")?;
                put(out, trim(h.value))?;
                write!(out, ", {}\r\n", info.client_ip).map_err(|_| too_big)?;
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
    if last_xff.is_none() {
        write!(out, "X-Forwarded-For: {}\r\n", info.client_ip).map_err(|_| too_big)?;
    }
    put(
        out,
        if info.tls {
            b"X-Forwarded-Proto: https\r\n"
        } else {
            b"X-Forwarded-Proto: http\r\n"
        },
    )?;
    let request_id = match request_id {
        Some(id) => id,
        None => {
            put(out, b"X-Request-Id: ")?;
            put(out, info.fresh_id.as_bytes())?;
            put(out, b"\r\n")?;
            info.fresh_id
        }
    };
    if hosts == 0 {
        put(out, b"Host: ")?;
        put(out, info.default_host.as_bytes())?;
        put(out, b"\r\n")?;
    }
    if upgrade {
        put(out, b"Connection: upgrade\r\n")?;
    }
    put(out, b"\r\n")?;

    let path_start = offset(buf, target.as_bytes());
    Ok(Some(RequestHead {
        method,
        version,
        len,
        path: (path_start, path_start + target.len()),
        framing,
        keep_alive,
        expect_continue,
        upgrade,
        request_id,
    }))
}

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
    let switching = status == 101;
    if switching && !client.upgrade {
        return Err("101 Switching Protocols to a request that asked for no upgrade");
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
    let mut upgrade_field = None;
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
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_field = Some(i);
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
    let reusable = !close && (version == 1 || keep_alive_token) && !until_close;
    let close_client = !client.keep_alive || until_close || dechunk;
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
        let kept_upgrade = switching && Some(i) == upgrade_field;
        let drop = !kept_upgrade
            && (is_hop_by_hop(h.name)
                || (dechunk && h.name.eq_ignore_ascii_case("transfer-encoding"))
                || listed_in_connection(h.name, headers, connection));
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
    if switching || !(100..200).contains(&status) {
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

#[cfg(test)]
mod tests;
