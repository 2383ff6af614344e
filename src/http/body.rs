//! Body framing: how many of the bytes that follow a head belong to its body.
//! Chunked bodies are checked byte by byte but forwarded as they came, or with
//! the framing stripped for an HTTP/1.0 client.

/// One piece of body input, as `Framing::next` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// This many bytes of payload.
    Data(usize),
    /// This many bytes of chunk framing (sizes, extensions, CRLFs, trailers).
    Framing(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all, or the body has been read.
    Done,
    Length(u64),
    Chunked(Chunked),
    /// The body ends when the peer closes (responses only).
    UntilClose,
}

/// The longest chunk-size line and trailer section we accept.
const MAX_CHUNK_LINE: u32 = 4096;
const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// In a chunk extension, up to its CRLF.
    Extension {
        size: u64,
        seen: u32,
    },
    /// After the CR that ends a size line.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or the final CRLF.
    TrailerStart {
        seen: u32,
    },
    TrailerLine {
        seen: u32,
    },
    TrailerLf {
        seen: u32,
        empty: bool,
    },
    /// The final CRLF was read.
    End,
}

impl Chunked {
    pub fn new() -> Self {
        Chunked::Size { size: 0, digits: 0 }
    }
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
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
                if let Chunked::Data { left } = *state {
                    let n = left.min(input.len() as u64);
                    *state = if n == left {
                        Chunked::DataCr
                    } else {
                        Chunked::Data { left: left - n }
                    };
                    return Ok(Some(Segment::Data(n as usize)));
                }
                let mut used = 0;
                for &b in input {
                    used += 1;
                    *state = step(*state, b)?;
                    match state {
                        Chunked::Data { .. } => break,
                        Chunked::End => {
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
    /// framing stripped when `strip_chunks`. Returns how many input bytes belong to the body.
    pub fn forward(
        &mut self,
        input: &[u8],
        strip_chunks: bool,
        mut out: impl FnMut(&[u8]),
    ) -> Result<usize, BadChunk> {
        if strip_chunks {
            return self.walk(input, out);
        }
        let used = self.walk(input, |_| {})?;
        out(&input[..used]);
        Ok(used)
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

fn step(state: Chunked, b: u8) -> Result<Chunked, BadChunk> {
    use Chunked::*;
    Ok(match state {
        Size { size, digits } => match (hex(b), b) {
            (Some(d), _) => {
                if digits >= 15 {
                    return Err(BadChunk("chunk size too large"));
                }
                Size {
                    size: size * 16 + d,
                    digits: digits + 1,
                }
            }
            (None, _) if digits == 0 => return Err(BadChunk("chunk size is not hexadecimal")),
            (None, b';') | (None, b' ') | (None, b'\t') => Extension { size, seen: 0 },
            (None, b'\r') => SizeLf { size },
            _ => return Err(BadChunk("bad character in chunk size")),
        },
        Extension { size, seen } => match b {
            b'\r' => SizeLf { size },
            b'\n' => return Err(BadChunk("bare LF in chunk size line")),
            _ if seen >= MAX_CHUNK_LINE => return Err(BadChunk("chunk extension too long")),
            0x00..=0x08 | 0x0a..=0x1f | 0x7f => {
                return Err(BadChunk("control character in chunk extension"));
            }
            _ => Extension {
                size,
                seen: seen + 1,
            },
        },
        SizeLf { size } => match b {
            b'\n' if size == 0 => TrailerStart { seen: 0 },
            b'\n' => Data { left: size },
            _ => return Err(BadChunk("chunk size line not ended by CRLF")),
        },
        // `Framing::next` consumes data in bulk and stops at the end; neither reaches here.
        Data { .. } | End => return Err(BadChunk("chunked body already complete")),
        DataCr => match b {
            b'\r' => DataLf,
            _ => return Err(BadChunk("chunk data not followed by CRLF")),
        },
        DataLf => match b {
            b'\n' => Size { size: 0, digits: 0 },
            _ => return Err(BadChunk("chunk data not followed by CRLF")),
        },
        TrailerStart { seen } => match b {
            b'\r' => TrailerLf { seen, empty: true },
            _ => TrailerLine { seen: seen + 1 },
        },
        TrailerLine { seen } => match b {
            _ if seen >= MAX_TRAILERS => return Err(BadChunk("trailer section too large")),
            b'\r' => TrailerLf { seen, empty: false },
            b'\n' => return Err(BadChunk("bare LF in trailer")),
            _ => TrailerLine { seen: seen + 1 },
        },
        TrailerLf { seen, empty } => match b {
            b'\n' if empty => End,
            b'\n' => TrailerStart { seen },
            _ => return Err(BadChunk("trailer line not ended by CRLF")),
        },
    })
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
    fn until_close_takes_everything() {
        let mut f = Framing::UntilClose;
        assert_eq!(decode(&mut f, b"abc").unwrap().0, 3);
        assert!(!f.is_done());
    }
}
