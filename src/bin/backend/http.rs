//! HTTP/1.x wire format: request heads over httparse, request body framing, response heads.

use std::time::{SystemTime, UNIX_EPOCH};

/// Largest request head accepted; a longer one is answered 431.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (with extensions) or trailer section accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Other,
}

/// What the parts of the server after the head parser need to know about a request.
pub struct Head<'a> {
    pub len: usize,
    pub method: Method,
    /// Origin-form path and query (an absolute-form target is reduced to this).
    pub target: &'a str,
    pub keep_alive: bool,
    pub http10: bool,
    pub body: BodyReader,
    pub expect_continue: bool,
    pub request_id: Option<&'a [u8]>,
    /// True when the body may be read as a form (urlencoded, or no Content-Type at all).
    pub form: bool,
}

/// Why a request head was refused; the status to answer before closing.
#[derive(Debug, PartialEq, Eq)]
pub struct Reject(pub u16);

/// Parses one request head from the start of `buf`; `Ok(None)` means it is not complete yet.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head<'_>>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(Reject(431)),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject(431)),
        Err(httparse::Error::Version) if names_a_version(buf) => return Err(Reject(505)),
        Err(_) => return Err(Reject(400)),
    };
    if len > MAX_HEAD {
        return Err(Reject(431));
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Reject(400));
    };
    let http10 = minor == 0;
    let mut head = Head {
        len,
        method: match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            _ => Method::Other,
        },
        target: origin_form(target).ok_or(Reject(400))?,
        keep_alive: !http10,
        http10,
        body: BodyReader::Length(0),
        expect_continue: false,
        request_id: None,
        form: true,
    };
    let mut content_length = None;
    let mut chunked = false;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_decimal(h.value).ok_or(Reject(400))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(Reject(400));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only plain "chunked" is understood; anything else cannot be framed.
            if chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Reject(501));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                return Err(Reject(417));
            }
            // RFC 9110: an HTTP/1.0 client cannot understand 100 Continue.
            head.expect_continue = !http10;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("x-request-id") {
            head.request_id = Some(h.value);
        } else if name.eq_ignore_ascii_case("content-type") {
            let mime = h
                .value
                .split(|&b| b == b';')
                .next()
                .map(<[u8]>::trim_ascii)
                .unwrap_or_default();
            head.form = mime.eq_ignore_ascii_case(b"application/x-www-form-urlencoded");
        }
    }
    // RFC 9112: a 1.1 request needs exactly one Host; 1.0 may have none.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Err(Reject(400));
    }
    head.body = match (chunked, content_length) {
        // Both framings at once is the classic smuggling vector: refuse it.
        (true, Some(_)) => return Err(Reject(400)),
        (true, None) => BodyReader::Chunked(Chunked::Size),
        (false, Some(n)) => BodyReader::Length(n),
        (false, None) => BodyReader::Length(0),
    };
    if head.body.is_done() {
        head.expect_continue = false;
    }
    Ok(Some(head))
}

/// Whether the request line ends in a well-formed "HTTP/x.y", one httparse does not support.
fn names_a_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Reduces a request target to origin-form ("/path?query"); `None` if it has no such form.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))?;
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => Some(&rest[i..]),
        // "http://host?q" has an empty path, which means "/"; the query is dropped with it.
        _ => Some("/"),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Request body framing, decoded incrementally from whatever input has arrived.
pub enum BodyReader {
    /// Bytes still to come.
    Length(u64),
    Chunked(Chunked),
}

#[derive(Clone, Copy)]
pub enum Chunked {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl BodyReader {
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            BodyReader::Length(0) | BodyReader::Chunked(Chunked::Done)
        )
    }

    /// Consumes body bytes from `input`, passing decoded data to `sink`; returns how many
    /// input bytes were used. Stops at the end of the body. `Err` means malformed framing.
    pub fn feed(&mut self, input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<usize, Reject> {
        match self {
            BodyReader::Length(left) => {
                let n = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                sink(&input[..n]);
                *left -= n as u64;
                Ok(n)
            }
            BodyReader::Chunked(state) => feed_chunked(state, input, sink),
        }
    }
}

fn feed_chunked(
    state: &mut Chunked,
    input: &[u8],
    mut sink: impl FnMut(&[u8]),
) -> Result<usize, Reject> {
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        match *state {
            Chunked::Size => match httparse::parse_chunk_size(rest) {
                Ok(httparse::Status::Complete((used, size))) => {
                    pos += used;
                    *state = if size == 0 {
                        Chunked::Trailer
                    } else {
                        Chunked::Data(size)
                    };
                }
                Ok(httparse::Status::Partial) if rest.len() < MAX_CHUNK_LINE => return Ok(pos),
                _ => return Err(Reject(400)),
            },
            Chunked::Data(left) => {
                let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                if n == 0 {
                    return Ok(pos);
                }
                sink(&rest[..n]);
                pos += n;
                *state = match left - n as u64 {
                    0 => Chunked::DataEnd,
                    left => Chunked::Data(left),
                };
            }
            Chunked::DataEnd => match rest {
                [b'\r', b'\n', ..] => {
                    pos += 2;
                    *state = Chunked::Size;
                }
                [] | [b'\r'] => return Ok(pos),
                _ => return Err(Reject(400)),
            },
            Chunked::Trailer => {
                // Trailer fields are read and ignored; the section ends with an empty line.
                let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                    return if rest.len() < MAX_CHUNK_LINE {
                        Ok(pos)
                    } else {
                        Err(Reject(400))
                    };
                };
                if end == 0 || rest[end - 1] != b'\r' {
                    return Err(Reject(400));
                }
                pos += end + 1;
                if end == 1 {
                    *state = Chunked::Done;
                }
            }
            Chunked::Done => return Ok(pos),
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        409 => "Conflict",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How the body after a response head is delimited.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// The body ends when the connection closes.
    UntilClose,
}

