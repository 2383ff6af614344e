//! Request and response heads: parsing with httparse, the RFC 9112 framing rules a
//! proxy must enforce, and writing the head we forward. Header lines that pass
//! are copied as byte runs, not rebuilt. Responses are in `head/response.rs`.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::body::Framing;
use crate::buffer::Buffer;
use crate::grpc::CallFields;
use crate::route::{Action, Edits, RequestView, RouteTable, Sink};

mod fields;
mod request_id;
mod response;
mod target;
use fields::{
    MessageFields, Overflow, copy_fields, has_bare_lf, offset, protocols, put, trim,
    within_field_limit,
};
pub use request_id::{MAX_REQUEST_ID, RequestId};
pub use response::{ClientSide, ResponseHead, parse_response};
use target::Target;

pub const MAX_REQUEST_LINE: usize = 8 * 1024;
pub const MAX_HEADER_BLOCK: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 100;

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

/// What the proxy needs to know about a parsed request.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead {
    pub method: Method,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    /// Where the request target's path sits in the parsed input: all of an origin-form
    /// target, what follows the authority in an absolute-form one.
    pub path: (usize, usize),
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` we pass on (anything but h2c alone): where
    /// that Upgrade value, the protocols a 101 may switch to, sits in the parsed input.
    pub upgrade: Option<(usize, usize)>,
    pub request_id: RequestId,
    /// The route that took it (its place in the site's list), or `None`: lb answers 404.
    /// A route that redirects or answers had its answer's head written instead of the
    /// forwarded one.
    pub route: Option<usize>,
    pub grpc: CallFields,
}

/// What routes a parsed request: the listener's table, and room for the request's target
/// normalized (at least twice `MAX_REQUEST_LINE`: the target, and its normal form).
pub struct Routing<'a> {
    pub table: &'a RouteTable,
    pub scratch: &'a mut [u8],
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

/// Fields the client did not send (or sent unusable) that the forwarded head gets from us.
#[derive(Clone, Copy)]
struct Added<'a> {
    id: bool,
    /// Host, replacing any the client sent: the authority of an absolute-form target, or
    /// the default for an HTTP/1.0 request without one.
    host: Option<&'a str>,
    /// `Connection: upgrade`, with the client's Upgrade field kept (less any h2c).
    upgrade: bool,
    /// `TE: trailers` for a gRPC call (`CallFields::forwards_te`).
    te: bool,
}

/// Writes the header lines to forward, after the request line: the client's but hop-by-hop
/// ones and those the route's rules remove, then X-Forwarded-For (appended to the
/// client's last one), X-Forwarded-Proto, X-Request-Id and Host where the client sent
/// none, and what the route's rules add.
#[allow(clippy::too_many_arguments)]
fn write_request_fields(
    out: &mut Buffer,
    buf: &[u8],
    headers: &[httparse::Header],
    len: usize,
    fields: &MessageFields,
    last_xff: Option<usize>,
    info: &ForwardInfo,
    (added, edits): (Added, &Edits),
) -> Result<(), Overflow> {
    let rewritten_upgrade = |i| added.upgrade && Some(i) == fields.upgrade_field;
    // Where we add our X-Request-Id, any the client sent were unusable: none goes on.
    let drop = |i: usize, h: &httparse::Header| {
        Some(i) == last_xff
            || rewritten_upgrade(i)
            || h.name.eq_ignore_ascii_case("x-forwarded-proto")
            || (added.id && h.name.eq_ignore_ascii_case("x-request-id"))
            || (added.host.is_some() && h.name.eq_ignore_ascii_case("host"))
            || fields.is_hop_by_hop(h.name, headers)
            || edits.drops(h.name)
    };
    let instead = |i: usize, h: &httparse::Header, out: &mut Buffer| {
        if rewritten_upgrade(i) {
            put(out, h.name.as_bytes())?;
            let mut sep: &[u8] = b": ";
            for protocol in protocols(h.value) {
                put(out, sep)?;
                put(out, protocol)?;
                sep = b", ";
            }
            return put(out, b"\r\n");
        }
        if Some(i) != last_xff {
            return Ok(());
        }
        put(out, b"X-Forwarded-For: ")?;
        put(out, trim(h.value))?;
        write!(out, ", {}\r\n", info.client_ip).map_err(|_| Overflow)
    };
    let kept = copy_fields(out, buf, headers, len - 2, drop, instead)?;
    // Ours: X-Forwarded-For (appended to or added), X-Forwarded-Proto, maybe the others.
    let ours = 2
        + usize::from(added.id)
        + usize::from(added.host.is_some())
        + 2 * usize::from(added.upgrade)
        + usize::from(added.te);
    within_field_limit(kept + ours)?;
    if last_xff.is_none() {
        write!(out, "X-Forwarded-For: {}\r\n", info.client_ip).map_err(|_| Overflow)?;
    }
    put(
        out,
        if info.tls {
            b"X-Forwarded-Proto: https\r\n"
        } else {
            b"X-Forwarded-Proto: http\r\n"
        },
    )?;
    if added.id {
        put(out, b"X-Request-Id: ")?;
        put(out, info.fresh_id.as_bytes())?;
        put(out, b"\r\n")?;
    }
    if let Some(host) = added.host {
        put(out, b"Host: ")?;
        put(out, host.as_bytes())?;
        put(out, b"\r\n")?;
    }
    if added.upgrade {
        put(out, b"Connection: upgrade\r\n")?;
    }
    if added.te {
        put(out, b"TE: trailers\r\n")?;
    }
    edits.write_added(out).map_err(|_| Overflow)?;
    put(out, b"\r\n")
}

/// What the header lines of a request say, beyond its framing fields.
#[derive(Default)]
struct Scan<'a> {
    hosts: usize,
    /// The Host field's value, as sent.
    host: Option<&'a [u8]>,
    expect_continue: bool,
    /// The client's X-Request-Id, if it sent a usable one.
    request_id: Option<&'a [u8]>,
    last_xff: Option<usize>,
    grpc: CallFields,
}

/// Reads the header lines into `fields` and a `Scan`, refusing what is ambiguous.
fn scan<'a>(
    headers: &[httparse::Header<'a>],
    fields: &mut MessageFields,
    info: &ForwardInfo,
) -> Result<Scan<'a>, Reject> {
    let mut s = Scan::default();
    let mut ids = 0;
    for (i, h) in headers.iter().enumerate() {
        let name = h.name;
        if fields.read(i, h).map_err(bad)? || s.grpc.read(name, h.value) {
        } else if name.eq_ignore_ascii_case("host") {
            s.hosts += 1;
            s.host = Some(trim(h.value));
        } else if name.eq_ignore_ascii_case("expect") {
            s.expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("x-request-id") {
            // The id is the write's key at the backends: two would leave each hop to pick
            // its own, and lb could not say which one it logged and de-duplicated on.
            ids += 1;
            if ids > 1 {
                return Err(bad("several X-Request-Id fields"));
            }
            let v = trim(h.value);
            match request_id::unusable(v) {
                None => s.request_id = Some(v),
                Some(why) => log::debug!(
                    "X-Request-Id from {} {why}: replaced by {:?}",
                    info.client_ip,
                    info.fresh_id
                ),
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            s.last_xff = Some(i);
        }
    }
    fields.check(true).map_err(bad)?;
    Ok(s)
}

/// Parses the request head at the start of `buf`, routes it, and writes into `out` the
/// head to forward (or the head of the route's own answer). `Ok(None)`: the head is not
/// complete yet.
pub fn parse_request(
    buf: &[u8],
    info: &ForwardInfo,
    out: &mut Buffer,
    routing: Routing,
) -> Result<Option<RequestHead>, Reject> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return check_partial(buf).map(|()| None),
        Err(e) => return Err(map_parse_error(e)),
    };
    let (Some(method_str), Some(target_str), Some(version)) = (req.method, req.path, req.version)
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
    // The whole head, with any empty lines before the request line that httparse skips.
    if has_bare_lf(&buf[..len]) {
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
    let target = target::parse(method_str, target_str)?;
    let headers = &*req.headers;
    let mut fields = MessageFields::default();
    let scan = scan(headers, &mut fields, info)?;
    if fields.chunked && version == 0 {
        return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
    }
    if (version == 1 && scan.hosts == 0) || scan.hosts > 1 {
        return Err(bad(if scan.hosts == 0 {
            "missing Host"
        } else {
            "several Host fields"
        }));
    }
    let framing = match (fields.chunked, fields.content_length) {
        (true, _) => Framing::chunked(),
        (false, Some(0) | None) => Framing::Done,
        (false, Some(n)) => Framing::Length(n),
    };
    let keep_alive = !fields.close && (version == 1 || fields.keep_alive);
    // A POST is fanned out, and copies cannot become tunnels.
    let upgrade = (version == 1 && method != Method::Post && fields.asks_upgrade(headers))
        .then(|| fields.upgrade_field.map(|i| headers[i].value))
        .flatten()
        .map(|v| (offset(buf, v), offset(buf, v) + v.len()));
    let added = Added {
        id: scan.request_id.is_none(),
        host: target
            .authority
            .or((scan.hosts == 0).then_some(info.default_host)),
        upgrade: upgrade.is_some(),
        te: scan.grpc.forwards_te(),
    };
    let host = match target.authority {
        Some(authority) => authority.as_bytes(),
        None => scan.host.unwrap_or_default(),
    };
    let (origin, scratch) = origin_form(&target, routing.scratch)?;
    let view = if routing.table.looks_at_paths() && origin != b"*" {
        RequestView::new(method_str, host, origin, headers, scratch).map_err(|e| Reject {
            status: e.status(),
            reason: e.reason(),
        })?
    } else {
        RequestView::as_sent(method_str, host, origin, headers)
    };
    let hit = routing.table.find(&view);
    let too_big = |Overflow| Reject {
        status: 431,
        reason: "request head too large to forward",
    };
    match hit.map(|h| (h.route.action(), h.route)) {
        Some((Action::Proxy(p), route)) => {
            put(out, method_str.as_bytes()).map_err(too_big)?;
            put(out, b" ").map_err(too_big)?;
            match &p.rewrite {
                Some(rewrite) => rewrite.write(&view, out),
                None => out.put(view.target()),
            }
            .map_err(|_| too_big(Overflow))?;
            put(out, b" HTTP/1.1\r\n").map_err(too_big)?;
            let rules = (added, route.request_headers());
            write_request_fields(out, buf, headers, len, &fields, scan.last_xff, info, rules)
                .map_err(too_big)?;
        }
        // The answer's head but what varies per request: the caller ends it.
        Some((Action::Redirect(r), route)) => r
            .write_head(&view, out)
            .and_then(|()| route.response_headers().write_added(out))
            .map_err(|_| too_big(Overflow))?,
        Some((Action::Respond(r), route)) => out
            .put(r.head())
            .and_then(|()| route.response_headers().write_added(out))
            .map_err(|_| too_big(Overflow))?,
        None => {}
    }

    let path_start = offset(buf, target.path.as_bytes());
    Ok(Some(RequestHead {
        method,
        version,
        len,
        path: (path_start, path_start + target.path.len()),
        framing,
        keep_alive,
        expect_continue: scan.expect_continue,
        upgrade,
        request_id: scan.request_id.map_or(info.fresh_id, RequestId::from_bytes),
        route: hit.map(|h| h.index),
        grpc: scan.grpc,
    }))
}

/// The target in origin-form (an absolute-form one's path with the `/` it may lack, put in
/// front of it in `scratch`), and what is left of `scratch`.
fn origin_form<'s>(
    target: &Target<'s>,
    scratch: &'s mut [u8],
) -> Result<(&'s [u8], &'s mut [u8]), Reject> {
    if !target.needs_slash() {
        return Ok((target.path.as_bytes(), scratch));
    }
    let n = target.path.len() + 1;
    if scratch.len() < n {
        return Err(Reject {
            status: 414,
            reason: "request target too long",
        });
    }
    let (joined, rest) = scratch.split_at_mut(n);
    joined[0] = b'/';
    joined[1..].copy_from_slice(target.path.as_bytes());
    Ok((joined, rest))
}

#[cfg(test)]
mod forwarding_tests;
#[cfg(test)]
mod tests;
