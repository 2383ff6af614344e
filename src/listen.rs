//! One worker's hold on a listening socket that every worker accepts from.
//!
//! With several workers each one has its own descriptor (a `dup`) of the one listening
//! socket, registered in its own poll with `EPOLLEXCLUSIVE`, which mio does not offer: a
//! new client wakes one worker that is waiting in `epoll_wait`, not all of them, and a
//! busy worker is passed over. The kernel tries the pollers in the order they registered,
//! so among idle workers the first would get every client; a worker that holds more than
//! its share of the clients therefore registers again (`requeue`), which puts it last; that
//! makes the socket ready for it again at once while clients wait, which the loop ignores
//! while it leaves them to the others (`Accepting::Yielded`).
//! Why one shared socket and not one `SO_REUSEPORT` socket per worker: see docs/operations.md
//! (Workers).
//!
//! With one worker the socket is registered as mio does it, and nothing here costs more
//! than that.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

pub struct Listener {
    sock: TcpListener,
    token: Token,
    /// Registered with `EPOLLEXCLUSIVE` (several workers share the socket).
    exclusive: bool,
}

impl Listener {
    /// Registers `sock` under `token`; `shared` when other workers accept from it too.
    pub fn register(
        mut sock: TcpListener,
        registry: &Registry,
        token: Token,
        shared: bool,
    ) -> io::Result<Self> {
        let exclusive = shared && add_exclusive(registry, sock.as_raw_fd(), token).is_ok();
        if !exclusive {
            // Without EPOLLEXCLUSIVE (a kernel before 4.5) every worker is woken: slower, not wrong.
            registry.register(&mut sock, token, Interest::READABLE)?;
        }
        Ok(Listener {
            sock,
            token,
            exclusive,
        })
    }

    /// Puts this worker last among those the kernel wakes for a new client.
    pub fn requeue(&self, registry: &Registry) {
        if !self.exclusive {
            return;
        }
        let fd = self.sock.as_raw_fd();
        if del(registry, fd).is_ok() && add_exclusive(registry, fd, self.token).is_err() {
            // Not registered now: readiness from a normal registration keeps it served.
            let _ = registry.register(
                &mut mio::unix::SourceFd(&fd),
                self.token,
                Interest::READABLE,
            );
        }
    }

    /// Stops watching the socket; the descriptor closes when this is dropped.
    pub fn deregister(mut self, registry: &Registry) {
        if self.exclusive {
            let _ = del(registry, self.sock.as_raw_fd());
        } else {
            let _ = registry.deregister(&mut self.sock);
        }
    }
}

impl Deref for Listener {
    type Target = TcpListener;

    fn deref(&self) -> &TcpListener {
        &self.sock
    }
}

/// Another descriptor for the same listening socket, for another worker.
pub fn duplicate(sock: &TcpListener) -> io::Result<TcpListener> {
    // SAFETY: fcntl on a descriptor that `sock` keeps open; the new one is ours alone.
    let fd = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor of a listening socket that nothing else owns.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}

fn add_exclusive(registry: &Registry, fd: RawFd, token: Token) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        // mio reads the token back from here, as it does for its own registrations.
        u64: usize::from(token) as u64,
    };
    // SAFETY: epoll_ctl with a live epoll descriptor, a descriptor this process owns and an
    // event it only reads.
    let rc = unsafe { libc::epoll_ctl(registry.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn del(registry: &Registry, fd: RawFd) -> io::Result<()> {
    // SAFETY: as above; DEL ignores the event.
    let rc = unsafe {
        libc::epoll_ctl(
            registry.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            std::ptr::null_mut(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
