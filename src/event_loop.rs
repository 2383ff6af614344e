//! The poll loop: one `mio::Poll`, one slab of connections, one timer wheel, per worker.
//! A token is a slab key; the loop hands each event to the module that owns that kind of
//! connection, then fires due timers. What the handlers share is in `state.rs`; what the
//! workers share is in `shared.rs`. Worker 0 is also the control loop (`control.rs`:
//! signals, upgrades, the admin listener, stopping); `workers.rs` starts the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::accept::Accepting;
use crate::accept_proxy;
use crate::admin;
use crate::config::model::Site;
use crate::config::{BackendSpec, OwnAddrs};
use crate::drain::{self, Stopped};
use crate::fanout;
use crate::front::FrontId;
use crate::h2_upstream;
use crate::http;
use crate::http2;
use crate::journal::{Doorbell, Replayed};
use crate::limits;
use crate::listen::Listener;
use crate::notify::Notifier;
use crate::probe;
use crate::reconfigure;
use crate::shared::Shared;
use crate::signals::Signals;
use crate::store::Writer;
use crate::tcp;
use crate::tls::TlsContexts;
use crate::upgrade::{Listeners, ReadyPipe, Upgrades};

use crate::state::HOUSEKEEPING;
pub use crate::state::{BUFFER_SIZE, Conn, Core, STEP_BUDGET, Timer, token};

mod control;
mod site;
use control::Reloading;
pub use site::SiteUpdate;
pub mod workers;

/// Slab tokens are `key << 1 | side`, so these are never a slab entry's.
const ADMIN_LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// Another thread has something for this loop: the resolver or another worker.
const WAKE: Token = Token(usize::MAX - 3);
const UPGRADE: Token = Token(usize::MAX - 4);
/// The journal's thread finished a sync (its eventfd).
const JOURNAL: Token = Token(usize::MAX - 5);
/// Listener `i` (its place among the site's listeners) is `LISTENERS - i`.
const LISTENERS: usize = usize::MAX - 16;
/// The most listeners a site may have: their tokens stay far above any slab entry's.
pub const MAX_LISTENERS: usize = 1 << 16;

fn listener_token(front: FrontId) -> Token {
    Token(LISTENERS - front)
}

/// What one worker's loop starts from.
pub struct Start {
    /// 0 for the control loop.
    pub worker: usize,
    pub site: Site,
    /// The backends at start, their names resolved.
    pub backends: Vec<BackendSpec>,
    pub tls: TlsContexts,
    /// Worker 0's are the process's own (with the admin listener and, after an upgrade,
    /// the ready pipe); the others' are duplicates of the client listeners.
    pub listeners: Listeners,
    /// With `--journal`: this worker's writer, or `None` while the lb this one replaces
    /// still holds the journal.
    pub journal: Option<Option<Writer>>,
    pub shared: Arc<Shared>,
}

pub struct EventLoop {
    poll: Poll,
    /// The site's listeners, by their place, until a stop signal closes them.
    listeners: Vec<Option<Listener>>,
    /// Serves /metrics, /stats and /healthz; `None` with `--admin off`, in workers but 0,
    /// or once stopping.
    admin: Option<TcpListener>,
    /// Worker 0's: the process's signals arrive there.
    signals: Option<Signals>,
    /// Inherited from the lb this one replaces: told once this one serves.
    ready: Option<ReadyPipe>,
    /// A new lb started by SIGUSR2, until it serves or fails.
    upgrades: Upgrades,
    /// Worker 0's tells systemd when lb serves, reloads and stops; the others' say nothing.
    notifier: Notifier,
    /// Worker 0's SIGHUP reload, from the signal until its result is taken in.
    reloading: Reloading,
    /// Set when the loop is to end after this turn.
    stopped: Option<Stopped>,
    conns: Slab<Conn>,
    core: Core,
    /// Whether new clients are taken; while not, they wait in the backlog.
    accepting: Accepting,
    /// The listeners this worker left clients in (`Yielded`), and when it accepts from
    /// them again if no other worker has taken those clients by then.
    accept_again: Vec<FrontId>,
    accept_again_at: Option<Instant>,
    /// Writes the journal still owed at start, resumed when the loop runs.
    resumed: Vec<Replayed>,
    /// Rung by the journal's thread after each sync.
    doorbell: Option<Arc<Doorbell>>,
    /// The latest request for counters this worker has answered (see `shared`).
    stats_answered: u64,
    /// The site update this worker applied last (workers but 0).
    applied_site: Option<Arc<SiteUpdate>>,
}

