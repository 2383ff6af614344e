//! How the journal's thread wakes the event loop: an eventfd the poll watches. A ring is
//! one `write`, safe from any thread; the loop clears it before it looks for the answers.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Doorbell(OwnedFd);

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Doorbell(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn ring(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live value; a full counter already means "rung".
        unsafe { libc::write(self.fd(), (&raw const one).cast(), 8) };
    }

    /// Takes the rings so far, so that the next one is an edge again.
    pub fn clear(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live value; EAGAIN when there was no ring.
        unsafe { libc::read(self.fd(), (&raw mut count).cast(), 8) };
    }
}
