//! SIGTERM and SIGINT as readiness on a pipe that the poll loop watches.
//!
//! A signal handler may do almost nothing safely; writing one byte to a pipe is enough to
//! wake `epoll_wait` at once, with no window in which a signal arriving just before the
//! loop goes to sleep is missed. The loop reads the pipe and decides what the signal means.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler; -1 until installed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The latest signal caught, to name it in the log.
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    LAST.store(signal, Ordering::Relaxed);
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; errno is put back so that the code the
        // signal interrupted sees its own. A full pipe already holds a wake-up.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// The read end of the pipe, and the write end kept open for the handler.
pub struct StopSignal {
    read: OwnedFd,
    _write: OwnedFd,
}

impl StopSignal {
    /// Catches SIGTERM and SIGINT from now on. One per process.
    pub fn install() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 fills in.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: a zeroed sigaction is valid; the handler only touches atomics and write(2).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(StopSignal {
            read,
            _write: write,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// How many signals arrived since the last call (a full pipe counts as many as it held).
    pub fn take(&self) -> usize {
        let mut buf = [0u8; 64];
        let mut n = 0;
        loop {
            // SAFETY: reads into a buffer of the length given.
            let got = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if got <= 0 {
                return n;
            }
            n += got as usize;
        }
    }

    /// The name of the latest signal, for the log.
    pub fn last_name() -> &'static str {
        match LAST.load(Ordering::Relaxed) {
            libc::SIGINT => "SIGINT",
            _ => "SIGTERM",
        }
    }
}
