//! A request's header list checked as RFC 9113 §8.2 and §8.3 ask, and written as the
//! HTTP/1.1 request head that lb's HTTP/1 code reads; its trailers likewise.

use super::Malformed;
use super::field::{
    content_length, is_connection_specific, is_token, is_valid_name, is_valid_value,
};
use crate::h2::hpack::HeaderList;

/// How the request's body goes to the backend, once its head is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: the HEADERS frame ended the stream.
    None,
    /// The DATA payloads as they come, `Content-Length` octets in all (§8.1.1 has the
    /// caller refuse a stream whose DATA add up to another length).
    Length(u64),
    /// Each DATA payload as one chunk (`put_chunk_size`, the payload, CRLF), then
    /// `LAST_CHUNK` or `write_trailers` when the stream ends.
    Chunked,
    /// A CONNECT: DATA frames carry a tunnel's bytes, not a body.
    Tunnel,
}

/// What lb reads from a request's header list, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a [u8],
    pub scheme: Option<&'a [u8]>,
    pub path: Option<&'a [u8]>,
    /// The `:authority`, or else the `host` field: what the HTTP/1.1 `Host` says.
    pub host: &'a [u8],
    /// The protocol of an extended CONNECT (RFC 8441), e.g. `websocket`.
    pub protocol: Option<&'a [u8]>,
    pub content_length: Option<u64>,
    pub body: BodyFraming,
}

/// The pseudo-header fields of a request, each at most once.
#[derive(Default)]
struct Pseudo<'a> {
    method: Option<&'a [u8]>,
    scheme: Option<&'a [u8]>,
    authority: Option<&'a [u8]>,
    path: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
}

impl<'a> Pseudo<'a> {
    fn take(
        &mut self,
        name: &[u8],
        value: &'a [u8],
        extended_connect: bool,
    ) -> Result<(), Malformed> {
        let slot = match name {
            b":method" => &mut self.method,
            b":scheme" => &mut self.scheme,
            b":authority" => &mut self.authority,
            b":path" => &mut self.path,
            b":protocol" if extended_connect => &mut self.protocol,
            b":status" => return Err("8.3.2 response pseudo-header field in a request"),
            _ => return Err("8.3 unknown pseudo-header field"),
        };
        match slot.replace(value) {
            Some(_) => Err("8.3.1 repeated pseudo-header field"),
            None => Ok(()),
        }
    }
}

/// The bytes of an authority (RFC 3986 §3.2 without userinfo, which RFC 9113 §8.3.1 rules
/// out for http and https): what may stand in a `Host` line.
pub(super) fn is_valid_authority(authority: &[u8]) -> bool {
    !authority.is_empty()
        && authority
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b))
}

/// A `:path` that can be an HTTP/1.1 origin-form target: an absolute path (and query), or
/// `*` for OPTIONS.
fn check_path(path: &[u8], method: &[u8]) -> Result<(), Malformed> {
    if path.is_empty() {
        return Err("8.3.1 empty :path");
    }
    if path == b"*" {
        return if method == b"OPTIONS" {
            Ok(())
        } else {
            Err("8.3.1 :path * for a method other than OPTIONS")
        };
    }
    if path.first() != Some(&b'/') {
        return Err("8.3.1 :path neither an absolute path nor *");
    }
    if !path.iter().all(|b| b.is_ascii_graphic()) {
        return Err("8.3.1 :path with a byte a request target cannot have");
    }
    Ok(())
}

/// Checks a request's header list (§8.2, §8.3; §8.5 and RFC 8441 §4 for CONNECT, the
/// extended one only when `extended_connect`, i.e. lb sent SETTINGS_ENABLE_CONNECT_PROTOCOL).
/// `has_body`: the HEADERS frame did not end the stream. `Err` is why the request is
/// malformed: the caller resets the stream with PROTOCOL_ERROR (§8.1.1).
pub fn check_request(
    list: &HeaderList,
    has_body: bool,
    extended_connect: bool,
) -> Result<Request<'_>, Malformed> {
    let mut pseudo = Pseudo::default();
    let mut regular = false;
    let mut host = None;
    let mut length = None;
    for (name, value) in list.iter() {
        if !is_valid_value(value) {
            return Err("8.2.1 field value with NUL, CR, LF or whitespace at an end");
        }
        if name.first() == Some(&b':') {
            if regular {
                return Err("8.3 pseudo-header field after a regular field");
            }
            pseudo.take(name, value, extended_connect)?;
            continue;
        }
        regular = true;
        if !is_valid_name(name) {
            return Err("8.2.1 field name not a lowercase token");
        }
        if is_connection_specific(name) {
            return Err("8.2.2 connection-specific field");
        }
        match name {
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                return Err("8.2.2 te other than trailers");
            }
            b"content-length" => {
                let n = content_length(value).ok_or("8.1.1 content-length not a number")?;
                if length.replace(n).is_some_and(|m| m != n) {
                    return Err("8.1.1 content-length values differ");
                }
            }
            b"host" if host.is_some() => return Err("8.3.1 several host fields"),
            b"host" => host = Some(value),
            _ => {}
        }
    }
    let method = pseudo.method.ok_or("8.3.1 no :method")?;
    if !is_token(method) {
        return Err("8.3.1 :method not a token");
    }
    if pseudo.protocol.is_some_and(|p| !is_token(p)) {
        return Err("RFC 8441 4 :protocol not a token");
    }
    let connect = method == b"CONNECT";
    match (connect, pseudo.protocol) {
        (true, None) if pseudo.scheme.is_some() || pseudo.path.is_some() => {
            return Err("8.5 CONNECT with :scheme or :path");
        }
        (true, None) if pseudo.authority.is_none() => {
            return Err("8.5 CONNECT without :authority");
        }
        (true, Some(_)) if pseudo.scheme.is_none() || pseudo.path.is_none() => {
            return Err("RFC 8441 4 extended CONNECT without :scheme or :path");
        }
        (false, Some(_)) => return Err("RFC 8441 4 :protocol with a method other than CONNECT"),
        (false, None) if pseudo.scheme.is_none() || pseudo.path.is_none() => {
            return Err("8.3.1 no :scheme or no :path");
        }
        _ => {}
    }
    if let Some(path) = pseudo.path {
        check_path(path, method)?;
    }
    if pseudo.scheme.is_some_and(|s| s != b"http" && s != b"https") {
        return Err("8.3.1 :scheme other than http or https");
    }
    if let (Some(authority), Some(host)) = (pseudo.authority, host)
        && !authority.eq_ignore_ascii_case(host)
    {
        return Err("8.3.1 host differs from :authority");
    }
    let host = pseudo
        .authority
        .or(host)
        .ok_or("8.3.1 neither :authority nor host")?;
    if !is_valid_authority(host) {
        return Err("8.3.1 :authority or host not a host and port");
    }
    let body = match (connect, has_body, length) {
        (true, _, _) => BodyFraming::Tunnel,
        (false, true, Some(n)) => BodyFraming::Length(n),
        (false, true, None) => BodyFraming::Chunked,
        (false, false, None | Some(0)) => BodyFraming::None,
        (false, false, Some(_)) => return Err("8.1.1 content-length above 0 without DATA"),
    };
    Ok(Request {
        method,
        scheme: pseudo.scheme,
        path: pseudo.path,
        host,
        protocol: pseudo.protocol,
        content_length: length,
        body,
    })
}

