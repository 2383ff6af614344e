//! The conditions of one route, compiled, and the one function that tests them. It says
//! which condition failed, so that `explain` reports what the hot path decided rather
//! than deciding again.

use regex::bytes::Regex;

use super::normalize::hex;
use super::view::RequestView;

pub(super) enum PathTest {
    Any,
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    /// Compiled as `^(?:...)$`.
    Regex(Regex),
}

/// A header field or query parameter that must be present, with this value if given.
pub(super) struct FieldTest {
    pub(super) name: Box<str>,
    pub(super) value: Option<Box<[u8]>>,
}

pub(super) struct Conditions {
    pub(super) path: PathTest,
    /// Empty: any method.
    pub(super) methods: Box<[Box<str>]>,
    pub(super) headers: Box<[FieldTest]>,
    pub(super) query: Box<[FieldTest]>,
}

/// The first condition of a route that a request does not meet, in the order they are
/// tested. The index is the condition's place in the route's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Path,
    Method,
    Header(usize),
    Query(usize),
}

impl Conditions {
    pub(super) fn check(&self, req: &RequestView) -> Result<(), Miss> {
        if !self.path.matches(req.path()) {
            return Err(Miss::Path);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| **m == *req.method()) {
            return Err(Miss::Method);
        }
        if let Some(i) = self.headers.iter().position(|t| !header_has(req, t)) {
            return Err(Miss::Header(i));
        }
        if let Some(i) = self.query.iter().position(|t| !query_has(req.query(), t)) {
            return Err(Miss::Query(i));
        }
        Ok(())
    }

    /// No condition at all: every request this route's hosts see matches it.
    pub(super) fn is_catch_all(&self) -> bool {
        let path_any = match &self.path {
            PathTest::Any => true,
            PathTest::Prefix(p) => **p == *b"/",
            PathTest::Exact(_) | PathTest::Regex(_) => false,
        };
        path_any && self.methods.is_empty() && self.headers.is_empty() && self.query.is_empty()
    }
}

impl PathTest {
    fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathTest::Any => true,
            PathTest::Exact(p) => **p == *path,
            PathTest::Prefix(p) => prefix_rest(p, path).is_some(),
            PathTest::Regex(r) => r.is_match(path),
        }
    }
}

/// Segment-aware prefix: what follows `prefix` in `path`, if `path` is `prefix` or below
/// it. `/api` is over `/api` and `/api/x`, not `/apix`; `/api/` only over `/api/` and
/// below. `prefix` has no query; `path` may carry one (`/api?q` is under `/api`).
pub(super) fn prefix_rest<'p>(prefix: &[u8], path: &'p [u8]) -> Option<&'p [u8]> {
    let rest = path.strip_prefix(prefix)?;
    let at_boundary = prefix.ends_with(b"/") || matches!(rest.first(), None | Some(b'/' | b'?'));
    at_boundary.then_some(rest)
}

/// Any field of that name (case-insensitive) with that value (after trimming), if one is
/// required: a deny rule on a field must not be dodged by sending it twice.
fn header_has(req: &RequestView, test: &FieldTest) -> bool {
    req.headers().iter().any(|h| {
        h.name.eq_ignore_ascii_case(&test.name)
            && test.value.as_deref().is_none_or(|v| *trim(h.value) == *v)
    })
}

/// Optional white space (space, tab) at either end of a field value.
fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t');
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// Parameters are split on `&`, then on the first `=` (none: present, empty value). Names
/// and values are compared as the backend's form decoder reads them (`%xx` and `+`), so
/// `?debug=%74rue` is `debug=true` to a route as it is to the application.
fn query_has(query: Option<&[u8]>, test: &FieldTest) -> bool {
    let Some(query) = query else {
        return false;
    };
    query.split(|&b| b == b'&').any(|pair| {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        eq_form_decoded(name, test.name.as_bytes())
            && test
                .value
                .as_deref()
                .is_none_or(|v| eq_form_decoded(value, v))
    })
}

/// `raw` decoded (`%xx` → the byte, `+` → space; a `%` without two hex digits is itself)
/// equals `want`, decided without decoding into a buffer.
pub(super) fn eq_form_decoded(raw: &[u8], want: &[u8]) -> bool {
    let mut want = want.iter();
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let (byte, used) = match b {
            b'%' => match (
                raw.get(i + 1).and_then(|&h| hex(h)),
                raw.get(i + 2).and_then(|&h| hex(h)),
            ) {
                (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                _ => (b'%', 1),
            },
            b'+' => (b' ', 1),
            _ => (b, 1),
        };
        if want.next() != Some(&byte) {
            return false;
        }
        i += used;
    }
    want.next().is_none()
}
