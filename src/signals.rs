//! Process signals as readiness on a pipe that the poll loop watches.
//!
//! A signal handler may do almost nothing safely; writing the signal's number as one byte
//! to a pipe is enough to wake `epoll_wait` at once, with no window in which a signal
//! arriving just before the loop goes to sleep is missed. The loop reads the pipe and
//! decides what each signal means: SIGTERM and SIGINT stop, SIGHUP reloads, SIGUSR2
//! upgrades to the binary on disk.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler; -1 until installed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// The signals lb handles; any other keeps its default action.
const CAUGHT: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR2];

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // Signal numbers fit in a byte on every platform lb builds for.
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; errno is put back so that the code the
        // signal interrupted sees its own. A full pipe already holds a wake-up.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, (&raw const byte).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// What arrived since the loop last looked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    /// SIGTERM or SIGINT, how many, and the name of the last one for the log.
    pub stops: usize,
    pub last_stop: &'static str,
    /// At least one SIGHUP (several coalesce into one reload).
    pub reload: bool,
    /// At least one SIGUSR2.
    pub upgrade: bool,
}

/// The read end of the pipe, and the write end kept open for the handler.
pub struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Signals {
    /// Catches SIGTERM, SIGINT, SIGHUP and SIGUSR2 from now on. One per process.
    pub fn install() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 fills in.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        for signal in CAUGHT {
            // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic and write(2).
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
        Ok(Signals {
            read,
            _write: write,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The signals that arrived since the last call.
    pub fn take(&self) -> Arrived {
        let mut arrived = Arrived::default();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a buffer of the length given.
            let got = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(got) = usize::try_from(got) else {
                return arrived;
            };
            if got == 0 {
                return arrived;
            }
            for &signal in &buf[..got] {
                match libc::c_int::from(signal) {
                    libc::SIGHUP => arrived.reload = true,
                    libc::SIGUSR2 => arrived.upgrade = true,
                    libc::SIGINT => {
                        arrived.stops += 1;
                        arrived.last_stop = "SIGINT";
                    }
                    _ => {
                        arrived.stops += 1;
                        arrived.last_stop = "SIGTERM";
                    }
                }
            }
        }
    }
}
