//! Bytes lb holds for a POST beyond its pooled buffers: the body while it arrives, and a
//! refused answer kept for the client. Each `HeldBytes` counts its bytes against
//! `--max-buffered-bytes`, one bound for the whole process (`Shared::buffered`), and gives
//! them back when it is dropped or handed on, so no path that ends a POST can forget to.

use std::sync::Arc;

use crate::shared::Shared;

pub struct HeldBytes {
    bytes: Vec<u8>,
    shared: Arc<Shared>,
}

/// The bytes did not fit under the bound: nothing was added.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl HeldBytes {
    /// Nothing held yet, with room for `capacity` bytes reserved: only what is written is
    /// counted (and resident: the pages of a large reservation are touched as it fills).
    pub fn with_capacity(shared: &Arc<Shared>, capacity: usize) -> Self {
        HeldBytes {
            bytes: Vec::with_capacity(capacity),
            shared: Arc::clone(shared),
        }
    }

    /// Appends `data` if the process stays within `bound` with it.
    pub fn extend(&mut self, data: &[u8], bound: u64) -> Result<(), Full> {
        if !self.shared.take_buffered(data.len() as u64, bound) {
            return Err(Full);
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    pub fn data(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, no longer counted here: a launched POST's request counts against
    /// --max-pending-bytes instead.
    pub fn into_vec(mut self) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.bytes);
        self.shared.give_buffered(bytes.len() as u64);
        bytes
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.shared.give_buffered(self.bytes.len() as u64);
    }
}

/// Large blocks (bodies, answers kept, owed requests) get a mapping of their own, given
/// back when freed. glibc would otherwise raise its mmap threshold at the first such free
/// and carve the next ones from the heap, where a body cut short leaves the pages it
/// touched resident after it is freed: under a flood of bodies refused at a 64 MiB
/// --max-buffered-bytes, lb peaked at 122-184 MiB that way, and at 68 MiB with this
/// (scripts/post_memory.sh). 128 KiB is glibc's own starting threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn map_large_blocks_apart() {
    // SAFETY: mallopt only sets one of the allocator's tunables; called before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn map_large_blocks_apart() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::Roster;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(2, 10, Roster::new(&[]).snapshot()))
    }

    #[test]
    fn held_bytes_count_until_dropped_or_handed_on() {
        let s = shared();
        let mut a = HeldBytes::with_capacity(&s, 0);
        let mut b = HeldBytes::with_capacity(&s, 16);
        assert_eq!(a.extend(b"0123456789", 16), Ok(()));
        assert_eq!(b.extend(b"abcdef", 16), Ok(()));
        assert_eq!(s.buffered(), 16);
        assert_eq!(b.extend(b"x", 16), Err(Full), "one byte over the bound");
        assert_eq!(
            (b.len(), s.buffered()),
            (6, 16),
            "nothing added, nothing counted"
        );
        drop(a);
        assert_eq!(s.buffered(), 6);
        assert_eq!(b.extend(b"x", 16), Ok(()));
        let v = b.into_vec();
        assert_eq!((v.as_slice(), s.buffered()), (&b"abcdefx"[..], 0));
    }
}
