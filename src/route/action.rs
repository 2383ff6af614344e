//! What a matched route does, compiled: proxy to a pool (maybe with the path rewritten),
//! redirect, or answer with a fixed response. Everything that can be decided when the
//! table is built is decided then; per request, actions only copy bytes into the caller's
//! sink.

use std::time::Duration;

use super::matcher::prefix_rest;
use super::redirect::Redirect;
use super::sink::{Full, Sink};
use super::view::RequestView;

pub enum Action {
    Proxy(Proxy),
    Redirect(Redirect),
    Respond(Respond),
}

pub struct Proxy {
    pub pool: Box<str>,
    /// `None`: a POST fans out; `Some(false)`: nothing does; `Some(true)`: as `None`, said
    /// explicitly (other methods never fan out).
    pub fanout: Option<bool>,
    pub rewrite: Option<Rewrite>,
    pub server_timeout: Option<Duration>,
    pub max_body: Option<u64>,
}

impl Proxy {
    pub fn fans_out(&self, method: &str) -> bool {
        method == "POST" && self.fanout != Some(false)
    }
}

/// A prefix of the path replaced by another, segment-aware as `path_prefix` is; a strip
/// is a replacement by `/`. Both are normalized paths, checked when compiled.
pub struct Rewrite {
    from: Box<[u8]>,
    to: Box<[u8]>,
}

impl Rewrite {
    pub(super) fn new(from: &str, to: &str) -> Rewrite {
        Rewrite {
            from: from.as_bytes().into(),
            to: to.as_bytes().into(),
        }
    }

    /// Writes the target to forward: the request's normalized target with the prefix
    /// replaced, the query kept (`/home/x?q` → `/x?q`, `/home` → `/`, `/home?q` → `/?q`
    /// for a strip of `/home`). A path not under the prefix is written unchanged.
    pub fn write(&self, req: &RequestView, sink: &mut impl Sink) -> Result<(), Full> {
        let path = req.path();
        let query = &req.target()[path.len()..];
        let Some(rest) = prefix_rest(&self.from, path) else {
            return sink.put(req.target());
        };
        // `/api/` over `/api/x` leaves `x`: the slash it ate belongs to what is left.
        let rest = if self.from.ends_with(b"/") {
            path.get(self.from.len().saturating_sub(1)..)
                .unwrap_or(rest)
        } else {
            rest
        };
        if rest.is_empty() {
            sink.put(&self.to)?;
        } else {
            let to = self.to.strip_suffix(b"/").unwrap_or(&self.to);
            sink.put(to)?;
            sink.put(rest)?;
        }
        sink.put(query)
    }
}

/// A fixed answer. `head()` is the status line, Content-Type (if any) and Content-Length;
/// the caller adds what varies (X-Request-Id, Connection, Date, response header rules),
/// the blank line, then `body()` unless the request was a HEAD.
pub struct Respond {
    status: u16,
    content_type: Box<str>,
    head: Box<[u8]>,
    body: Box<[u8]>,
}

impl Respond {
    pub(super) fn new(status: u16, body: &str, content_type: &str) -> Respond {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        Respond {
            status,
            content_type: content_type.into(),
            head: head.into_bytes().into(),
            body: body.as_bytes().into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub fn head(&self) -> &[u8] {
        &self.head
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// The reason phrase lb writes; the phrase means nothing to a client (RFC 9112 §4), but
/// people read it in traces.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
