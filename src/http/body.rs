//! Body framing: how many of the bytes that follow a head belong to its body.
//! Chunked bodies are checked byte by byte (`chunked.rs`) but forwarded as they came,
//! or with the framing stripped for an HTTP/1.0 client.

pub use super::chunked::BadChunk;
use super::chunked::{Chunked, Part};

/// One piece of body input, as `Framing::next` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// This many bytes of payload.
    Data(usize),
    /// This many bytes of chunk framing (sizes, extensions, CRLFs, trailers).
    Framing(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all, or the body has been read.
    Done,
    Length(u64),
    Chunked(Chunked),
    /// The body ends when the peer closes (responses only).
    UntilClose,
}

impl Framing {
    pub fn chunked() -> Self {
        Framing::Chunked(Chunked::new())
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Done)
    }

    /// Classifies the leading bytes of `input`; `None` when the body is done or `input` is empty.
    pub fn next(&mut self, input: &[u8]) -> Result<Option<Segment>, BadChunk> {
        if input.is_empty() {
            return Ok(None);
        }
        match self {
            Framing::Done => Ok(None),
            Framing::UntilClose => Ok(Some(Segment::Data(input.len()))),
            Framing::Length(left) => {
                let n = (*left).min(input.len() as u64);
                *left -= n;
                if *left == 0 {
                    *self = Framing::Done;
                }
                Ok(Some(Segment::Data(n as usize)))
            }
            Framing::Chunked(state) => {
                if state.part == Part::Data {
                    let n = state.n.min(input.len() as u64);
                    state.take_data(n);
                    return Ok(Some(Segment::Data(n as usize)));
                }
                let mut used = 0;
                for &b in input {
                    used += 1;
                    state.step(b)?;
                    match state.part {
                        Part::Data => break,
                        Part::End => {
                            *self = Framing::Done;
                            break;
                        }
                        _ => {}
                    }
                }
                Ok(Some(Segment::Framing(used)))
            }
        }
    }

    /// Runs the framing over all of `input`, calling `payload` with each data slice.
    /// Returns how many bytes belong to the body.
    pub fn walk(
        &mut self,
        input: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<usize, BadChunk> {
        let mut at = 0;
        while let Some(seg) = self.next(&input[at..])? {
            match seg {
                Segment::Data(n) => {
                    payload(&input[at..at + n]);
                    at += n;
                }
                Segment::Framing(n) => at += n,
            }
        }
        Ok(at)
    }

    /// Hands `out` the body bytes at the front of `input`: as they came, or with chunk
    /// framing stripped when `strip_chunks`. Returns how many input bytes belong to the
    /// body. Nothing reaches `out` unless all of `input` that belongs to the body is valid.
    pub fn forward(
        &mut self,
        input: &[u8],
        strip_chunks: bool,
        mut out: impl FnMut(&[u8]),
    ) -> Result<usize, BadChunk> {
        let mut checked = *self;
        let used = checked.walk(input, |_| {})?;
        if strip_chunks {
            self.walk(&input[..used], out)?;
        } else {
            *self = checked;
            out(&input[..used]);
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(framing: &mut Framing, input: &[u8]) -> Result<(usize, Vec<u8>), BadChunk> {
        let mut out = Vec::new();
        let used = framing.walk(input, |d| out.extend_from_slice(d))?;
        Ok((used, out))
    }

    #[test]
    fn content_length_stops_at_its_end() {
        let mut f = Framing::Length(5);
        assert_eq!(decode(&mut f, b"hel").unwrap(), (3, b"hel".to_vec()));
        assert_eq!(decode(&mut f, b"loGET").unwrap(), (2, b"lo".to_vec()));
        assert!(f.is_done());
    }

    #[test]
    fn chunked_whole_and_byte_by_byte() {
        let body =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let mut f = Framing::chunked();
        let (used, out) = decode(&mut f, body).unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&body[used..], b"NEXT");
        assert!(f.is_done());

        let mut f = Framing::chunked();
        let mut out = Vec::new();
        let mut used = 0;
        for i in 0..body.len() {
            used += f
                .walk(&body[i..i + 1], |d| out.extend_from_slice(d))
                .unwrap();
        }
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(used, body.len() - 4);
    }

    #[test]
    fn chunked_rejects_malformed() {
        for bad in [
            &b"x\r\n"[..],
            b"4\nWiki\r\n",
            b"4\r\nWikiXX",
            b"4\r\nWiki\r\r",
            b"-1\r\n",
            b"1ffffffffffffffff\r\n",
            b"0\r\nTrailer\n",
            b"4 \x01\r\n",
        ] {
            let mut f = Framing::chunked();
            assert!(
                decode(&mut f, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn forward_keeps_or_strips_the_chunk_framing() {
        let body = b"3\r\nabc\r\n0\r\n\r\nNEXT";
        let mut raw = Vec::new();
        let used = Framing::chunked()
            .forward(body, false, |b| raw.extend_from_slice(b))
            .unwrap();
        assert_eq!(used, body.len() - 4);
        assert_eq!(raw, &body[..used]);
        let mut stripped = Vec::new();
        let used = Framing::chunked()
            .forward(body, true, |b| stripped.extend_from_slice(b))
            .unwrap();
        assert_eq!(used, body.len() - 4);
        assert_eq!(stripped, b"abc");
    }

    #[test]
    fn forward_hands_on_nothing_of_a_broken_batch() {
        for strip in [false, true] {
            let mut out = Vec::new();
            let got = Framing::chunked()
                .forward(b"3\r\nabc\r\n0\r\n\nX", strip, |b| out.extend_from_slice(b));
            assert!(got.is_err());
            assert!(out.is_empty(), "{out:?}");
        }
    }

    #[test]
    fn until_close_takes_everything() {
        let mut f = Framing::UntilClose;
        assert_eq!(decode(&mut f, b"abc").unwrap().0, 3);
        assert!(!f.is_done());
    }
}
