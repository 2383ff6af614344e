//! Where compiled actions write: a buffer the caller owns (the outgoing head, a reused
//! scratch), so that writing a rewritten path, a Location or header fields allocates
//! nothing per request.

use crate::buffer::Buffer;

/// The sink had no room for all of a write; what was written before stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub trait Sink {
    /// Appends all of `bytes`, or nothing and `Full`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full>;
}

/// Grows as needed: for `explain` and tests, or a buffer the caller clears and reuses.
impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl Sink for Buffer {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        if self.push(bytes) { Ok(()) } else { Err(Full) }
    }
}
