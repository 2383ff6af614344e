//! Redirects: the `to` template is split once into literal parts and placeholders, and a
//! request only fills them in.
//!
//! - `{host}`: the request's host, lower case, without its port (empty if it sent none).
//! - `{path}`: the normalized path, the one lb would have routed.
//! - `{query}`: `?` and the query as sent, or nothing when the query is absent or empty,
//!   so that `https://{host}{path}{query}` never ends in a bare `?`.
//!
//! What a client sent can never break the head: in `{path}` and `{query}` every byte that
//! is not visible ASCII is percent-encoded, and in `{host}` every byte a host name cannot
//! hold (so a Host of `evil.com/@x` cannot turn into another authority or a path).

use super::action::reason;
use super::host::{HostBuf, host_key};
use super::normalize::HEX;
use super::sink::{Full, Sink};
use super::view::RequestView;

pub const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

enum Part {
    Literal(Box<[u8]>),
    Host,
    Path,
    Query,
}

pub struct Redirect {
    status: u16,
    status_line: Box<[u8]>,
    parts: Box<[Part]>,
}

impl Redirect {
    /// `status` is one of `STATUSES` (checked by the caller, which knows where it was
    /// written). Errors: every problem with the template, each one line.
    pub(super) fn parse(to: &str, status: u16) -> Result<Redirect, Vec<String>> {
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        if to.is_empty() {
            problems.push("the redirect target is empty".to_string());
        }
        if let Some(c) = to.chars().find(|c| !c.is_ascii_graphic()) {
            problems.push(format!(
                "the redirect target holds {c:?}, which a Location field cannot carry: percent-encode it"
            ));
        }
        let mut rest = to;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (None, None) => {
                    parts.push(Part::Literal(rest.as_bytes().into()));
                    break;
                }
                (Some(o), Some(c)) if o < c => {
                    if o > 0 {
                        parts.push(Part::Literal(rest.as_bytes()[..o].into()));
                    }
                    let name = &rest[o + 1..c];
                    match name {
                        "host" => parts.push(Part::Host),
                        "path" => parts.push(Part::Path),
                        "query" => parts.push(Part::Query),
                        _ if name.contains('{') => {
                            problems.push("a `{` without its `}` in the redirect target".into());
                        }
                        _ => problems.push(format!(
                            "unknown placeholder {{{name}}} in the redirect target: use {{host}}, {{path}} or {{query}}"
                        )),
                    }
                    rest = &rest[c + 1..];
                }
                (Some(_), None) => {
                    problems.push("a `{` without its `}` in the redirect target".into());
                    break;
                }
                (_, Some(_)) => {
                    problems.push("a `}` without its `{` in the redirect target".into());
                    break;
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Redirect {
            status,
            status_line: format!("HTTP/1.1 {status} {}\r\n", reason(status))
                .into_bytes()
                .into(),
            parts: parts.into(),
        })
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The status line, Location and `Content-Length: 0`; the caller adds what varies
    /// (X-Request-Id, Connection, Date, response header rules) and the blank line.
    pub fn write_head(&self, req: &RequestView, sink: &mut impl Sink) -> Result<(), Full> {
        sink.put(&self.status_line)?;
        sink.put(b"Location: ")?;
        self.write_location(req, sink)?;
        sink.put(b"\r\nContent-Length: 0\r\n")
    }

    /// The Location value for `req`.
    pub fn write_location(&self, req: &RequestView, sink: &mut impl Sink) -> Result<(), Full> {
        for part in &*self.parts {
            match part {
                Part::Literal(bytes) => sink.put(bytes)?,
                Part::Host => {
                    let mut buf: HostBuf = [0; _];
                    if let Some(host) = host_key(req.host(), &mut buf) {
                        put_encoded(host, is_host_byte, sink)?;
                    }
                }
                Part::Path => put_encoded(req.path(), is_visible, sink)?,
                Part::Query => {
                    if let Some(query) = req.query().filter(|q| !q.is_empty()) {
                        sink.put(b"?")?;
                        put_encoded(query, is_visible, sink)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_visible(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// What a host (a name, or a bracketed IPv6 literal) is made of.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'[' | b']' | b':')
}

/// Runs of allowed bytes as they are, every other byte as `%XX`.
fn put_encoded(bytes: &[u8], allowed: fn(u8) -> bool, sink: &mut impl Sink) -> Result<(), Full> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| !allowed(b)).unwrap_or(rest.len());
        sink.put(&rest[..run])?;
        if let Some(&b) = rest.get(run) {
            sink.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])?;
            rest = &rest[run + 1..];
        } else {
            rest = &[];
        }
    }
    Ok(())
}
