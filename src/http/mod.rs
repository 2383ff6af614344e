//! HTTP/1.x proxying: heads, body framing, and the client and backend state machines.

pub mod body;
pub mod chunked;
pub mod client;
pub mod exchange;
pub mod head;
mod routed;
pub use routed::{RouteRef, Routed};
mod pump;
pub mod upstream;
