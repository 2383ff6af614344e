//! Taking new clients from the listen backlog, and pausing when lb cannot: at
//! --max-connections (resumed when a client leaves) or when accept() fails, most likely
//! for want of descriptors (resumed on a timer, since the clients left waiting in the
//! backlog will bring no new readiness edge).

use std::io;
use std::time::Duration;

use log::{error, info};

use crate::admin;

use super::EventLoop;
use crate::config::Mode;
use crate::http;
use crate::limits;
use crate::state::Timer;
use crate::tcp;

/// After accept() fails for want of descriptors (or any other reason than the client's),
/// it is tried again this often.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Whether the loop takes new clients from the listen backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepting {
    Open,
    /// At --max-connections: resumed when a client leaves.
    Full,
    /// accept() failed (out of descriptors): resumed by `Timer::AcceptRetry`.
    Failing,
}

impl EventLoop {
    pub(super) fn accept(&mut self) {
        if self.accepting == Accepting::Failing {
            return;
        }
        loop {
            if self.core.clients_open >= self.core.cfg.max_connections {
                if self.accepting == Accepting::Open {
                    info!(
                        "{} client connections open (--max-connections): new ones wait",
                        self.core.clients_open
                    );
                }
                self.accepting = Accepting::Full;
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((sock, peer)) => match self.core.cfg.mode {
                    Mode::Http => http::client::accept(&mut self.conns, &mut self.core, sock, peer),
                    Mode::Tcp => tcp::accept(&mut self.conns, &mut self.core, sock, peer),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // This client is gone already; the next one may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    if limits::is_local_exhaustion(&e) {
                        self.core.exhausted("accepting clients", &e);
                    } else {
                        error!("accept failed: {e}");
                    }
                    self.accepting = Accepting::Failing;
                    let at = self.core.now + ACCEPT_RETRY;
                    self.core.timers.insert(at, Timer::AcceptRetry);
                    return;
                }
            }
        }
    }

    /// At the end of a turn: a client left, so one more may come in.
    pub(super) fn resume_accepting_if_room(&mut self) {
        if self.accepting == Accepting::Full
            && self.core.clients_open < self.core.cfg.max_connections
        {
            self.accepting = Accepting::Open;
            self.accept();
        }
    }

    pub(super) fn retry_accepting(&mut self) {
        self.accepting = Accepting::Open;
        self.accept();
    }

    pub(super) fn accept_admin(&mut self) {
        let Some(listener) = &self.admin else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((sock, peer)) => admin::accept(&mut self.conns, &mut self.core, sock, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("admin accept failed: {e}");
                    return;
                }
            }
        }
    }
}
