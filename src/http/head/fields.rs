//! What request and response heads share: the fields that decide framing and the fate of
//! the connection, read the same way in both, and copying header lines to the forwarded
//! head as runs of the original bytes.

use crate::buffer::Buffer;

pub(super) fn offset(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

pub(super) fn trim(v: &[u8]) -> &[u8] {
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

/// Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy.
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

/// Fields that a Connection nomination does not remove: the framing fields and Host (a
/// message naming them is refused, see `MessageFields::check`), lb's X-Request-Id, and
/// what a proxy in front of lb asserts about the client, which the client must not be
/// able to strip by naming it (a proxy that passes the client's Connection on, as HAProxy
/// does, would otherwise let the client remove the address it added).
fn kept_when_named(name: &str) -> bool {
    const PREFIX: &str = "x-forwarded-";
    [
        "content-length",
        "transfer-encoding",
        "host",
        "x-request-id",
        "forwarded",
        "x-real-ip",
    ]
    .iter()
    .any(|k| name.eq_ignore_ascii_case(k))
        || name
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Any line ending that is not CRLF: a message with one is refused rather than
/// forwarded, since the other side may split such lines differently than we did.
pub(super) fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

/// Content-Length, Transfer-Encoding, Connection and Upgrade, as one head carries them.
#[derive(Default)]
pub(super) struct MessageFields {
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// `close` among the Connection tokens.
    pub close: bool,
    /// `keep-alive` among the Connection tokens.
    pub keep_alive: bool,
    /// `upgrade` among the Connection tokens.
    pub upgrade: bool,
    /// The Upgrade field, if any (the last, if several: only that one is forwarded).
    pub upgrade_field: Option<usize>,
    /// A Connection field names Content-Length or Transfer-Encoding.
    names_framing: bool,
    /// A Connection field names Host.
    names_host: bool,
    /// Which fields are Connection fields: the names they list are hop-by-hop too.
    connection: [usize; 4],
    n_connection: usize,
}

impl MessageFields {
    /// Takes field `i` if it is one of these (`Ok(true)`); refuses an ambiguous one.
    pub fn read(&mut self, i: usize, h: &httparse::Header) -> Result<bool, &'static str> {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if self.content_length.is_some() {
                return Err("several Content-Length fields");
            }
            self.content_length = Some(parse_length(h.value).ok_or("invalid Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if self.chunked {
                return Err("several Transfer-Encoding fields");
            }
            if !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err("Transfer-Encoding other than chunked");
            }
            self.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            if self.n_connection == self.connection.len() {
                return Err("too many Connection fields");
            }
            self.connection[self.n_connection] = i;
            self.n_connection += 1;
            for t in tokens(h.value) {
                self.close |= t.eq_ignore_ascii_case(b"close");
                self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                self.upgrade |= t.eq_ignore_ascii_case(b"upgrade");
                self.names_framing |= t.eq_ignore_ascii_case(b"content-length")
                    || t.eq_ignore_ascii_case(b"transfer-encoding");
                self.names_host |= t.eq_ignore_ascii_case(b"host");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            self.upgrade_field = Some(i);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Refuses, whoever sent it: both framings at once (RFC 9112 §6.3), and a Connection
    /// field naming a framing field or (in a request) Host. lb must remove what Connection
    /// names (RFC 9110 §7.6.1), yet without its framing the next hop would read the body
    /// as the next message, and without Host route it elsewhere: no honest sender names
    /// them, so such a message is not forwarded at all.
    pub fn check(&self, request: bool) -> Result<(), &'static str> {
        if self.chunked && self.content_length.is_some() {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if self.names_framing {
            return Err("Connection names Content-Length or Transfer-Encoding");
        }
        if request && self.names_host {
            return Err("Connection names Host");
        }
        Ok(())
    }

    /// A `Connection: upgrade` with an Upgrade field naming a protocol but h2c (backends
    /// are spoken to in HTTP/1.1 only).
    pub fn asks_upgrade(&self, headers: &[httparse::Header]) -> bool {
        self.upgrade
            && self
                .upgrade_field
                .is_some_and(|i| protocols(headers[i].value).next().is_some())
    }

    /// A field that must not cross the proxy: hop-by-hop, or named by a Connection field
    /// (unless lb keeps it whatever Connection says).
    pub fn is_hop_by_hop(&self, name: &str, headers: &[httparse::Header]) -> bool {
        is_hop_by_hop(name)
            || (self.connection[..self.n_connection].iter().any(|&i| {
                tokens(headers[i].value).any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
            }) && !kept_when_named(name))
    }
}

/// The protocols of an Upgrade value that lb passes on: all but h2c (backends are spoken
/// to in HTTP/1.1 only, and an h2c upgrade would make the backend speak HTTP/2 to lb).
pub(super) fn protocols(upgrade: &[u8]) -> impl Iterator<Item = &[u8]> {
    tokens(upgrade).filter(|t| !t.eq_ignore_ascii_case(b"h2c"))
}

/// A 101's Upgrade value names only protocols the request offered (RFC 9110 §7.8: a server
/// must not switch to one the client did not ask for), and at least one. A versioned answer
/// (`foo/2`) matches an offer of the bare name (`foo`).
pub(super) fn switches_to_offered(answer: &[u8], offered: &[u8]) -> bool {
    let same = |got: &[u8], offer: &[u8]| {
        got.eq_ignore_ascii_case(offer)
            || (!offer.contains(&b'/')
                && got
                    .split(|&b| b == b'/')
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(offer)))
    };
    let mut any = false;
    for got in tokens(answer) {
        any = true;
        if !protocols(offered).any(|offer| same(got, offer)) {
            return false;
        }
    }
    any
}

/// Too large to fit the forwarded head's buffer.
pub(super) struct Overflow;

pub(super) fn put(out: &mut Buffer, bytes: &[u8]) -> Result<(), Overflow> {
    if out.push(bytes) {
        Ok(())
    } else {
        Err(Overflow)
    }
}

/// Copies the header lines of `headers` (parsed from `buf`; the last ends at
/// `headers_end`) into `out` as runs of the original bytes. A line that `drop` names is
/// left out, and `instead` may write its replacement in its place. Returns how many lines
/// were kept as they came.
pub(super) fn copy_fields(
    out: &mut Buffer,
    buf: &[u8],
    headers: &[httparse::Header],
    headers_end: usize,
    drop: impl Fn(usize, &httparse::Header) -> bool,
    mut instead: impl FnMut(usize, &httparse::Header, &mut Buffer) -> Result<(), Overflow>,
) -> Result<usize, Overflow> {
    let mut run_start = None;
    let mut kept = 0;
    for (i, h) in headers.iter().enumerate() {
        let start = offset(buf, h.name.as_bytes());
        let end = headers
            .get(i + 1)
            .map_or(headers_end, |next| offset(buf, next.name.as_bytes()));
        if drop(i, h) {
            if let Some(s) = run_start.take() {
                put(out, &buf[s..start])?;
            }
            instead(i, h, out)?;
        } else {
            run_start.get_or_insert(start);
            kept += 1;
        }
        if i + 1 == headers.len()
            && let Some(s) = run_start.take()
        {
            put(out, &buf[s..end])?;
        }
    }
    Ok(kept)
}

/// A forwarded head may hold no more fields than lb itself accepts: the fields lb adds
/// must not push a head that was within the limit past it for the next hop.
pub(super) fn within_field_limit(fields: usize) -> Result<(), Overflow> {
    if fields > super::MAX_HEADERS {
        return Err(Overflow);
    }
    Ok(())
}
