//! Fixed-size byte buffers, lent by a pool so that the hot path never allocates
//! and an idle connection holds none.

use std::io::{self, Read, Write};

use crate::free_list::FreeList;

/// What one attempt to fill or drain a buffer through a socket gave.
#[derive(Debug)]
pub enum Io {
    /// Moved this many bytes; a short count means the socket is drained (or full) for now.
    Moved(usize),
    WouldBlock,
    /// The peer closed its side (reads only).
    Eof,
    Failed(io::Error),
}

/// A byte buffer with a consumed prefix: `bytes[start..end]` is pending data. Offsets are
/// `u32` to keep the handle small: every connection holds two (buffers are far below 4 GiB).
pub struct Buffer {
    bytes: Box<[u8]>,
    start: u32,
    end: u32,
}

impl Buffer {
    fn new(size: usize) -> Self {
        assert!(
            u32::try_from(size).is_ok(),
            "buffers are smaller than 4 GiB"
        );
        Buffer {
            bytes: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn span(&self) -> (usize, usize) {
        (self.start as usize, self.end as usize)
    }

    fn set(&mut self, start: usize, end: usize) {
        // Both are at most `bytes.len()`, which `new` keeps below 4 GiB.
        self.start = start as u32;
        self.end = end as u32;
    }

    pub fn data(&self) -> &[u8] {
        let (start, end) = self.span();
        &self.bytes[start..end]
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Room left at the end, after moving pending data to the front if that helps.
    pub fn room(&mut self) -> usize {
        let (start, end) = self.span();
        if start == end {
            self.set(0, 0);
        } else if end == self.bytes.len() && start > 0 {
            self.bytes.copy_within(start..end, 0);
            self.set(0, end - start);
        }
        self.bytes.len() - self.end as usize
    }

    pub fn is_full(&mut self) -> bool {
        self.room() == 0
    }

    pub fn consume(&mut self, n: usize) {
        let (start, end) = self.span();
        let start = (start + n).min(end);
        if start == end {
            self.set(0, 0);
        } else {
            self.set(start, end);
        }
    }

    pub fn clear(&mut self) {
        self.set(0, 0);
    }

    /// Appends all of `src` or nothing.
    pub fn push(&mut self, src: &[u8]) -> bool {
        if self.room() < src.len() {
            return false;
        }
        self.push_some(src);
        true
    }

    /// Appends as much of `src` as fits and says how much that was.
    pub fn push_some(&mut self, src: &[u8]) -> usize {
        let n = self.room().min(src.len());
        let (start, end) = self.span();
        self.bytes[end..end + n].copy_from_slice(&src[..n]);
        self.set(start, end + n);
        n
    }

    /// Reads once from `src` into the free space.
    pub fn read_from<R: Read>(&mut self, src: &mut R) -> Io {
        if self.room() == 0 {
            return Io::Moved(0);
        }
        let (start, end) = self.span();
        loop {
            match src.read(&mut self.bytes[end..]) {
                Ok(0) => return Io::Eof,
                Ok(n) => {
                    self.set(start, end + n);
                    return Io::Moved(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Io::WouldBlock,
                Err(e) => return Io::Failed(e),
            }
        }
    }

    /// Writes pending data to `dst` once; what was written is consumed.
    pub fn write_to<W: Write>(&mut self, dst: &mut W) -> Io {
        if self.is_empty() {
            return Io::Moved(0);
        }
        loop {
            match dst.write(self.data()) {
                Ok(n) => {
                    self.consume(n);
                    return Io::Moved(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Io::WouldBlock,
                Err(e) => return Io::Failed(e),
            }
        }
    }
}

/// Formatting straight into the buffer (numbers, addresses) without a String.
impl std::fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.push(s.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// A message starts in a buffer of this size, and moves to a full-size one only if it
/// fills it: a partial request head then holds 1 KiB, not 32 (nginx starts its request
/// heads in 1 KiB too).
pub const SMALL_BUFFER: usize = 1024;

/// Buffers are lent out and given back; at most `max_free` of each size are kept for reuse,
/// and those that sit unused through a housekeeping period are let go.
pub struct BufferPool {
    free: FreeList<Buffer>,
    free_small: FreeList<Buffer>,
    size: usize,
    small_size: usize,
    /// Buffers went back to the allocator since the last `take_dropped`.
    dropped: bool,
}

impl BufferPool {
    /// Full-size buffers of `size` bytes, small ones of `SMALL_BUFFER` (or `size`, if less).
    pub fn new(size: usize, max_free: usize) -> Self {
        BufferPool {
            free: FreeList::new(max_free),
            free_small: FreeList::new(max_free),
            size,
            small_size: SMALL_BUFFER.min(size),
            dropped: false,
        }
    }

    /// A full-size buffer.
    pub fn get(&mut self) -> Buffer {
        self.free.take().unwrap_or_else(|| Buffer::new(self.size))
    }

    /// A small buffer, for a message that may well fit in it.
    pub fn get_small(&mut self) -> Buffer {
        self.free_small
            .take()
            .unwrap_or_else(|| Buffer::new(self.small_size))
    }

    /// Whether `buf` is already full-size.
    pub fn is_full_size(&self, buf: &Buffer) -> bool {
        buf.capacity() >= self.size
    }

    /// Moves what a small buffer holds into a full-size one, and takes the small one back.
    pub fn grow(&mut self, buf: &mut Buffer) {
        if self.is_full_size(buf) {
            return;
        }
        let mut large = self.get();
        large.push(buf.data());
        let small = std::mem::replace(buf, large);
        self.put(small);
    }

    pub fn put(&mut self, mut buf: Buffer) {
        let free = if buf.capacity() == self.size {
            &mut self.free
        } else if buf.capacity() == self.small_size {
            &mut self.free_small
        } else {
            self.dropped = true;
            return;
        };
        buf.clear();
        if free.give(buf).is_err() {
            self.dropped = true;
        }
    }

    /// Once a housekeeping period: drops the free buffers no one needed in it.
    pub fn trim_unused(&mut self) {
        let large = self.free.trim_unused();
        let small = self.free_small.trim_unused();
        self.dropped |= large || small;
    }

    /// Whether buffers were freed since the last call: after a burst, worth handing the
    /// memory back to the system.
    pub fn take_dropped(&mut self) -> bool {
        std::mem::take(&mut self.dropped)
    }

    /// Gives back the buffer in `slot` if it holds no pending data.
    pub fn release_if_empty(&mut self, slot: &mut Option<Buffer>) {
        if slot.as_ref().is_some_and(Buffer::is_empty)
            && let Some(buf) = slot.take()
        {
            self.put(buf);
        }
    }

    /// Gives back the buffer in `slot`, whatever it holds.
    pub fn release(&mut self, slot: &mut Option<Buffer>) {
        if let Some(buf) = slot.take() {
            self.put(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_consume_and_compact() {
        let mut pool = BufferPool::new(8, 4);
        let mut b = pool.get();
        assert!(b.push(b"abcdef"));
        assert!(!b.push(b"xyz"));
        assert_eq!(b.push_some(b"xyz"), 2);
        assert_eq!(b.data(), b"abcdefxy");
        b.consume(6);
        assert_eq!(b.room(), 6);
        assert_eq!(b.data(), b"xy");
        assert!(b.push(b"123456"));
        assert_eq!(b.data(), b"xy123456");
        pool.put(b);
        assert_eq!(pool.get().len(), 0);
    }

    #[test]
    fn read_and_write_through_io() {
        let mut pool = BufferPool::new(4, 1);
        let mut b = pool.get();
        let mut src: &[u8] = b"hello";
        assert!(matches!(b.read_from(&mut src), Io::Moved(4)));
        assert!(matches!(b.read_from(&mut src), Io::Moved(0)));
        let mut out = Vec::new();
        assert!(matches!(b.write_to(&mut out), Io::Moved(4)));
        assert!(matches!(b.read_from(&mut src), Io::Moved(1)));
        assert!(matches!(b.read_from(&mut src), Io::Eof));
        assert_eq!(out, b"hell");
    }

    #[test]
    fn small_buffers_grow_keeping_their_data() {
        let mut pool = BufferPool::new(4096, 2);
        let mut b = pool.get_small();
        assert_eq!(b.capacity(), SMALL_BUFFER);
        assert!(b.push(b"GET / HTTP/1.1\r\n"));
        b.consume(4);
        pool.grow(&mut b);
        assert_eq!(b.capacity(), 4096);
        assert_eq!(b.data(), b"/ HTTP/1.1\r\n");
        assert_eq!(
            pool.get_small().len(),
            0,
            "the small one went back, cleared"
        );
    }

    #[test]
    fn release_only_when_empty() {
        let mut pool = BufferPool::new(4, 1);
        let mut slot = Some(pool.get());
        if let Some(b) = slot.as_mut() {
            b.push(b"x");
        }
        pool.release_if_empty(&mut slot);
        assert!(slot.is_some());
        if let Some(b) = slot.as_mut() {
            b.consume(1);
        }
        pool.release_if_empty(&mut slot);
        assert!(slot.is_none());
    }
}
