//! The path lb routes on, and forwards: RFC 3986 §6.2.2 normalization of the request
//! target, so that `/x/../admin`, `//admin` and `/%61dmin` are all `/admin` to the
//! route table and to the backend alike.
//!
//! - `%xx` of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded; every other
//!   `%xx` is kept, its hex digits upper-cased.
//! - Dot segments are removed (§5.2.4); a `..` that would climb above the root is refused,
//!   not clamped, since a backend that resolves it differently would serve another file.
//! - Empty segments are merged (`//admin` is `/admin`): many servers merge them, so a path
//!   that still held them could reach a resource its route was meant to guard.
//! - Refused: `%00`-`%1F` and `%7F` (control characters once decoded), `%2F`, `%5C` and `\`
//!   (a backend may read them as a separator lb did not see), `#` (a fragment is never sent,
//!   and a backend may cut the path there), a dot segment with parameters (`..;x`, which
//!   some servers read as `..`), and a `%` without two hex digits.
//!
//! The query is kept as sent. A target that needs no change is returned as is, without a
//! copy; any other is written into the caller's buffer, which it never outgrows.

/// Why a request target cannot be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// `*`, absolute-form or authority-form: only origin-form is routed.
    NotOriginForm,
    /// Longer than the caller's buffer.
    TooLong,
    /// A `..` segment above the root.
    AboveRoot,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// `%00`-`%1F` or `%7F`.
    Control,
    /// `%2F`, `%5C` or a raw `\`.
    EncodedSeparator,
    /// A `#` anywhere in the target.
    Fragment,
    /// `.;x` or `..;x` as a segment.
    DotParams,
}

impl BadTarget {
    /// The status to answer with: 414 for a target too long, 400 for the rest.
    pub fn status(self) -> u16 {
        match self {
            BadTarget::TooLong => 414,
            _ => 400,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            BadTarget::NotOriginForm => "request target is not a path",
            BadTarget::TooLong => "request target too long",
            BadTarget::AboveRoot => "path climbs above the root",
            BadTarget::BadEscape => "path has a % without two hex digits",
            BadTarget::Control => "path has an encoded control character",
            BadTarget::EncodedSeparator => "path has an encoded slash or a backslash",
            BadTarget::Fragment => "request target has a #",
            BadTarget::DotParams => "path has a dot segment with parameters",
        }
    }
}

/// A normalized target: the path, then the query as sent (with its `?`) if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized<'a> {
    pub target: &'a [u8],
    pub path_len: usize,
}

/// Normalizes `target` (origin-form: a path, then `?query` if any), returning it untouched
/// when it is already normal and otherwise writing it into `scratch`. A target longer than
/// `scratch` is refused as `TooLong` whether or not it needed a change, so that what is
/// accepted does not depend on how it was written.
pub fn normalize<'a>(target: &'a [u8], scratch: &'a mut [u8]) -> Result<Normalized<'a>, BadTarget> {
    if target.first() != Some(&b'/') {
        return Err(BadTarget::NotOriginForm);
    }
    if target.len() > scratch.len() {
        return Err(BadTarget::TooLong);
    }
    let (path_len, normal) = scan(target)?;
    if target[path_len..].contains(&b'#') {
        return Err(BadTarget::Fragment);
    }
    if normal {
        return Ok(Normalized { target, path_len });
    }
    let (path, query) = target.split_at(path_len);
    let mut out = Out { buf: scratch, n: 0 };
    normalize_path(path, &mut out)?;
    let path_len = out.n;
    out.put(query)?;
    let n = out.n;
    let written: &'a [u8] = out.buf;
    Ok(Normalized {
        target: &written[..n],
        path_len,
    })
}

/// Bytes of a path that `scan` must look at; it passes over the others with one lookup.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'?' as usize] = true;
    t[b'#' as usize] = true;
    t[b'%' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'/' as usize] = true;
    t
};

/// One pass over the path: where it ends (at the `?`, or the end of the target) and
/// whether it is already normal. What the slow path would refuse anyway and is cheap to
/// see here is refused at once.
fn scan(target: &[u8]) -> Result<(usize, bool), BadTarget> {
    let mut normal = true;
    for (i, &b) in target.iter().enumerate() {
        if !SPECIAL[usize::from(b)] {
            continue;
        }
        match b {
            b'?' => return Ok((i, normal)),
            b'#' => return Err(BadTarget::Fragment),
            b'\\' => return Err(BadTarget::EncodedSeparator),
            b'%' => normal = false,
            _ => {
                if starts_odd_segment(&target[i + 1..]) {
                    normal = false;
                }
            }
        }
    }
    Ok((target.len(), normal))
}

