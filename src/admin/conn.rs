//! One admin connection: its request head read, answered, and closed.
//!
//! A liveness probe must get through whatever else is open here. So a connection has
//! `HEAD_TIMEOUT` from accept to send its whole head (armed once: a byte at a time does
//! not extend it), then `ANSWER_TIMEOUT` for the rest; and when all `MAX_OPEN` slots are
//! taken, the oldest connection still without a whole head is closed to make room (the
//! oldest of any, if every one has sent its head), rather than the new one refused.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use log::debug;
use mio::net::TcpStream;
use slab::Slab;

use super::{Answer, MAX_HEAD, Totals, View, answer, api, gather, head_done};
use crate::event_loop::{Conn, Core};
use crate::timer::TimerId;

/// From accept to a whole request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(3);
/// From the head to the close: waiting for the other workers' counters or a name lookup,
/// writing the answer, and the client's close.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections open at once; each holds at most a `MAX_HEAD` head, then its answer.
const MAX_OPEN: usize = 1024;

/// The open admin connections by slab key, oldest first.
pub type Open = VecDeque<usize>;

pub struct AdminConn {
    sock: TcpStream,
    pub(super) peer: SocketAddr,
    pub serial: u32,
    timer: Option<TimerId>,
    /// The whole head is in: the timer runs `ANSWER_TIMEOUT` now.
    has_head: bool,
    state: State,
    /// With several workers: fresh counters asked of every worker before answering.
    pub(super) gather: Gather,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gather {
    NotYet,
    /// Asked, as this request number (see `Shared::want_stats`).
    Waiting(u64),
    Done,
}

enum State {
    /// The request head so far.
    Reading(Vec<u8>),
    /// A control request waits for the resolver thread (`api::added`).
    Waiting,
    Writing {
        out: Vec<u8>,
        sent: usize,
    },
    /// Answered and half-closed: reading until the client closes, so that bytes it sent
    /// and we never read do not turn our close into a reset that could eat the answer.
    Draining,
}

pub fn accept(conns: &mut Slab<Conn>, core: &mut Core, mut sock: TcpStream, peer: SocketAddr) {
    if core.admin_open.len() >= MAX_OPEN {
        make_room(conns, core);
    }
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.register(&mut sock, key, 0) {
        debug!("cannot register admin connection: {e}");
        return;
    }
    let serial = core.next_serial();
    let mut conn = AdminConn {
        sock,
        peer,
        serial,
        timer: None,
        has_head: false,
        state: State::Reading(Vec::new()),
        gather: if core.shared.workers() > 1 {
            Gather::NotYet
        } else {
            Gather::Done
        },
    };
    core.arm(&mut conn.timer, HEAD_TIMEOUT, key, serial);
    entry.insert(Conn::Admin(conn));
    core.admin_open.push_back(key);
}

/// Every slot is taken: closes the oldest connection that has not sent a whole head, or
/// else the oldest of all.
fn make_room(conns: &mut Slab<Conn>, core: &mut Core) {
    let headless = |key: &usize| matches!(conns.get(*key), Some(Conn::Admin(a)) if !a.has_head);
    let oldest = core.admin_open.iter().copied().find(headless);
    let Some(key) = oldest.or_else(|| core.admin_open.front().copied()) else {
        return;
    };
    debug!("{MAX_OPEN} admin connections open: closing the oldest to make room");
    close(conns, core, key);
}

/// What stepping an admin connection came to.
enum Flow {
    Wait,
    Done,
    /// A complete request, to be answered once every worker has published its counters.
    Gather,
    /// A complete request for the control API, which needs the loop's state.
    Control(Vec<u8>),
}

pub fn ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    loop {
        let Some(Conn::Admin(a)) = conns.get_mut(key) else {
            return;
        };
        match step(a, core, key) {
            Ok(Flow::Wait) => return,
            Ok(Flow::Done) => return close(conns, core, key),
            Ok(Flow::Gather) => return gather::ask(core, a, key),
            Ok(Flow::Control(head)) => {
                a.state = State::Waiting;
                let (peer, serial) = (a.peer, a.serial);
                match api::handle(conns, core, (key, serial), peer, &head) {
                    Some(out) => set_answer(conns, key, out),
                    None => return,
                }
            }
            Err(e) => {
                debug!("admin connection: {e}");
                return close(conns, core, key);
            }
        }
    }
}

/// Gives a waiting connection its answer; it is written as the socket allows.
fn set_answer(conns: &mut Slab<Conn>, key: usize, out: Vec<u8>) {
    if let Some(Conn::Admin(a)) = conns.get_mut(key) {
        a.state = State::Writing { out, sent: 0 };
    }
}

/// The answer a control request waited for is ready.
pub fn answer_later(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (key, serial): (usize, u32),
    out: Vec<u8>,
) {
    match conns.get(key) {
        Some(Conn::Admin(a)) if a.serial == serial && matches!(a.state, State::Waiting) => {
            set_answer(conns, key, out);
            ready(conns, core, key);
        }
        _ => {}
    }
}

pub fn timed_out(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Admin(a)) = conns.get_mut(key) {
        a.timer = None;
        close(conns, core, key);
    }
}

pub fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Admin(mut a)) = conns.try_remove(key) {
        core.disarm(&mut a.timer);
        let _ = core.registry.deregister(&mut a.sock);
        if let Some(i) = core.admin_open.iter().position(|&k| k == key) {
            core.admin_open.remove(i);
        }
    }
}

/// Advances connection `key` as far as its socket allows.
fn step(a: &mut AdminConn, core: &mut Core, key: usize) -> io::Result<Flow> {
    let mut chunk = [0u8; 4096];
    loop {
        match &mut a.state {
            State::Reading(head) if head_done(head) && !a.has_head => {
                a.has_head = true;
                core.arm(&mut a.timer, ANSWER_TIMEOUT, key, a.serial);
            }
            State::Reading(head) if head_done(head) => match a.gather {
                Gather::NotYet => return Ok(Flow::Gather),
                Gather::Waiting(_) => return Ok(Flow::Wait),
                Gather::Done => {
                    let totals = Totals::gather(core);
                    match answer(head, &View::of(core, &totals)) {
                        Some(Answer::Now(out)) => a.state = State::Writing { out, sent: 0 },
                        Some(Answer::Control) => {
                            return Ok(Flow::Control(std::mem::take(head)));
                        }
                        None => return Ok(Flow::Wait),
                    }
                }
            },
            State::Reading(head) => {
                let room = (MAX_HEAD - head.len()).min(chunk.len());
                match a.sock.read(&mut chunk[..room]) {
                    // Gone before sending a whole request: there is no one to answer.
                    Ok(0) => return Ok(Flow::Done),
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            State::Waiting => return Ok(Flow::Wait),
            State::Writing { out, sent } => {
                if *sent == out.len() {
                    a.sock.shutdown(Shutdown::Write)?;
                    a.state = State::Draining;
                    continue;
                }
                match a.sock.write(&out[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            State::Draining => match a.sock.read(&mut chunk) {
                Ok(0) => return Ok(Flow::Done),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Wait),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            },
        }
    }
}
