//! gRPC as lb sees it: which requests are gRPC calls and their deadlines
//! (`grpc-timeout`), the answer lb gives when such a deadline passes, and the
//! `grpc.health.v1.Health/Check` call an active health check makes over HTTP/2.
//! Plain values in and out: the event loop drives them (`probe`, `http::exchange`).

use std::time::{Duration, Instant};

pub mod health;
pub mod message;
pub mod timeout;

#[cfg(test)]
mod tests;

/// gRPC's status DEADLINE_EXCEEDED, sent when lb's own deadline for a call passes.
pub const DEADLINE_EXCEEDED: u8 = 4;

/// A content type that makes a request a gRPC call: `application/grpc`, alone or with a
/// `+proto`, `+json`, ... suffix or parameters (the gRPC over HTTP/2 spec's
/// Content-Type rule).
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let Some(start) = value.get(..GRPC.len()) else {
        return false;
    };
    start.eq_ignore_ascii_case(GRPC)
        && matches!(
            value.get(GRPC.len()),
            None | Some(b'+' | b';' | b' ' | b'\t')
        )
}

/// What lb makes of a request's gRPC header fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFields {
    /// A gRPC content type: lb's own timeout is answered the gRPC way.
    pub grpc: bool,
    /// The caller's `grpc-timeout`; the tightest when it came more than once.
    pub deadline: Option<Duration>,
    /// `TE: trailers`, which gRPC servers require and which lb, relaying trailers, may
    /// say again to the next hop (TE itself is hop-by-hop).
    pub te_trailers: bool,
}

impl CallFields {
    /// Takes a field if it is one of gRPC's; says whether it was. A `grpc-timeout` that
    /// breaks the grammar sets no deadline.
    pub fn read(&mut self, name: &str, value: &[u8]) -> bool {
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case("content-type") {
            self.grpc = is_grpc_content_type(value);
        } else if name.eq_ignore_ascii_case("te") {
            self.te_trailers |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
        } else if name.eq_ignore_ascii_case("grpc-timeout") {
            if let Some(t) = timeout::parse(value) {
                self.deadline = Some(self.deadline.map_or(t, |d| d.min(t)));
            }
        } else {
            return false;
        }
        true
    }

    /// A gRPC call whose client takes trailers: its forwarded head says `TE: trailers`.
    pub fn forwards_te(&self) -> bool {
        self.grpc && self.te_trailers
    }

    /// The instant by which the call must end, for a head read at `now`: gRPC's deadline
    /// is absolute, so bytes that keep flowing do not push it back.
    pub fn deadline_from(&self, now: Instant) -> Option<Instant> {
        self.deadline.and_then(|d| now.checked_add(d))
    }
}
