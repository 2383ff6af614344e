//! `application/x-www-form-urlencoded` fields and percent-decoding, for the write routes.

/// The value of `key` in an `application/x-www-form-urlencoded` string, decoded.
pub fn form_value(form: &[u8], key: &str) -> Option<String> {
    form.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(k, true) == key.as_bytes())
            .then(|| String::from_utf8_lossy(&percent_decode(v, true)).into_owned())
    })
}

/// Decodes %XX escapes (a malformed one is kept as is) and, in forms, '+' as a space.
pub fn percent_decode(s: &[u8], plus_as_space: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let escaped = match s.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(if plus_as_space && s[i] == b'+' {
                    b' '
                } else {
                    s[i]
                });
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let form = b"a=1&username=j%C3%A4ck+o%27neil&bad=%zz&password";
        assert_eq!(form_value(form, "username").as_deref(), Some("jäck o'neil"));
        assert_eq!(form_value(form, "bad").as_deref(), Some("%zz"));
        assert_eq!(form_value(form, "password").as_deref(), Some(""));
        assert_eq!(form_value(form, "missing"), None);
    }
}
