//! An HTTP/1.1 response head, as lb's response parser reads it from a backend, turned
//! into the header list of an HTTP/2 response; its trailers likewise.

use super::Malformed;
use super::field::{is_connection_specific, tokens};
use crate::h2::hpack::HeaderList;

/// What an HTTP/1.1 response becomes on an HTTP/2 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A 1xx (100, 102, 103): a HEADERS frame that does not end the stream; the final
    /// response follows (RFC 9113 §8.1).
    Interim,
    /// The response: its HEADERS frame ends the stream when there is no body.
    Final,
    /// A 101, which HTTP/2 does not have (§8.6). For a stream that was an extended
    /// CONNECT (RFC 8441 §5) the list says 200 and the stream carries the tunnel's bytes
    /// both ways from then on; to any other stream the caller must answer 502 instead,
    /// as lb's HTTP/1 code does to a 101 that no upgrade asked for.
    Tunnel,
}

/// Fields a Connection field of the message names: hop-by-hop, as the HTTP/1.1 proxy
/// drops them (RFC 9110 §7.6.1).
fn nominated<'a>(fields: impl IntoIterator<Item = (&'a str, &'a [u8])>, name: &str) -> bool {
    fields
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .any(|(_, v)| tokens(v).any(|t| t.eq_ignore_ascii_case(name.as_bytes())))
}

/// Adds the fields that cross to HTTP/2: names lowercased, values trimmed, without the
/// connection-specific fields (§8.2.2), `te`, those a Connection field names, and those
/// `also_dropped` names.
pub(super) fn push_fields<'a, I>(
    fields: I,
    also_dropped: impl Fn(&str) -> bool,
    out: &mut HeaderList,
) -> Result<(), Malformed>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
{
    let has_connection = fields
        .clone()
        .into_iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"));
    for (name, value) in fields.clone() {
        if is_connection_specific(name.as_bytes())
            || name.eq_ignore_ascii_case("te")
            || also_dropped(name)
            || (has_connection && nominated(fields.clone(), name))
        {
            continue;
        }
        let value = value.trim_ascii();
        if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
            return Err("8.2.1 field value with NUL, CR or LF");
        }
        out.push_lowercased(name.as_bytes(), value);
    }
    Ok(())
}

/// Writes into `out` (cleared first) the HTTP/2 header list of a backend's response:
/// `:status`, then its fields (`fields` as lb's response parser yields them: the name and
/// value of each header line). Content-Length goes on but for 1xx and 204, which cannot
/// have one (RFC 9110 §8.6). lb's own fields (X-Request-Id, the route's rules) are the
/// caller's to push after. `Err`: the response cannot be relayed (502).
pub fn response_head<'a, I>(
    status: u16,
    fields: I,
    out: &mut HeaderList,
) -> Result<ResponseKind, Malformed>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
{
    out.clear();
    if !(100..=999).contains(&status) {
        return Err("8.3.2 status not three digits");
    }
    let kind = match status {
        101 => ResponseKind::Tunnel,
        100..=199 => ResponseKind::Interim,
        _ => ResponseKind::Final,
    };
    let shown = if kind == ResponseKind::Tunnel {
        200
    } else {
        status
    };
    let digits = [
        b'0' + (shown / 100) as u8,
        b'0' + (shown / 10 % 10) as u8,
        b'0' + (shown % 10) as u8,
    ];
    out.push(b":status", &digits);
    let bodiless = kind == ResponseKind::Interim || status == 204;
    push_fields(
        fields,
        |name| bodiless && name.eq_ignore_ascii_case("content-length"),
        out,
    )?;
    Ok(kind)
}

/// Fields RFC 9110 §6.5.1 keeps out of trailers, since they frame, route or authenticate
/// a message and a trailer arrives after it was acted on.
fn not_in_trailers(name: &str) -> bool {
    [
        "content-length",
        "content-encoding",
        "content-type",
        "content-range",
        "host",
        "trailer",
        "authorization",
        "set-cookie",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// Writes into `out` (cleared first) the HTTP/2 trailers of a backend's chunked response:
/// its trailer fields, as for a head, less those that do not belong in trailers.
pub fn response_trailers<'a, I>(fields: I, out: &mut HeaderList) -> Result<(), Malformed>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
{
    out.clear();
    push_fields(fields, not_in_trailers, out)
}
