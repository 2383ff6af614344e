//! An HTTP/1.1 request head, as lb's HTTP/1 code parsed and forwards it, turned into the
//! header list of a request on an HTTP/2 stream to a backend (RFC 9113 §8.2.2, §8.3.1).

use super::Malformed;
use super::field::{is_token, tokens};
use super::request::is_valid_authority;
use super::response::push_fields;
use crate::h2::hpack::HeaderList;

/// The authority an absolute-form target names, if it is one, and its path: what
/// `:authority` and `:path` say (RFC 9112 §3.2, §3.3: the target's authority wins over
/// Host).
fn split_target(target: &[u8]) -> Result<(Option<&[u8]>, &[u8]), Malformed> {
    if target.first() == Some(&b'/') || target == b"*" {
        return Ok((None, target));
    }
    let at = target
        .windows(3)
        .position(|w| w == b"://")
        .filter(|&at| at > 0 && target.iter().take(at).all(u8::is_ascii_alphabetic))
        .ok_or("3.2 request target neither origin-form, absolute-form nor *")?;
    let rest = target.get(at + 3..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains(&b'?') {
        return Err("3.2 absolute-form target with a query but no path");
    }
    Ok((Some(authority), if path.is_empty() { b"/" } else { path }))
}

/// Writes into `out` (cleared first) the HTTP/2 header list of an HTTP/1.1 request:
/// `:method`, `:scheme` (the backend connection's: `http` for h2c, `https` over TLS),
/// `:authority` from the target or Host, `:path`; then its fields (`fields` as lb's
/// parser yields them: the name and value of each header line) lowercased, without Host,
/// the connection-specific fields and those a Connection field names (§8.2.2), and `te`
/// only as `trailers` (gRPC needs it). Content-Length goes on; a chunked body becomes
/// DATA frames without one. `Err`: the request cannot go to an HTTP/2 backend.
pub fn request_list<'a, I>(
    method: &str,
    target: &[u8],
    scheme: &str,
    fields: I,
    out: &mut HeaderList,
) -> Result<(), Malformed>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
{
    out.clear();
    if !is_token(method.as_bytes()) {
        return Err("8.3.1 :method not a token");
    }
    if method == "CONNECT" {
        return Err("8.5 CONNECT is not carried to an HTTP/2 backend");
    }
    let (authority, path) = split_target(target)?;
    if path == b"*" && method != "OPTIONS" {
        return Err("8.3.1 :path * for a method other than OPTIONS");
    }
    if !path.iter().all(u8::is_ascii_graphic) {
        return Err("8.3.1 :path with a byte a request target cannot have");
    }
    let host = fields
        .clone()
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim_ascii());
    let authority = authority
        .or(host)
        .filter(|a| is_valid_authority(a))
        .ok_or("8.3.1 no authority: neither the target nor Host names a host")?;
    out.push(b":method", method.as_bytes());
    out.push(b":scheme", scheme.as_bytes());
    out.push(b":authority", authority);
    out.push(b":path", path);
    let trailers = fields
        .clone()
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("te"))
        .any(|(_, value)| tokens(value).any(|t| t.eq_ignore_ascii_case(b"trailers")));
    push_fields(fields, |name| name.eq_ignore_ascii_case("host"), out)?;
    if trailers {
        out.push(b"te", b"trailers");
    }
    Ok(())
}
