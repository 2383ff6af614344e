//! Generated response bodies of any length, produced piece by piece as the socket drains.
//!
//! Body byte `i` is `b'a' + i % 26`, so a client can check every byte it got, and where.

use crate::http::push_hex;

/// Data bytes per chunk in a chunked stream.
const CHUNK: usize = 4096;
const ALPHABET: usize = 26;
/// The alphabet repeated, long enough to copy CHUNK bytes starting at any phase.
static PATTERN: [u8; CHUNK + ALPHABET] = pattern();

const fn pattern() -> [u8; CHUNK + ALPHABET] {
    let mut p = [0; CHUNK + ALPHABET];
    let mut i = 0;
    while i < p.len() {
        p[i] = b'a' + (i % ALPHABET) as u8;
        i += 1;
    }
    p
}

pub struct Stream {
    left: u64,
    sent: u64,
    chunked: bool,
    /// For a chunked stream: the last chunk has been written.
    finished: bool,
}

impl Stream {
    pub fn plain(len: u64) -> Stream {
        Stream {
            left: len,
            sent: 0,
            chunked: false,
            finished: false,
        }
    }

    pub fn chunked(len: u64) -> Stream {
        Stream {
            left: len,
            sent: 0,
            chunked: true,
            finished: false,
        }
    }

    /// Appends roughly `budget` more bytes of the encoded body to `out`; returns true once
    /// the whole body has been appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, budget: usize) -> bool {
        let mut room = budget;
        while self.left > 0 && room > 0 {
            let n = usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .min(CHUNK)
                .min(room);
            let phase = (self.sent % ALPHABET as u64) as usize;
            if self.chunked {
                push_hex(out, n);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(&PATTERN[phase..phase + n]);
            if self.chunked {
                out.extend_from_slice(b"\r\n");
            }
            self.left -= n as u64;
            self.sent += n as u64;
            room -= n;
        }
        if self.left == 0 && self.chunked && !self.finished {
            out.extend_from_slice(b"0\r\n\r\n");
            self.finished = true;
        }
        self.left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_continue_the_pattern() {
        let mut s = Stream::plain(10_000);
        let mut out = Vec::new();
        assert!(!s.fill(&mut out, 3));
        assert!(!s.fill(&mut out, 5000));
        assert!(s.fill(&mut out, 1 << 20));
        assert_eq!(out.len(), 10_000);
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );

        let mut c = Stream::chunked(5000);
        let mut out = Vec::new();
        assert!(c.fill(&mut out, 1 << 16));
        assert!(out.starts_with(b"1000\r\nabc"));
        // 5000 = 4096 + 0x388.
        assert!(out.windows(5).any(|w| w == b"388\r\n"));
        assert!(out.ends_with(b"\r\n0\r\n\r\n"));
    }
}