pub(super) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the HTTP/1.1 request head equivalent to `request` (checked from `list`): the
/// request line from `:method` and `:path`, `Host`, the regular fields but `host` and
/// `content-length` (`te` is only ever `trailers`), the cookie crumbs as one `Cookie` (§8.2.3), and the framing that
/// `request.body` names. An extended CONNECT becomes the HTTP/1.1 upgrade to its
/// protocol (for WebSocket the caller adds `Sec-WebSocket-Key`, which RFC 8441 §5 leaves
/// out of HTTP/2). lb's HTTP/1 code then reads it as any other request and adds its own
/// fields (X-Forwarded-For, X-Forwarded-Proto, X-Request-Id).
pub fn write_request_head(request: &Request, list: &HeaderList, out: &mut Vec<u8>) {
    match (request.path, request.protocol) {
        (Some(path), Some(_)) => {
            out.extend_from_slice(b"GET ");
            out.extend_from_slice(path);
        }
        (Some(path), None) => {
            out.extend_from_slice(request.method);
            out.push(b' ');
            out.extend_from_slice(path);
        }
        (None, _) => {
            out.extend_from_slice(request.method);
            out.push(b' ');
            out.extend_from_slice(request.host);
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    put_field(out, b"host", request.host);
    if let Some(protocol) = request.protocol {
        put_field(out, b"connection", b"upgrade");
        put_field(out, b"upgrade", protocol);
    }
    let mut cookies = list.iter().filter(|(name, _)| *name == b"cookie");
    let mut first_cookie = true;
    for (name, value) in list.iter() {
        match name {
            // `te` can only be `trailers` (`check_request`): gRPC needs it passed on.
            b"host" | b"content-length" => {}
            _ if name.first() == Some(&b':') => {}
            b"cookie" if first_cookie => {
                first_cookie = false;
                out.extend_from_slice(b"cookie: ");
                out.extend_from_slice(value);
                cookies.next();
                for (_, crumb) in cookies.by_ref() {
                    out.extend_from_slice(b"; ");
                    out.extend_from_slice(crumb);
                }
                out.extend_from_slice(b"\r\n");
            }
            b"cookie" => {}
            _ => put_field(out, name, value),
        }
    }
    match request.body {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            put_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => put_field(out, b"transfer-encoding", b"chunked"),
        BodyFraming::None if request.content_length == Some(0) => {
            put_field(out, b"content-length", b"0");
        }
        BodyFraming::None | BodyFraming::Tunnel => {}
    }
    out.extend_from_slice(b"\r\n");
}

pub(super) fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// The chunk that ends a chunked body without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes the size line of a chunk of `len` octets: the octets and a CRLF follow it.
pub fn put_chunk_size(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[(len >> (4 * i)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// Checks a trailer section, a request's or a response's (§8.1: no pseudo-header field;
/// §8.2 as for any field).
pub fn check_trailers(list: &HeaderList) -> Result<(), Malformed> {
    for (name, value) in list.iter() {
        if name.first() == Some(&b':') {
            return Err("8.1 pseudo-header field in trailers");
        }
        if !is_valid_name(name) {
            return Err("8.2.1 field name not a lowercase token");
        }
        if !is_valid_value(value) {
            return Err("8.2.1 field value with NUL, CR, LF or whitespace at an end");
        }
        if is_connection_specific(name) || name == b"te" {
            return Err("8.2.2 connection-specific field");
        }
    }
    Ok(())
}

/// Checks trailers (`check_trailers`) and writes them as the end of a chunked body: the
/// last chunk, the fields, the blank line. Nothing is written when they are malformed.
pub fn write_trailers(list: &HeaderList, out: &mut Vec<u8>) -> Result<(), Malformed> {
    check_trailers(list)?;
    out.extend_from_slice(b"0\r\n");
    for (name, value) in list.iter() {
        put_field(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}