/// Writes response heads for one request into the connection's output buffer.
pub struct Reply<'a> {
    pub out: &'a mut Vec<u8>,
    pub date: &'a [u8],
    pub request_id: Option<&'a [u8]>,
    /// The connection closes after this response.
    pub close: bool,
    /// An HTTP/1.0 client that asked for keep-alive must be told it got it.
    pub http10: bool,
    /// HEAD request: the head describes the body, but the body is not sent.
    pub head_only: bool,
}

impl Reply<'_> {
    /// A complete response whose body is the concatenation of `parts`.
    pub fn send(&mut self, status: u16, extra: &[(&str, &str)], parts: &[&[u8]]) {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        self.head(status, extra, Framing::Length(len));
        if !self.head_only {
            for part in parts {
                self.out.extend_from_slice(part);
            }
        }
    }

    pub fn head(&mut self, status: u16, extra: &[(&str, &str)], framing: Framing) {
        let out = &mut *self.out;
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(reason(status).as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nDate: ");
        out.extend_from_slice(self.date);
        match framing {
            Framing::Length(n) => {
                out.extend_from_slice(b"\r\nContent-Length: ");
                push_decimal(out, n);
            }
            Framing::Chunked => out.extend_from_slice(b"\r\nTransfer-Encoding: chunked"),
            Framing::UntilClose => {}
        }
        if let Some(id) = self.request_id {
            out.extend_from_slice(b"\r\nX-Request-Id: ");
            out.extend_from_slice(id);
        }
        // Without framing, only the close can end the body.
        self.close |= framing == Framing::UntilClose;
        if self.close {
            out.extend_from_slice(b"\r\nConnection: close");
        } else if self.http10 {
            out.extend_from_slice(b"\r\nConnection: keep-alive");
        }
        for (name, value) in extra {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
    }
}

pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

pub fn push_hex(out: &mut Vec<u8>, n: usize) {
    let digits = usize::BITS / 4 - n.leading_zeros() / 4;
    for i in (0..digits.max(1)).rev() {
        out.push(b"0123456789abcdef"[(n >> (4 * i)) & 0xf]);
    }
}

/// The `Date` header value (IMF-fixdate), rebuilt at most once a second.
pub struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    pub fn new() -> Self {
        let mut cache = DateCache {
            secs: u64::MAX,
            text: [b' '; 29],
        };
        cache.refresh();
        cache
    }

    pub fn refresh(&mut self) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            self.text = imf_fixdate(secs);
        }
    }

    pub fn get(&self) -> &[u8] {
        &self.text
    }
}

/// Formats Unix seconds as "Sun, 06 Nov 1994 08:49:37 GMT".
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = lb::logging::civil_from_days(days);

    let mut t = [b' '; 29];
    t[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    t[3] = b',';
    put2(&mut t[5..7], day);
    t[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    put2(&mut t[12..14], year / 100 % 100);
    put2(&mut t[14..16], year % 100);
    put2(&mut t[17..19], rem / 3600);
    t[19] = b':';
    put2(&mut t[20..22], rem / 60 % 60);
    t[22] = b':';
    put2(&mut t[23..25], rem % 60);
    t[26..29].copy_from_slice(b"GMT");
    t
}

fn put2(dst: &mut [u8], n: u64) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    fn decode(input: &[u8]) -> Result<(Vec<u8>, usize, bool), Reject> {
        let mut body = BodyReader::Chunked(Chunked::Size);
        let mut data = Vec::new();
        let used = body.feed(input, |d| data.extend_from_slice(d))?;
        Ok((data, used, body.is_done()))
    }

    #[test]
    fn chunked_bodies() {
        let whole = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(
            decode(whole),
            Ok((b"Wikipedia".to_vec(), whole.len() - 4, true))
        );
        // Every prefix decodes what it can and waits for the rest.
        for cut in 0..whole.len() - 4 {
            let (data, used, done) = decode(&whole[..cut]).expect("prefix is valid");
            assert!(!done && used <= cut && b"Wikipedia".starts_with(&data));
        }
        assert!(decode(b"zz\r\n").is_err());
        assert!(decode(b"4\r\nWikiXX").is_err());
        assert!(decode(b"ffffffffffffffffff\r\n").is_err());
    }

    #[test]
    fn heads() {
        let h = parse_head(b"GET http://x:1/a?b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((h.target, h.keep_alive, h.http10), ("/a?b", true, true));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Ok(None)
        ));
        let reject = |raw: &[u8]| parse_head(raw).err();
        assert_eq!(reject(b"GET / HTTP/1.1\r\n\r\n"), Some(Reject(400)));
        assert_eq!(
            reject(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            Some(Reject(505))
        );
        let both = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(reject(both), Some(Reject(400)));
        assert_eq!(
            reject(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"),
            Some(Reject(400))
        );
    }
}
