//! Sends the loop holds back while it reads one turn's events.
//!
//! While the loop hands out the events of one poll, the proxying paths (the HTTP pump, POST
//! copies and the TCP relay) read and parse but leave what they would send in their
//! buffers, and note here their connection and where its bytes go. Once every event of the turn is
//! read, the loop steps the noted connections again, grouped by destination: each
//! backend's requests back to back, then the answers to clients.
//!
//! Why: a peer woken by a send answers what it finds and goes back to sleep. Sends to one
//! peer spread through a turn wake it again and again; the same sends in a row wake it once,
//! and it finds them all waiting. HAProxy also receives everything before it sends.

use crate::backend::BackendId;

/// Where a held send goes. Backends sort first, in id order, then clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    Backend(BackendId),
    Client,
}

#[derive(Default)]
pub struct HeldSends {
    holding: bool,
    queue: Vec<(Destination, usize)>,
}

impl HeldSends {
    /// Sends wait from now until `release`.
    pub fn hold(&mut self) {
        self.holding = true;
    }

    pub fn holding(&self) -> bool {
        self.holding
    }

    /// Connection `key` has bytes for `to` waiting in its buffers.
    pub fn later(&mut self, to: Destination, key: usize) {
        self.queue.push((to, key));
    }

    /// Ends the hold and appends to `keys` the connections to step again, grouped by
    /// destination, each once per destination.
    pub fn release(&mut self, keys: &mut Vec<usize>) {
        self.holding = false;
        self.queue.sort_unstable();
        self.queue.dedup();
        keys.extend(self.queue.drain(..).map(|(_, key)| key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_in_destination_order_each_once() {
        let mut sends = HeldSends::default();
        sends.hold();
        assert!(sends.holding());
        sends.later(Destination::Client, 7);
        sends.later(Destination::Backend(1), 4);
        sends.later(Destination::Backend(0), 9);
        sends.later(Destination::Client, 2);
        sends.later(Destination::Backend(1), 4);
        sends.later(Destination::Backend(0), 3);
        let mut keys = Vec::new();
        sends.release(&mut keys);
        assert!(!sends.holding());
        assert_eq!(keys, [3, 9, 4, 2, 7]);
        // The queue is empty again for the next turn.
        keys.clear();
        sends.release(&mut keys);
        assert!(keys.is_empty());
    }
}
