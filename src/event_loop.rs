//! The poll loop: one `mio::Poll`, one slab of connections, one timer wheel.
//! A token is a slab key; the loop hands each event to the module that owns that
//! kind of connection, then fires due timers.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::admin::{self, AdminConn};
use crate::backend::{Backend, BackendId};
use crate::buffer::BufferPool;
use crate::config::{Config, Mode};
use crate::drain::{self, Stopped};
use crate::fanout;
use crate::held_sends::HeldSends;
use crate::http;
use crate::http::client::ClientConn;
use crate::http::exchange::ExchangePool;
use crate::http::head::RequestId;
use crate::http::upstream::UpstreamConn;
use crate::journal::{Journal, Replayed};
use crate::metrics::{JournalMetrics, Metrics};
use crate::probe::{self, HealthMonitor, Probe};
use crate::signals::Signals;
use crate::strategy::{self, Strategy};
use crate::tcp::{self, TcpPipe};
use crate::timer::{TimerId, TimerWheel};

const LISTENER: Token = Token(usize::MAX);
/// Slab tokens are `key << 1 | side`, so this one is never a slab entry's either.
const ADMIN_LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The journal's thread finished a write.
const JOURNAL: Token = Token(usize::MAX - 3);

/// A token names a slab entry and which of its sockets (0 or 1) is ready: an L4 pipe
/// owns two sockets in one entry, so no session needs to be shared between entries.
pub fn token(key: usize, side: usize) -> Token {
    Token(key << 1 | side)
}
/// Buffers hold a whole request head (8 KiB line + 16 KiB fields) with room to spare.
pub const BUFFER_SIZE: usize = 32 * 1024;
/// Free buffers kept for reuse (2 MiB); more are allocated under load and freed after.
const FREE_BUFFERS: usize = 64;
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Bytes one connection may move in one turn of the loop before the others get theirs:
/// a fast upload must not keep thousands of other clients waiting.
pub const STEP_BUDGET: u64 = 256 * 1024;
const TIMER_TICK: Duration = Duration::from_millis(10);
const TIMER_SLOTS: usize = 512;

/// Every socket the loop owns, by slab key. Entries live inline in the slab, so the
/// client (the largest) sets the slot size; boxing would cost an allocation per connection.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Client(ClientConn),
    Upstream(UpstreamConn),
    Probe(Probe),
    Admin(AdminConn),
    /// TCP mode: a client and its backend, both sockets in this one entry.
    /// Boxed: one allocation per TCP session keeps every HTTP slot small.
    Pipe(Box<TcpPipe>),
}

/// What a timer is for once it fires.
#[derive(Debug, Clone, Copy)]
pub enum Timer {
    /// A connection's own timeout; `serial` tells a reused slab key from the entry that set it.
    Conn { key: usize, serial: u32 },
    /// Time for the next health check of a backend.
    Check(BackendId),
    /// A failed POST copy is due to be sent again.
    Retry {
        job: usize,
        copy: usize,
        serial: u32,
    },
    /// A POST has waited --fanout-timeout for a first success.
    FanoutDeadline { job: usize, serial: u32 },
    /// Once a second: give memory freed after a burst back to the system.
    Housekeeping,
    /// --drain-timeout has passed since the stop signal.
    DrainDeadline,
}

/// Everything the connection handlers share, apart from the slab itself.
pub struct Core {
    pub cfg: Config,
    pub backends: Vec<Backend>,
    pub strategy: Box<dyn Strategy>,
    pub buffers: BufferPool,
    pub health: HealthMonitor,
    pub metrics: Metrics,
    pub fanout: fanout::Jobs,
    pub exchanges: ExchangePool,
    /// Connections that stopped at their STEP_BUDGET with work left: edge-triggered
    /// readiness will not announce them again, so the loop steps them next turn.
    pub revisit: Vec<usize>,
    /// Sends held while the loop reads a turn's events (see `held_sends`).
    pub sends: HeldSends,
    pub timers: TimerWheel<Timer>,
    pub registry: Registry,
    /// The time the loop last woke; handlers read this instead of the clock.
    pub now: Instant,
    pub clients_open: usize,
    pub admin_open: usize,
    /// A stop signal came: no new clients, no new keep-alive requests (see `drain`).
    pub draining: bool,
    /// The Host header for HTTP/1.0 requests that carry none.
    pub default_host: String,
    serial: u32,
    request_ids: u64,
}

