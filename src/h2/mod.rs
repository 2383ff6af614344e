//! HTTP/2 (RFC 9113) as a sans-IO codec: frames, settings, flow control, the stream and
//! connection state machines and every limit a hostile client meets, for the event loop
//! to drive with bytes and take frames from; HPACK, bounded against the header bombs a
//! client can send (`hpack`); and the mapping between an HTTP/2 stream's header lists and
//! the HTTP/1.1 heads lb's backends speak (`message`). `client` is the same codec from
//! the other side, for HTTP/2 backends (driven by `h2_upstream`).

pub mod client;
pub mod connection;
pub mod error;
pub mod flow;
pub mod frame;
pub mod hpack;
pub mod limits;
pub mod message;
pub mod settings;
pub mod stream;

#[cfg(test)]
mod tests;