impl EventLoop {
    /// Registers the listeners and makes the worker's state.
    pub fn bind(start: Start) -> Result<Self, String> {
        let Start {
            worker,
            site,
            backends,
            tls,
            listeners,
            journal,
            shared,
        } = start;
        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let many = shared.workers() > 1;
        let mut traffic = Vec::with_capacity(listeners.traffic.len());
        for (front, l) in listeners.traffic.into_iter().enumerate() {
            let l = Listener::register(l, poll.registry(), listener_token(front), many)
                .map_err(|e| format!("cannot register a listener: {e}"))?;
            if worker == 0
                && let Err(e) = limits::deepen_backlog(&*l)
            {
                log::warn!("cannot deepen a listen backlog: {e}");
            }
            traffic.push(Some(l));
        }
        let mut admin = listeners.admin;
        if let Some(a) = admin.as_mut() {
            poll.registry()
                .register(a, ADMIN_LISTENER, Interest::READABLE)
                .map_err(|e| format!("cannot register the admin listener: {e}"))?;
        }
        let signals = match worker {
            0 => {
                let signals =
                    Signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
                poll.registry()
                    .register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)
                    .map_err(|e| format!("cannot register the signal pipe: {e}"))?;
                Some(signals)
            }
            _ => None,
        };
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| format!("cannot clone registry: {e}"))?;
        let bound: Vec<Option<SocketAddr>> = traffic
            .iter()
            .map(|l| l.as_ref().and_then(|l| l.local_addr().ok()))
            .collect();
        let default_host = bound
            .iter()
            .flatten()
            .next()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let admin_bound = admin.as_ref().and_then(|a| a.local_addr().ok());
        let own = OwnAddrs::of_site(&site, &bound, admin_bound);
        let waker = mio::Waker::new(poll.registry(), WAKE)
            .map_err(|e| format!("cannot make a waker: {e}"))?;
        let waker = Arc::new(waker);
        shared.set_waker(worker, Arc::clone(&waker));
        let slab_capacity = site
            .process
            .max_connections
            .saturating_mul(2)
            .clamp(1024, 1 << 21);
        let threads = (worker, shared, waker);
        let start = (site, backends.as_slice());
        let mut core = Core::new(start, tls, registry, threads, default_host, own)?;
        let (resumed, doorbell) = match journal {
            Some(writer) => {
                let (resumed, doorbell) = fanout::use_journal(&mut core, writer)?;
                poll.registry()
                    .register(&mut SourceFd(&doorbell.fd()), JOURNAL, Interest::READABLE)
                    .map_err(|e| format!("cannot register the journal's eventfd: {e}"))?;
                (resumed, Some(doorbell))
            }
            None => (Vec::new(), None),
        };
        Ok(EventLoop {
            poll,
            listeners: traffic,
            signals,
            ready: listeners.ready,
            upgrades: Upgrades::default(),
            notifier: match worker {
                0 => Notifier::from_env(),
                _ => Notifier::default(),
            },
            reloading: Reloading::No,
            stopped: None,
            // Room for every client and a backend connection each, reserved up front: the
            // slab never moves, and slots never used never become resident memory.
            conns: Slab::with_capacity(slab_capacity),
            admin,
            core,
            accepting: Accepting::Open,
            accept_again: Vec::new(),
            accept_again_at: None,
            resumed,
            doorbell,
            stats_answered: 0,
            applied_site: None,
        })
    }

    /// Where each listener's clients connect, in the site's order (`None` once closed).
    pub fn local_addrs(&self) -> Vec<Option<io::Result<SocketAddr>>> {
        self.listeners
            .iter()
            .map(|l| l.as_ref().map(|l| l.local_addr()))
            .collect()
    }

    /// Where the admin listener is, if there is one.
    pub fn admin_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr)
    }

    /// Serves until a stop signal and the drain that follows end it.
    pub fn run(&mut self) -> io::Result<Stopped> {
        let resumed = std::mem::take(&mut self.resumed);
        fanout::resume(&mut self.conns, &mut self.core, resumed);
        // systemd first: the lb this one replaces may exit as soon as it hears, and by
        // then systemd must know the new main pid.
        if self.notifier.is_on() {
            let status = self.status_line();
            self.notifier.started(status);
        }
        if let Some(ready) = self.ready.take() {
            log::info!("upgrade: serving; the lb that started this one stops accepting now");
            ready.announce();
        }
        let stopped = self.turns();
        fanout::finish_journal(&mut self.core);
        self.publish_final();
        if self.core.worker != 0 {
            self.core.shared.finished();
        }
        stopped
    }

    fn turns(&mut self) -> io::Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        let mut sending = Vec::new();
        loop {
            let now = Instant::now();
            let timeout = if self.core.revisit.is_empty() && self.core.h2_woken.borrow().is_empty()
            {
                let timers = self.core.timers.next_timeout(now);
                let again = self
                    .accept_again_at
                    .map(|at| at.saturating_duration_since(now));
                timers.into_iter().chain(again).min()
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.core.now = Instant::now();
            // What another worker published (one relaxed load while nothing changed).
            if self.core.shared.news() != self.core.news_seen {
                self.take_news();
            }
            self.core.sends.hold();
            for event in events.iter() {
                match event.token() {
                    // A worker pausing after a yield was made ready by its own `requeue`
                    // (the backlog it left is still there): the pause holds.
                    Token(t) if t <= LISTENERS && LISTENERS - t < self.listeners.len() => {
                        let front = LISTENERS - t;
                        if !self.accept_again.contains(&front) {
                            self.accept(front);
                        }
                    }
                    ADMIN_LISTENER => self.accept_admin(),
                    SIGNALS => self.signalled(),
                    WAKE => self.woken(),
                    UPGRADE => self.upgrade_progress(),
                    JOURNAL => {
                        self.doorbell.iter().for_each(|d| d.clear());
                        fanout::journal_woke(&mut self.conns, &mut self.core);
                        admin::peers::apply(&mut self.conns, &mut self.core);
                    }
                    Token(t) => self.ready(t >> 1, event),
                }
            }
            if self.accept_again_at.is_some_and(|at| at <= self.core.now) {
                self.accept_again_at = None;
                for front in std::mem::take(&mut self.accept_again) {
                    self.accept(front);
                }
            }
            self.release_sends(&mut sending);
            for key in std::mem::take(&mut self.core.revisit) {
                self.resume(key);
            }
            http2::wake(&mut self.conns, &mut self.core);
            self.core.timers.expire(self.core.now, &mut fired);
            for timer in fired.drain(..) {
                self.timer_fired(timer);
            }
            // The turn's journal records are written; the copies they held back go out,
            // grouped like the other sends.
            self.core.sends.hold();
            fanout::end_turn(&mut self.conns, &mut self.core);
            self.release_sends(&mut sending);
            http2::wake(&mut self.conns, &mut self.core);
            if self.accepting == Accepting::Full
                && self.core.shared.clients() < self.core.cfg.max_connections
            {
                self.resume_accepting();
            }
            if self.core.draining && self.stopped.is_none() && self.drained() {
                drain::report_done(&self.core);
                self.stopped = Some(Stopped::Drained);
            }
            self.core.access.flush();
            if let Some(stopped) = self.stopped {
                return Ok(stopped);
            }
        }
    }

    /// Ends the hold on sends and makes them, grouped by destination.
    fn release_sends(&mut self, sending: &mut Vec<usize>) {
        self.core.sends.release(sending);
        for key in sending.drain(..) {
            self.resume(key);
        }
    }

    /// Steps a connection again without a new event: its sends were held, or it used up
    /// its budget last turn.
    fn resume(&mut self, key: usize) {
        match self.conns.get(key) {
            Some(Conn::Client(_)) => {
                http::client::client_ready(&mut self.conns, &mut self.core, key)
            }
            // Held sends of a POST copy; a client's exchange is noted by its client's key.
            Some(Conn::Upstream(_)) => {
                http::upstream::upstream_ready(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Pipe(_)) => tcp::resume(&mut self.conns, &mut self.core, key),
            Some(Conn::H2(_)) => http2::drive(&mut self.conns, &mut self.core, key),
            Some(Conn::H2Upstream(_)) => h2_upstream::drive(&mut self.conns, &mut self.core, key),
            _ => {}
        }
    }

    fn housekeeping(&mut self) {
        http::upstream::trim_idle(&mut self.conns, &mut self.core);
        self.core.buffers.trim_unused();
        let boxes_dropped = self.core.exchanges.trim_unused();
        if self.core.buffers.take_dropped() || boxes_dropped {
            release_free_memory();
        }
        fanout::refresh_metrics(&mut self.core);
        if self.core.shared.workers() > 1 {
            self.publish_stats(self.stats_answered);
        }
        if self.core.worker == 0 {
            admin::sample_history(&mut self.core);
            reconfigure::tidy(&mut self.conns, &mut self.core);
            if self.notifier.is_on() {
                let status = self.status_line();
                self.notifier.status(status);
            }
        }
        let next = self.core.now + HOUSEKEEPING;
        self.core.timers.insert(next, Timer::Housekeeping);
    }

    fn ready(&mut self, key: usize, event: &mio::event::Event) {
        match self.conns.get_mut(key) {
            Some(Conn::Client(c)) => {
                c.io.on_event(event);
                http::client::client_ready(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Upstream(u)) => {
                u.io.on_event(event);
                http::upstream::upstream_ready(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Probe(p)) => {
                p.io.on_event(event);
                probe::probe_ready(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Admin(_)) => admin::ready(&mut self.conns, &mut self.core, key),
            Some(Conn::AwaitingProxy(_)) => {
                accept_proxy::ready(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Pipe(_)) => {
                let side = event.token().0 & 1;
                tcp::ready(&mut self.conns, &mut self.core, key, side, event);
            }
            Some(Conn::H2(h)) => {
                h.io.on_event(event);
                http2::drive(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::H2Upstream(h)) => {
                h.io.on_event(event);
                h2_upstream::drive(&mut self.conns, &mut self.core, key);
            }
            None => debug!("event for closed token {key}"),
        }
    }

    fn timer_fired(&mut self, timer: Timer) {
        let (key, serial) = match timer {
            Timer::Conn { key, serial } => (key, serial),
            Timer::Check { id, generation } => {
                return probe::start(&mut self.conns, &mut self.core, id, generation);
            }
            Timer::Housekeeping => return self.housekeeping(),
            Timer::AcceptRetry => return self.resume_accepting(),
            Timer::DrainDeadline if self.drained() => return,
            Timer::DrainDeadline => return self.drain_timed_out(),
            Timer::Retry { job, copy, serial } => {
                return fanout::retry_due(&mut self.conns, &mut self.core, job, copy, serial);
            }
            Timer::FanoutDeadline { job, serial } => {
                return fanout::deadline_passed(&mut self.conns, &mut self.core, job, serial);
            }
            Timer::UpgradeDeadline(pid) => return self.upgrade_timed_out(pid),
            Timer::Gathered => return admin::gathered(&mut self.conns, &mut self.core, true),
            Timer::StoreDue => return fanout::store_due(&mut self.core),
        };
        match self.conns.get(key) {
            Some(Conn::Client(c)) if c.serial == serial => {
                http::client::client_timer(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Upstream(u)) if u.serial == serial => {
                http::upstream::upstream_timer(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Probe(p)) if p.serial == serial => {
                probe::probe_timed_out(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Admin(a)) if a.serial == serial => {
                admin::timed_out(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::Pipe(p)) if p.serial == serial => {
                tcp::timer_fired(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::AwaitingProxy(a)) if a.serial == serial => {
                accept_proxy::timed_out(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::H2(h)) if h.serial == serial => {
                http2::timer_fired(&mut self.conns, &mut self.core, key);
            }
            Some(Conn::H2Upstream(h)) if h.serial == serial => {
                h2_upstream::timer_fired(&mut self.conns, &mut self.core, key);
            }
            _ => {}
        }
    }
}

/// Buffers freed after a burst of connections stay in the C allocator's heap, resident,
/// until something asks for them back; glibc's `malloc_trim` returns whole free pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    /// The slab slot is what an idle keep-alive connection costs; keep it well under the
    /// 512 bytes an idle client may use in all.
    #[test]
    fn connection_slots_stay_small() {
        assert!(
            std::mem::size_of::<super::Conn>() <= 192,
            "{}",
            std::mem::size_of::<super::Conn>()
        );
    }
}
