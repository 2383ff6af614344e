//! The chunked transfer coding of RFC 9112 §7.1, checked byte by byte. The decoder
//! accepts exactly the grammar below and nothing else, so that no byte that a
//! backend (or a client) might split differently from us is ever forwarded:
//!
//! ```text
//! chunked-body    = *chunk last-chunk trailer-section CRLF
//! chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size      = 1*HEXDIG
//! last-chunk      = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext       = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-name  = token
//! chunk-ext-val   = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! field-line      = field-name ":" OWS field-value OWS
//! ```
//!
//! Line endings are CRLF only; a trailer line may not be folded; a field value holds
//! visible characters, obs-text, spaces and tabs.

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk(pub &'static str);

/// The longest chunk-size line and trailer section we accept.
const MAX_CHUNK_LINE: u32 = 4096;
const MAX_TRAILERS: u32 = 16 * 1024;
/// Significant hex digits in a chunk size: 15 keep it below 2^60.
const MAX_SIZE_DIGITS: u8 = 15;

/// Where the decoder is in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// In the hex digits of a chunk size.
    Size,
    /// Whitespace after the size or an extension value: only `;` may follow.
    ExtGap,
    /// After `;`: optional whitespace, then an extension name.
    ExtNameStart,
    ExtName,
    /// Whitespace after an extension name: `=` or `;` may follow.
    ExtNameGap,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    /// After a backslash inside a quoted string.
    ExtQuotedPair,
    /// Right after the closing quote.
    ExtQuotedEnd,
    /// After the CR that ends a size line.
    SizeLf,
    /// In chunk data; `Chunked::n` bytes are left.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// After the CR of the final CRLF.
    FinalLf,
    /// The final CRLF was read.
    End,
}

/// The decoder's state: where it is, the chunk size (or data left), and the bytes of
/// the current size line or trailer section, for their limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    pub part: Part,
    /// The chunk size while its line is read; the data left while in `Data`.
    pub n: u64,
    digits: u8,
    seen: u32,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

/// tchar of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// VCHAR or obs-text.
fn is_visible(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// qdtext of RFC 9110 §5.6.4: anything visible but `"` and `\`, and whitespace.
fn is_qdtext(b: u8) -> bool {
    is_ws(b) || (is_visible(b) && b != b'"' && b != b'\\')
}

impl Chunked {
    pub fn new() -> Self {
        Chunked {
            part: Part::Size,
            n: 0,
            digits: 0,
            seen: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.part == Part::End
    }

    /// Takes `n` bytes of chunk data (at most `self.n`), when in `Data`.
    pub fn take_data(&mut self, n: u64) {
        self.n -= n;
        if self.n == 0 {
            self.part = Part::DataCr;
        }
    }

    /// One byte of framing (anything but chunk data).
    pub fn step(&mut self, b: u8) -> Result<(), BadChunk> {
        use Part::*;
        let in_size_line = matches!(
            self.part,
            Size | ExtGap
                | ExtNameStart
                | ExtName
                | ExtNameGap
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuotedEnd
        );
        let in_trailers = matches!(self.part, TrailerStart | TrailerName | TrailerValue);
        if in_size_line || in_trailers {
            self.seen += 1;
            if in_size_line && self.seen > MAX_CHUNK_LINE {
                return Err(BadChunk("chunk size line too long"));
            }
            if in_trailers && self.seen > MAX_TRAILERS {
                return Err(BadChunk("trailer section too large"));
            }
        }
        self.part = match (self.part, b) {
            (Size, _) if b.is_ascii_hexdigit() => {
                self.size_digit(b)?;
                Size
            }
            (Size, _) if self.seen == 1 => return Err(BadChunk("chunk size is not hexadecimal")),
            (Size | ExtGap | ExtToken | ExtQuotedEnd, b';') => ExtNameStart,
            (Size | ExtGap | ExtToken | ExtQuotedEnd, _) if is_ws(b) => ExtGap,
            (Size | ExtName | ExtToken | ExtQuotedEnd, b'\r') => SizeLf,
            (ExtNameStart, _) if is_ws(b) => ExtNameStart,
            (ExtNameStart | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtNameGap, b';') => ExtNameStart,
            (ExtName | ExtNameGap, b'=') => ExtValueStart,
            (ExtName | ExtNameGap, _) if is_ws(b) => ExtNameGap,
            (ExtValueStart, _) if is_ws(b) => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtQuotedEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedPair, _) if is_ws(b) || is_visible(b) => ExtQuoted,
            (SizeLf, b'\n') => {
                self.seen = 0;
                if self.n == 0 { TrailerStart } else { Data }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.n = 0;
                self.digits = 0;
                self.seen = 0;
                Size
            }
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart | TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_ws(b) || is_visible(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => End,
            (part, b) => return Err(reason(part, b)),
        };
        Ok(())
    }

    fn size_digit(&mut self, b: u8) -> Result<(), BadChunk> {
        let d = u64::from((b as char).to_digit(16).unwrap_or(0));
        // Leading zeros are allowed in any number; only significant digits count.
        if self.n == 0 && d == 0 {
            return Ok(());
        }
        if self.digits >= MAX_SIZE_DIGITS {
            return Err(BadChunk("chunk size too large"));
        }
        self.digits += 1;
        self.n = self.n * 16 + d;
        Ok(())
    }
}

/// The reason for a byte the grammar has no place for.
fn reason(part: Part, b: u8) -> BadChunk {
    use Part::*;
    BadChunk(match (part, b) {
        (_, b'\n') => "line ending without CR in chunked framing",
        (SizeLf | DataLf | TrailerLf | FinalLf, _) => "CR not followed by LF in chunked framing",
        (DataCr, _) => "chunk data not followed by CRLF",
        (Size, _) => "bad character in chunk size",
        (ExtGap | ExtNameGap | ExtValueStart, b'\r') => "whitespace before the end of a size line",
        (ExtNameStart | ExtName | ExtNameGap | ExtValueStart | ExtToken, _) => {
            "malformed chunk extension"
        }
        (ExtQuoted | ExtQuotedPair | ExtQuotedEnd, _) => "malformed quoted chunk extension",
        (ExtGap, _) => "malformed chunk extension",
        (TrailerStart, b' ' | b'\t') => "folded trailer line",
        (TrailerStart | TrailerName, _) => "malformed trailer field name",
        (TrailerValue, _) => "control character in trailer field",
        (Data | End, _) => "chunked body already complete",
    })
}

#[cfg(test)]
mod tests;
