//! A backend's HTTP/2 response header list checked as RFC 9113 §8.3.2 asks, and written
//! as the HTTP/1.1 response head that lb's HTTP/1 code reads; its trailers go out as the
//! trailer section of a chunked body (`write_trailers`).

use super::field::{content_length, is_connection_specific, is_valid_name, is_valid_value};
use super::request::{put_decimal, put_field};
use super::{BodyFraming, Malformed};
use crate::h2::hpack::HeaderList;

/// What lb reads from a response's header list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_length: Option<u64>,
}

/// A `:status` value: three digits, 100 to 999 (RFC 9110 §15).
fn parse_status(value: &[u8]) -> Option<u16> {
    let digits: &[u8; 3] = value.try_into().ok()?;
    if !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

/// Checks a response's header list (§8.2, §8.3.2). `Err` is why it is malformed: the
/// stream ends with PROTOCOL_ERROR (§8.1.1).
pub fn check_response(list: &HeaderList) -> Result<Response, Malformed> {
    let mut status = None;
    let mut regular = false;
    let mut length = None;
    for (name, value) in list.iter() {
        if !is_valid_value(value) {
            return Err("8.2.1 field value with NUL, CR, LF or whitespace at an end");
        }
        if name.first() == Some(&b':') {
            if regular {
                return Err("8.3 pseudo-header field after a regular field");
            }
            if name != b":status" {
                return Err("8.3.2 pseudo-header field other than :status in a response");
            }
            if status.replace(value).is_some() {
                return Err("8.3.2 repeated :status");
            }
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
            _ => {}
        }
    }
    let status = status.ok_or("8.3.2 no :status")?;
    let status = parse_status(status).ok_or("8.3.2 :status not three digits")?;
    if status == 101 {
        return Err("8.6 101 Switching Protocols, which HTTP/2 does not have");
    }
    Ok(Response {
        status,
        content_length: length,
    })
}

/// Writes the HTTP/1.1 response head equivalent to `response` (checked from `list`): the
/// status line, the regular fields but `content-length`, and the framing, which it
/// returns: none for 1xx, 204 and 304 (a 304 keeps its content-length); the
/// content-length if the list has one; else `transfer-encoding: chunked`, so the DATA
/// follow as chunks (`put_chunk_size`) and the trailers, or `LAST_CHUNK`, end them. To a
/// HEAD request no body follows whatever it says. lb's HTTP/1 code then reads it as any
/// backend's response.
pub fn write_response_head(
    response: &Response,
    list: &HeaderList,
    out: &mut Vec<u8>,
) -> BodyFraming {
    let status = response.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(crate::route::reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in list.iter() {
        if name.first() != Some(&b':') && name != b"content-length" {
            put_field(out, name, value);
        }
    }
    let framing = match (status, response.content_length) {
        (100..=199 | 204, _) => BodyFraming::None,
        (304, length) => {
            if let Some(n) = length {
                put_length(out, n);
            }
            BodyFraming::None
        }
        (_, Some(n)) => {
            put_length(out, n);
            BodyFraming::Length(n)
        }
        (_, None) => {
            put_field(out, b"transfer-encoding", b"chunked");
            BodyFraming::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    framing
}

fn put_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    put_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}