/// Whether what follows a `/` starts with a segment that normalizing changes or refuses:
/// an empty one, `.`, `..`, or one of these with parameters. Peeks at three bytes at most,
/// so the fast path reads each byte of the path once.
fn starts_odd_segment(rest: &[u8]) -> bool {
    let ends = |b: Option<&u8>| matches!(b, None | Some(b'/' | b'?' | b';'));
    match rest {
        [b'/', ..] => true,
        [b'.', b'.', tail @ ..] => ends(tail.first()),
        [b'.', tail @ ..] => ends(tail.first()),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Dot {
    No,
    One,
    Two,
    Params,
}

fn dot_kind(seg: &[u8]) -> Dot {
    match seg {
        b"." => Dot::One,
        b".." => Dot::Two,
        [b'.', b';', ..] | [b'.', b'.', b';', ..] => Dot::Params,
        _ => Dot::No,
    }
}

/// The caller's buffer, written from the front; running out of it is `TooLong` (it cannot
/// happen, since the output is never longer than the input, but a wrong index must not be
/// a panic on a request).
struct Out<'a> {
    buf: &'a mut [u8],
    n: usize,
}

impl Out<'_> {
    fn push(&mut self, b: u8) -> Result<(), BadTarget> {
        let slot = self.buf.get_mut(self.n).ok_or(BadTarget::TooLong)?;
        *slot = b;
        self.n += 1;
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), BadTarget> {
        let end = self.n + bytes.len();
        let dst = self.buf.get_mut(self.n..end).ok_or(BadTarget::TooLong)?;
        dst.copy_from_slice(bytes);
        self.n = end;
        Ok(())
    }
}

/// §5.2.4 over decoded segments, with empty segments merged. `path` starts with `/`.
fn normalize_path(path: &[u8], out: &mut Out) -> Result<(), BadTarget> {
    let mut rest = path.get(1..).unwrap_or_default();
    loop {
        let (seg, more) = match rest.iter().position(|&b| b == b'/') {
            Some(p) => (&rest[..p], Some(&rest[p + 1..])),
            None => (rest, None),
        };
        let last = more.is_none();
        if !seg.is_empty() || last {
            out.push(b'/')?;
            let start = out.n;
            decode_segment(seg, out)?;
            match dot_kind(&out.buf[start..out.n]) {
                Dot::No => {}
                Dot::Params => return Err(BadTarget::DotParams),
                // Keep the slash only when nothing follows: `/a/.` is `/a/`.
                Dot::One => out.n = if last { start } else { start - 1 },
                Dot::Two => {
                    let slash = start - 1;
                    if slash == 0 {
                        return Err(BadTarget::AboveRoot);
                    }
                    let parent = out.buf[..slash]
                        .iter()
                        .rposition(|&b| b == b'/')
                        .unwrap_or(0);
                    out.n = if last { parent + 1 } else { parent };
                }
            }
        }
        match more {
            Some(m) => rest = m,
            None => return Ok(()),
        }
    }
}

fn decode_segment(seg: &[u8], out: &mut Out) -> Result<(), BadTarget> {
    let mut i = 0;
    while let Some(&b) = seg.get(i) {
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    seg.get(i + 1).and_then(|&h| hex(h)),
                    seg.get(i + 2).and_then(|&h| hex(h)),
                ) else {
                    return Err(BadTarget::BadEscape);
                };
                let v = hi << 4 | lo;
                if v < 0x20 || v == 0x7f {
                    return Err(BadTarget::Control);
                }
                if v == b'/' || v == b'\\' {
                    return Err(BadTarget::EncodedSeparator);
                }
                if is_unreserved(v) {
                    out.push(v)?;
                } else {
                    out.put(&[b'%', HEX[usize::from(hi)], HEX[usize::from(lo)]])?;
                }
                i += 3;
            }
            b'\\' => return Err(BadTarget::EncodedSeparator),
            _ => {
                out.push(b)?;
                i += 1;
            }
        }
    }
    Ok(())
}

pub(super) const HEX: &[u8; 16] = b"0123456789ABCDEF";

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path passes a target as is only when the slow path would leave it as is:
    /// every target of up to six bytes over the characters that matter.
    #[test]
    fn the_fast_path_agrees_with_the_slow_one() {
        const CHARS: &[u8] = b"/.a;?%2e";
        let mut target = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..CHARS.len().pow(len) {
                target.clear();
                target.push(b'/');
                for _ in 0..len {
                    target.push(CHARS[n % CHARS.len()]);
                    n /= CHARS.len();
                }
                let Ok((path_len, true)) = scan(&target) else {
                    continue;
                };
                let mut buf = [0; 16];
                let mut out = Out {
                    buf: &mut buf,
                    n: 0,
                };
                let slow = normalize_path(&target[..path_len], &mut out).map(|()| out.n);
                assert_eq!(slow, Ok(path_len), "{}", String::from_utf8_lossy(&target));
                assert_eq!(&buf[..path_len], &target[..path_len]);
            }
        }
    }
}