impl Core {
    /// Registers socket `side` of slab entry `key` for both readiness kinds, edge-triggered.
    pub fn register(
        &self,
        sock: &mut mio::net::TcpStream,
        key: usize,
        side: usize,
    ) -> io::Result<()> {
        self.registry.register(
            sock,
            token(key, side),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    pub fn next_serial(&mut self) -> u32 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    pub fn fresh_request_id(&mut self) -> RequestId {
        self.request_ids = self.request_ids.wrapping_add(1);
        RequestId::generate(self.request_ids)
    }

    /// Replaces whatever timer `slot` held with one firing `after` from now.
    pub fn arm(&mut self, slot: &mut Option<TimerId>, after: Duration, key: usize, serial: u32) {
        self.disarm(slot);
        *slot = Some(
            self.timers
                .insert(self.now + after, Timer::Conn { key, serial }),
        );
    }

    pub fn disarm(&mut self, slot: &mut Option<TimerId>) {
        if let Some(id) = slot.take() {
            self.timers.cancel(id);
        }
    }
}

pub struct EventLoop {
    poll: Poll,
    /// `None` once a stop signal closed it.
    listener: Option<TcpListener>,
    /// Serves /metrics, /stats and /healthz; `None` with `--admin off` or once stopping.
    admin: Option<TcpListener>,
    signals: Signals,
    /// Set when the loop is to end after this turn.
    stopped: Option<Stopped>,
    conns: Slab<Conn>,
    core: Core,
    /// Accepting stopped at --max-connections; new clients wait in the backlog.
    accept_paused: bool,
    /// Writes the journal still owed at start, resumed when the loop runs.
    resumed: Vec<Replayed>,
}

impl EventLoop {
    /// Binds the listeners; `journal` is the opened `--journal` and what it still owes.
    pub fn bind(cfg: Config, journal: Option<(Journal, Vec<Replayed>)>) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let mut listener = TcpListener::bind(cfg.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("cannot register listener: {e}"))?;
        let admin = match cfg.admin {
            Some(addr) => {
                let mut l = TcpListener::bind(addr).map_err(|e| {
                    format!("cannot listen on {addr} for --admin (--admin off turns it off): {e}")
                })?;
                poll.registry()
                    .register(&mut l, ADMIN_LISTENER, Interest::READABLE)
                    .map_err(|e| format!("cannot register admin listener: {e}"))?;
                Some(l)
            }
            None => None,
        };
        let signals = Signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
        poll.registry()
            .register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)
            .map_err(|e| format!("cannot register the signal pipe: {e}"))?;
        let backends: Vec<Backend> = cfg
            .backends
            .iter()
            .map(|b| Backend::new(b.addr, b.label.clone(), b.weight))
            .collect();
        let strategy = strategy::by_name(&cfg.strategy, &backends)?;
        let health = HealthMonitor::new(&cfg, &backends);
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| format!("cannot clone registry: {e}"))?;
        let now = Instant::now();
        let default_host = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| cfg.listen.to_string());
        let mut timers = TimerWheel::new(TIMER_TICK, TIMER_SLOTS, now);
        if health.enabled() {
            for id in 0..backends.len() {
                timers.insert(
                    now + health.first_delay(id, backends.len()),
                    Timer::Check(id),
                );
            }
        }
        timers.insert(now + HOUSEKEEPING, Timer::Housekeeping);
        let (journal, resumed) = match journal {
            Some((mut journal, resumed)) => {
                let waker = mio::Waker::new(poll.registry(), JOURNAL)
                    .map_err(|e| format!("cannot create the journal's waker: {e}"))?;
                journal.start(Box::new(move || {
                    let _ = waker.wake();
                }))?;
                (Some(journal), resumed)
            }
            None => (None, Vec::new()),
        };
        let slab_capacity = cfg.max_connections.saturating_mul(2).clamp(1024, 1 << 21);
        let core = Core {
            metrics: Metrics::new(backends.len(), now),
            fanout: fanout::Jobs::new(backends.len(), journal),
            exchanges: ExchangePool::default(),
            revisit: Vec::new(),
            sends: HeldSends::default(),
            health,
            backends,
            strategy,
            buffers: BufferPool::new(BUFFER_SIZE, FREE_BUFFERS),
            timers,
            registry,
            now,
            clients_open: 0,
            admin_open: 0,
            draining: false,
            default_host,
            serial: 0,
            request_ids: rand::random::<u64>() & 0xffff_ffff_0000_0000,
            cfg,
        };
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            signals,
            stopped: None,
            // Room for every client and a backend connection each, reserved up front: the
            // slab never moves, and slots never used never become resident memory.
            conns: Slab::with_capacity(slab_capacity),
            admin,
            core,
            accept_paused: false,
            resumed,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "stopped listening",
            )),
        }
    }

    /// Where the admin listener is, if there is one.
    pub fn admin_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr)
    }

    /// Serves until a stop signal and the drain that follows end it.
    pub fn run(&mut self) -> io::Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        let mut sending = Vec::new();
        let resumed = std::mem::take(&mut self.resumed);
        fanout::resume(&mut self.conns, &mut self.core, resumed);
        let stopped = self.turns(&mut events, &mut fired, &mut sending);
        fanout::finish_journal(&mut self.core);
        stopped
    }

    fn turns(
        &mut self,
        events: &mut Events,
        fired: &mut Vec<Timer>,
        sending: &mut Vec<usize>,
    ) -> io::Result<Stopped> {
        loop {
            let timeout = if self.core.revisit.is_empty() {
                self.core.timers.next_timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.core.now = Instant::now();
            self.core.sends.hold();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    ADMIN_LISTENER => self.accept_admin(),
                    SIGNALS => self.signalled(),
                    JOURNAL => fanout::journal_woke(&mut self.conns, &mut self.core),
                    Token(t) => self.ready(t >> 1, event),
                }
            }
            self.release_sends(sending);
            for key in std::mem::take(&mut self.core.revisit) {
                self.resume(key);
            }
            self.core.timers.expire(self.core.now, fired);
            for timer in fired.drain(..) {
                self.timer_fired(timer);
            }
            // The turn's journal records go to disk (or to the journal's thread); with
            // `off` and `always` the copies they held back go out now, grouped as usual.
            self.core.sends.hold();
            fanout::end_turn(&mut self.conns, &mut self.core);
            self.release_sends(sending);
            if self.accept_paused && self.core.clients_open < self.core.cfg.max_connections {
                self.accept_paused = false;
                self.accept();
            }
            if self.core.draining && self.stopped.is_none() && drain::is_done(&self.core) {
                match self.core.fanout.len() {
                    0 => info!("drained: every request and POST copy finished; exiting"),
                    owed => info!(
                        "drained: every request finished; {owed} writes still owed are kept \
                         in the journal for the next start; exiting"
                    ),
                }
                self.stopped = Some(Stopped::Drained);
            }
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

    fn signalled(&mut self) {
        let arrived = self.signals.take();
        if arrived.reload {
            // Until reloading exists, SIGHUP must not do what its default does: kill lb and
            // every write it still owes.
            warn!("SIGHUP: reloading is not supported yet; carrying on unchanged");
        }
        if arrived.stops > 0 {
            self.stop_signalled(arrived.last_stop);
        }
    }

    /// The first stop signal starts the drain; another ends it at once.
    fn stop_signalled(&mut self, signal: &str) {
        if self.core.draining {
            drain::report_cut(&self.conns, &self.core, &format!("{signal} while draining"));
            self.stopped = Some(Stopped::Cut);
            return;
        }
        // Closed, not just ignored: new clients are refused at once instead of waiting in
        // the backlog for a process that will not accept them.
        for mut listener in [self.listener.take(), self.admin.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        drain::begin(&mut self.conns, &mut self.core, signal);
        let deadline = self.core.now + self.core.cfg.drain_timeout;
        self.core.timers.insert(deadline, Timer::DrainDeadline);
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
            _ => {}
        }
    }

    fn housekeeping(&mut self) {
        if self.core.buffers.take_dropped() {
            release_free_memory();
        }
        let (owed, oldest) = self.core.fanout.owed(self.core.now);
        let m = &mut self.core.metrics;
        (m.writes_owed, m.oldest_owed_seconds) = (owed as u64, oldest);
        m.journal = self.core.fanout.journal().map(|j| JournalMetrics {
            stats: j.stats.clone(),
            bytes_on_disk: j.bytes_on_disk(),
        });
        let next = self.core.now + HOUSEKEEPING;
        self.core.timers.insert(next, Timer::Housekeeping);
    }

    fn accept(&mut self) {
        loop {
            if self.core.clients_open >= self.core.cfg.max_connections {
                if !self.accept_paused {
                    info!(
                        "{} client connections open (--max-connections): new ones wait",
                        self.core.clients_open
                    );
                }
                self.accept_paused = true;
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
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or a client that reset before accept: log, go on.
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn accept_admin(&mut self) {
        let Some(listener) = &self.admin else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((sock, _)) => admin::accept(&mut self.conns, &mut self.core, sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("admin accept failed: {e}");
                    return;
                }
            }
        }
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
            Some(Conn::Probe(_)) => probe::probe_ready(&mut self.conns, &mut self.core, key),
            Some(Conn::Admin(_)) => admin::ready(&mut self.conns, &mut self.core, key),
            Some(Conn::Pipe(_)) => {
                let side = event.token().0 & 1;
                tcp::ready(&mut self.conns, &mut self.core, key, side, event);
            }
            None => debug!("event for closed token {key}"),
        }
    }

    fn timer_fired(&mut self, timer: Timer) {
        let (key, serial) = match timer {
            Timer::Conn { key, serial } => (key, serial),
            Timer::Check(id) => return probe::start(&mut self.conns, &mut self.core, id),
            Timer::Housekeeping => return self.housekeeping(),
            Timer::DrainDeadline if drain::is_done(&self.core) => return,
            Timer::DrainDeadline => {
                drain::report_cut(&self.conns, &self.core, "--drain-timeout passed");
                self.stopped = Some(Stopped::Cut);
                return;
            }
            Timer::Retry { job, copy, serial } => {
                return fanout::retry_due(&mut self.conns, &mut self.core, job, copy, serial);
            }
            Timer::FanoutDeadline { job, serial } => {
                return fanout::deadline_passed(&mut self.conns, &mut self.core, job, serial);
            }
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
