//! Stopping without losing work, on SIGTERM or SIGINT.
//!
//! The first signal closes the listeners, so new clients are refused at once and can go
//! elsewhere, and closes keep-alive clients that wait between requests. Requests in
//! progress finish, and their responses say `Connection: close`. TCP sessions run until
//! one side closes. POST copies keep being retried, since a restart must not lose a write
//! that a client was already told had succeeded. lb exits 0 once none of this is left. After
//! --drain-timeout, or at a second signal, it exits 1 and logs what it cut short.
//!
//! After an upgrade the same drain runs, with one difference: the listeners live on in the
//! new process, so clients are not refused, and an idle keep-alive client is not closed at
//! once (its next request could cross our close and fail) but gets one more request,
//! answered with `Connection: close`, or is closed after `HANDOVER_IDLE` of silence.

use std::time::Duration;

use log::{error, info};
use slab::Slab;

use crate::event_loop::{Conn, Core};
use crate::http::client::{self, ClientState};

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Everything in progress finished.
    Drained,
    /// The drain timeout or a second signal cut work short.
    Cut,
}

/// How long an idle keep-alive client may stay after a handover without sending a request.
const HANDOVER_IDLE: Duration = Duration::from_secs(1);

/// Why lb drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    /// A stop signal, by name.
    Signal(&'a str),
    /// A new lb, by pid, took over the listeners.
    HandedOver(u32),
}

/// Marks lb as stopping and closes what waits for nothing: idle keep-alive clients (after
/// a handover: once they are answered once more, or stay silent) and admin connections.
pub fn begin(conns: &mut Slab<Conn>, core: &mut Core, why: Reason) {
    core.draining = true;
    core.handing_over = matches!(why, Reason::HandedOver(_));
    core.fanout.end_keep_alive();
    let keys: Vec<usize> = conns
        .iter()
        .filter(|(_, conn)| match conn {
            Conn::Client(c) => matches!(c.state, ClientState::Idle),
            Conn::Admin(_) | Conn::H2(_) => true,
            _ => false,
        })
        .map(|(key, _)| key)
        .collect();
    for key in keys {
        match conns.get_mut(key) {
            Some(Conn::Client(c)) if core.handing_over => {
                core.arm(&mut c.timer, HANDOVER_IDLE, key, c.serial);
            }
            // Reads first: a request that has just arrived is still served.
            Some(Conn::Client(_)) => client::client_ready(conns, core, key),
            Some(Conn::Admin(_)) => crate::admin::close(conns, core, key),
            // GOAWAY: the streams in flight finish, and no new one starts.
            Some(Conn::H2(_)) => crate::http2::drive(conns, core, key),
            _ => {}
        }
    }
    let copies: usize = core.fanout.undelivered().iter().sum();
    let what = match why {
        Reason::Signal(signal) => format!("{signal}: stopped accepting"),
        Reason::HandedOver(pid) => format!("upgrade: pid {pid} serves now and accepts alone"),
    };
    info!(
        "{}{what}; draining {} client connection(s) and {copies} POST copies for at most \
         {:?} (--drain-timeout); a second signal stops at once",
        worker(core),
        core.clients_open,
        core.cfg.drain_timeout
    );
}

/// Nothing is left that a client or a backend still waits for. With a journal, copies
/// waiting for a retry or for their backend may wait for the next start instead: they are
/// on disk, and the next lb on the same journal resumes them.
pub fn is_done(core: &Core) -> bool {
    core.clients_open == 0 && (core.fanout.is_empty() || core.fanout.only_journaled_left())
}

/// "worker 2: " with several workers; nothing with one.
fn worker(core: &Core) -> String {
    match core.shared.workers() {
        1 => String::new(),
        _ => format!("worker {}: ", core.worker),
    }
}

/// Logs that the drain is done, and what it leaves to the journal.
pub fn report_done(core: &Core) {
    let w = worker(core);
    match core.fanout.len() {
        0 => info!("{w}drained: every request and POST copy finished; exiting"),
        owed => info!(
            "{w}drained: every request finished; {owed} writes still owed are kept in the \
             journal for the next start; exiting"
        ),
    }
}

/// Logs what stopping now cuts short.
pub fn report_cut(conns: &Slab<Conn>, core: &Core, why: &str) {
    let (mut http, mut tcp) = (0, 0);
    for (_, conn) in conns {
        match conn {
            Conn::Client(_) | Conn::AwaitingProxy(_) | Conn::H2(_) => http += 1,
            Conn::Pipe(_) => tcp += 1,
            _ => {}
        }
    }
    let lost: Vec<String> = core
        .fanout
        .undelivered()
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(id, n)| format!("{n} to {}", core.backends[id].label))
        .collect();
    let copies = match (lost.is_empty(), core.fanout.journal().is_some()) {
        (true, _) => "no POST copies undelivered".to_string(),
        (false, false) => format!("POST copies undelivered: {}", lost.join(", ")),
        (false, true) => format!(
            "POST copies still owed, kept in the journal for the next start: {}",
            lost.join(", ")
        ),
    };
    error!(
        "{}{why}: exiting with {http} HTTP and {tcp} TCP connection(s) open; {copies}",
        worker(core)
    );
}
