//! Requests and responses across protocols (RFC 9113 §8): lb's backends speak HTTP/1.1,
//! so an HTTP/2 stream's request header list is checked (§8.2, §8.3) and written as an
//! HTTP/1.1 request head that lb's HTTP/1 code then handles like any other, and a
//! backend's HTTP/1.1 response head becomes the stream's response header list. For
//! backends that speak HTTP/2 the other way round: an HTTP/1.1 request head becomes a
//! stream's request header list, and the response list an HTTP/1.1 response head.

mod field;
mod request;
mod response;
mod upstream_request;
mod upstream_response;

pub use request::{
    BodyFraming, LAST_CHUNK, Request, check_request, check_trailers, put_chunk_size,
    write_request_head, write_trailers,
};
pub use response::{ResponseKind, response_head, response_trailers};
pub use upstream_request::request_list;
pub use upstream_response::{Response, check_response, write_response_head};

/// Why a message is malformed, naming the section of RFC 9113 (or 8441) it breaks. For a
/// request the caller resets the stream with PROTOCOL_ERROR (§8.1.1).
pub type Malformed = &'static str;

#[cfg(test)]
mod tests;
