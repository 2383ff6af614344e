//! Checks the targets share (each target uses some of them).
#![allow(dead_code)]

/// Every CR is followed by LF and every LF preceded by CR: no bare line ending that a
/// backend or a client might split differently from us.
pub fn assert_crlf_only(what: &str, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        let ok = match b {
            b'\r' => bytes.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && bytes[i - 1] == b'\r',
            _ => true,
        };
        assert!(
            ok,
            "bare CR or LF at {i} in {what}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// The values of every field called `name` in `headers`.
pub fn fields<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}
