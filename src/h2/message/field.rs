//! What RFC 9113 §8.2 asks of every field, in requests, responses and trailers alike.

/// A `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A token (RFC 9110 §5.6.2): a method, a protocol name.
pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A field name as HTTP/2 carries it: a token, lowercase (§8.2.1, §8.2).
pub(super) fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b) && !b.is_ascii_uppercase())
}

/// A field value without NUL, CR or LF, and without whitespace at either end (§8.2.1).
pub(super) fn is_valid_value(value: &[u8]) -> bool {
    let ows = |b: &u8| matches!(b, b' ' | b'\t');
    !value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
        && !value.first().is_some_and(ows)
        && !value.last().is_some_and(ows)
}

/// The fields that belong to one HTTP/1.1 connection and have no meaning in HTTP/2
/// (§8.2.2). `te` is the exception that may carry `trailers`, checked apart.
pub(super) fn is_connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|c| name.eq_ignore_ascii_case(c))
}

/// The items of a comma-separated list, trimmed, empty ones left out.
pub(super) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// A Content-Length value: digits only, and few enough of them for a `u64`.
pub(super) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}
