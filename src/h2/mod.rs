//! HTTP/2 (RFC 9113) as a sans-IO codec: frames, settings, flow control, the stream and
//! connection state machines and every limit a hostile client meets, for the event loop
//! to drive with bytes and take frames from.

pub mod error;
pub mod flow;
pub mod frame;
pub mod settings;
pub mod stream;
