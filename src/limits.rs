//! lb's own resource limits: the descriptor limit it raises at start, what
//! `--max-connections` needs of it, and telling lb's own exhaustion (out of
//! descriptors, memory or local ports) from a backend's failure.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Raises the soft limit on open descriptors to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// Deepens a listener's backlog to the most the kernel allows (`net.core.somaxconn`, which
/// caps any larger value), from the 128 that std and mio ask for: clients that wait for
/// --max-connections, or for a burst to pass, are then queued rather than dropped.
pub fn deepen_backlog(listener: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: listen(2) on a socket that is already listening only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), i32::MAX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Descriptors lb may need at once: each client and the backend connection serving it,
/// the idle connections the backends' pools keep (`pooled`), and a reserve for
/// listeners, checks, POST copies and the log.
pub fn descriptors_needed(max_connections: usize, pooled: u64) -> u64 {
    (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(pooled)
        .saturating_add(64)
}

/// The most client connections that `limit` descriptors allow, by `descriptors_needed`'s
/// count, and at least one.
pub fn connections_within(limit: u64, pooled: u64) -> usize {
    let room = limit.saturating_sub(pooled).saturating_sub(64) / 2;
    usize::try_from(room).unwrap_or(usize::MAX).max(1)
}

/// The error says lb itself ran out of something (descriptors, buffers, memory, local
/// ports), not that the peer failed: it must never count against a backend's health.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ENOSPC
                | libc::EADDRNOTAVAIL
        )
    )
}

/// Says when a warning that may repeat thousands of times a second is worth logging:
/// the first time, then once per `every`, with how many were held back.
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub const fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(held back since the last time)` when this occurrence is to be logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_told_from_a_backend_failure() {
        assert!(is_local_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!is_local_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_local_exhaustion(&io::Error::other("x")));
    }

    #[test]
    fn throttle_logs_once_per_period() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(11)), Some(2));
    }

    #[test]
    fn a_client_needs_two_descriptors() {
        assert_eq!(descriptors_needed(10_000, 128 * 3), 20_000 + 384 + 64);
        assert_eq!(connections_within(20_000, 128 * 3), 9_776);
        assert_eq!(descriptors_needed(9_776, 128 * 3), 20_000);
        assert_eq!(connections_within(64, 128 * 3), 1);
    }
}
