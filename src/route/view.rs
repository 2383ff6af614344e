//! What a route looks at in a request: borrowed from the parsed head, with the target
//! normalized once, here, so that nothing can match on one path and forward another.

use super::normalize::{BadTarget, Normalized, normalize};

/// A request as the route table sees it. Build it with `new`; `target()` is what the
/// caller must forward, since it is what was matched.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a str,
    host: &'a [u8],
    sent: &'a [u8],
    target: Normalized<'a>,
    headers: &'a [httparse::Header<'a>],
}

impl<'a> RequestView<'a> {
    /// `host`: the Host field as sent (any case, maybe a port), empty if there was none.
    /// `target`: the request target in origin-form. `scratch` receives the normalized
    /// target when it differs from the one sent; it must be at least as long as `target`
    /// (`BadTarget::TooLong` otherwise: the caller's 414).
    pub fn new(
        method: &'a str,
        host: &'a [u8],
        target: &'a [u8],
        headers: &'a [httparse::Header<'a>],
        scratch: &'a mut [u8],
    ) -> Result<RequestView<'a>, BadTarget> {
        Ok(RequestView {
            method,
            host,
            sent: target,
            target: normalize(target, scratch)?,
            headers,
        })
    }

    /// A view that routes on the target as sent, for a table none of whose routes looks
    /// at the path (`RouteTable::looks_at_paths`): what it forwards is what came, as a
    /// proxy without path routes does.
    pub fn as_sent(
        method: &'a str,
        host: &'a [u8],
        target: &'a [u8],
        headers: &'a [httparse::Header<'a>],
    ) -> RequestView<'a> {
        let path_len = target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len());
        RequestView {
            method,
            host,
            sent: target,
            target: Normalized { target, path_len },
            headers,
        }
    }

    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The Host field as sent.
    pub fn host(&self) -> &'a [u8] {
        self.host
    }

    /// The normalized target, path and query: what to forward.
    pub fn target(&self) -> &'a [u8] {
        self.target.target
    }

    /// The target as the client sent it.
    pub fn sent_target(&self) -> &'a [u8] {
        self.sent
    }

    /// The normalized path, without the query.
    pub fn path(&self) -> &'a [u8] {
        &self.target.target[..self.target.path_len]
    }

    /// The query without its `?`, as sent; `None` if the target has no `?`.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.target.target.get(self.target.path_len + 1..)
    }

    pub fn headers(&self) -> &'a [httparse::Header<'a>] {
        self.headers
    }
}
