//! HTTP/2 (RFC 9113): sans-IO pieces of the codec. HPACK, bounded against the header
//! bombs a client can send (`hpack`), and the mapping between an HTTP/2 stream's header
//! lists and the HTTP/1.1 heads lb's backends speak (`message`).

pub mod hpack;
pub mod message;
