//! The chunked decoder against a plain recursive-descent reading of RFC 9112 §7.1: both
//! agree on every input (accepted length, payload, or refusal), whatever way the input is
//! split across reads, and what is accepted has no bare CR or LF in its framing.
#![no_main]

use lb::http::body::{Framing, Segment};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::assert_crlf_only;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The body ends after this many bytes, with this payload.
    Complete(usize, Vec<u8>),
    /// Valid so far; more bytes are needed.
    Incomplete,
    Invalid,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_visible(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// The reference: the grammar written out as it reads in the RFC, over the whole input.
struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

/// `None` from a step: the input ended first.
type Step<T> = Result<Option<T>, ()>;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
    fn crlf(&mut self) -> Step<()> {
        for want in [b'\r', b'\n'] {
            match self.peek() {
                None => return Ok(None),
                Some(b) if b == want => self.at += 1,
                Some(_) => return Err(()),
            }
        }
        Ok(Some(()))
    }
    fn token(&mut self) -> Step<()> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        match self.peek() {
            None => Ok(None),
            Some(_) if self.at == start => Err(()),
            Some(_) => Ok(Some(())),
        }
    }
    fn quoted(&mut self) -> Step<()> {
        self.at += 1;
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Some(()));
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        None => return Ok(None),
                        Some(b) if b == b' ' || b == b'\t' || is_visible(b) => self.at += 1,
                        Some(_) => return Err(()),
                    }
                }
                Some(b) if b == b' ' || b == b'\t' || is_visible(b) => self.at += 1,
                Some(_) => return Err(()),
            }
        }
    }
    /// chunk-size [ chunk-ext ] CRLF; the size.
    fn size_line(&mut self) -> Step<u64> {
        let start = self.at;
        let mut size: u64 = 0;
        let mut digits = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_hexdigit) {
            let d = u64::from((b as char).to_digit(16).unwrap_or(0));
            if size > 0 || d > 0 {
                digits += 1;
                if digits > 15 {
                    return Err(());
                }
            }
            size = size * 16 + d;
            self.at += 1;
        }
        if self.peek().is_none() {
            return Ok(None);
        }
        if self.at == start {
            return Err(());
        }
        loop {
            let before = self.at;
            self.ws();
            match self.peek() {
                None => return Ok(None),
                Some(b';') => self.at += 1,
                Some(_) if self.at == before => break,
                Some(_) => return Err(()),
            }
            self.ws();
            if self.token()?.is_none() {
                return Ok(None);
            }
            let after_name = self.at;
            self.ws();
            match self.peek() {
                None => return Ok(None),
                Some(b'=') => {
                    self.at += 1;
                    self.ws();
                    let value = match self.peek() {
                        None => return Ok(None),
                        Some(b'"') => self.quoted()?,
                        Some(_) => self.token()?,
                    };
                    if value.is_none() {
                        return Ok(None);
                    }
                }
                // Whitespace after a name belongs to a following ";" or "=" only.
                Some(_) => self.at = after_name,
            }
        }
        Ok(self.crlf()?.map(|()| size))
    }
    /// trailer-section CRLF.
    fn trailers(&mut self) -> Step<()> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(b'\r') => return self.crlf(),
                Some(_) => {}
            }
            if self.token()?.is_none() {
                return Ok(None);
            }
            match self.peek() {
                None => return Ok(None),
                Some(b':') => self.at += 1,
                Some(_) => return Err(()),
            }
            while self
                .peek()
                .is_some_and(|b| b == b' ' || b == b'\t' || is_visible(b))
            {
                self.at += 1;
            }
            if self.crlf()?.is_none() {
                return Ok(None);
            }
        }
    }
    fn body(&mut self) -> Verdict {
        let mut payload = Vec::new();
        loop {
            let size = match self.size_line() {
                Err(()) => return Verdict::Invalid,
                Ok(None) => return Verdict::Incomplete,
                Ok(Some(size)) => size,
            };
            if size == 0 {
                return match self.trailers() {
                    Err(()) => Verdict::Invalid,
                    Ok(None) => Verdict::Incomplete,
                    Ok(Some(())) => Verdict::Complete(self.at, payload),
                };
            }
            let left = self.s.len() - self.at;
            if (left as u64) < size {
                return Verdict::Incomplete;
            }
            let end = self.at + size as usize;
            payload.extend_from_slice(&self.s[self.at..end]);
            self.at = end;
            match self.crlf() {
                Err(()) => return Verdict::Invalid,
                Ok(None) => return Verdict::Incomplete,
                Ok(Some(())) => {}
            }
        }
    }
}

/// The decoder fed `input` in the pieces `cuts` marks.
fn decode(input: &[u8], cuts: &[usize]) -> Verdict {
    let mut framing = Framing::chunked();
    let mut payload = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(at, input.len());
        match framing.walk(&input[at..cut], |d| payload.extend_from_slice(d)) {
            Err(_) => return Verdict::Invalid,
            Ok(used) => at += used,
        }
        if framing.is_done() {
            return Verdict::Complete(at, payload);
        }
    }
    Verdict::Incomplete
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose where the input is split between reads.
    let (cuts, input) = match data {
        [a, b, rest @ ..] => {
            let mut cuts = vec![
                usize::from(*a) % (rest.len() + 1),
                usize::from(*b) * 3 % (rest.len() + 1),
            ];
            cuts.sort_unstable();
            (cuts, rest)
        }
        _ => return,
    };
    let expected = Reader { s: input, at: 0 }.body();
    let whole = decode(input, &[]);
    assert_eq!(whole, expected, "{:?}", String::from_utf8_lossy(input));
    assert_eq!(decode(input, &cuts), whole, "split at {cuts:?}");

    // Forwarded as it came: exactly the accepted bytes, nothing when refused.
    let mut raw = Vec::new();
    let forwarded = Framing::chunked().forward(input, false, |b| raw.extend_from_slice(b));
    match (&whole, forwarded) {
        (Verdict::Invalid, r) => {
            assert!(r.is_err());
            assert!(raw.is_empty());
        }
        (Verdict::Complete(n, _), Ok(used)) => {
            assert_eq!(used, *n);
            assert_eq!(raw, &input[..used]);
            // Outside the payload, line endings are CRLF only.
            let mut framing = Framing::chunked();
            let mut at = 0;
            while let Ok(Some(segment)) = framing.next(&raw[at..]) {
                match segment {
                    Segment::Data(n) => at += n,
                    Segment::Framing(n) => {
                        assert_crlf_only("chunk framing", &raw[at..at + n]);
                        at += n;
                    }
                }
            }
            assert_eq!(at, used);
        }
        (_, r) => assert!(r.is_ok()),
    }
});
