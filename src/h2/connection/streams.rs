//! The connection's table of live streams, and the few ids it reset lately whose frames
//! still in flight are ignored rather than treated as errors (§5.1, "closed").

use std::time::Instant;

use crate::h2::flow::{RecvWindow, Window};
use crate::h2::stream::{BodyLength, State};

/// One live stream: its state, both windows, and what the caller holds of it.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub id: u32,
    pub state: State,
    /// What we may still send on it (the client's window).
    pub send: Window,
    /// What the client may still send on it.
    pub recv: RecvWindow,
    pub body: BodyLength,
    /// We sent HEADERS: a reset from the client after that is not premature.
    pub answered: bool,
    /// Body bytes passed to the caller and not yet reported consumed.
    pub held: u32,
    /// What the caller's last `send_data` could not send.
    pub pending: usize,
    /// Since when the client's window has been too small to send into.
    pub stalled_since: Option<Instant>,
}

/// How many of our own resets to remember: a client has frames in flight for a stream for
/// about one round trip, during which a well-behaved one resets few of its streams.
const RECENT_RESETS: usize = 16;

#[derive(Debug)]
pub struct Streams {
    live: Vec<Stream>,
    recent_resets: [u32; RECENT_RESETS],
    next_reset: usize,
}

impl Streams {
    /// Room for `max` live streams, allocated once.
    pub fn new(max: u32) -> Self {
        Self {
            live: Vec::with_capacity(usize::try_from(max).unwrap_or(0)),
            recent_resets: [0; RECENT_RESETS],
            next_reset: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&Stream> {
        self.live.iter().find(|s| s.id == id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.live.iter_mut().find(|s| s.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.live.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.live.iter_mut()
    }

    /// Forgets every stream: the connection is closed.
    pub fn clear(&mut self) {
        self.live.clear();
    }

    pub fn insert(&mut self, stream: Stream) {
        self.live.push(stream);
    }

    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        let at = self.live.iter().position(|s| s.id == id)?;
        Some(self.live.swap_remove(at))
    }

    /// We reset `id`: frames the client sent before it learnt so are ignored.
    pub fn note_reset(&mut self, id: u32) {
        if let Some(slot) = self.recent_resets.get_mut(self.next_reset) {
            *slot = id;
        }
        self.next_reset = (self.next_reset + 1) % RECENT_RESETS;
    }

    pub fn was_reset(&self, id: u32) -> bool {
        id != 0 && self.recent_resets.contains(&id)
    }
}
