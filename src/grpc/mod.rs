//! gRPC as lb sees it: which requests are gRPC calls and their deadlines
//! (`grpc-timeout`), the answer lb gives when such a deadline passes, and the
//! `grpc.health.v1.Health/Check` call an active health check makes over HTTP/2.
//! Plain values in and out: the event loop drives them (`probe`, `http::exchange`).

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
