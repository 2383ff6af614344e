//! The poll loop: one `mio::Poll`, one slab of connections, one timer wheel.
//! A token is a slab key; the loop hands each event to the module that owns that
//! kind of connection, then fires due timers. What the handlers share is in `state.rs`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::accept::{self, Accepting};
use crate::accept_proxy;
use crate::admin;
use crate::config::Config;
use crate::drain::{self, Reason, Stopped};
use crate::fanout;
use crate::http;
use crate::journal::{Doorbell, Opened, Replayed};
use crate::limits;
use crate::probe;
use crate::reconfigure;
use crate::signals::Signals;
use crate::tcp;
use crate::tls::TlsContexts;
use crate::upgrade::{self, Outcome, ReadyPipe, Upgrades};

use crate::state::HOUSEKEEPING;
pub use crate::state::{BUFFER_SIZE, Conn, Core, STEP_BUDGET, Timer, token};

const LISTENER: Token = Token(usize::MAX);
/// Slab tokens are `key << 1 | side`, so this one is never a slab entry's either.
const ADMIN_LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const RESOLVER: Token = Token(usize::MAX - 3);
const UPGRADE: Token = Token(usize::MAX - 4);
/// The journal's thread finished a sync (its eventfd).
const JOURNAL: Token = Token(usize::MAX - 5);
const TLS_LISTENER: Token = Token(usize::MAX - 6);

/// How long a new process started by SIGUSR2 may take to serve before it is given up.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct EventLoop {
    poll: Poll,
    /// `None` without `--listen` (only `--tls-listen`), or once a stop signal closed it.
    listener: Option<TcpListener>,
    /// `--tls-listen`, if given, until a stop signal.
    tls_listener: Option<TcpListener>,
    /// Serves /metrics, /stats and /healthz; `None` with `--admin off` or once stopping.
    admin: Option<TcpListener>,
    signals: Signals,
    /// Inherited from the lb this one replaces: told once this one serves.
    ready: Option<ReadyPipe>,
    /// A new lb started by SIGUSR2, until it serves or fails.
    upgrades: Upgrades,
    /// Set when the loop is to end after this turn.
    stopped: Option<Stopped>,
    conns: Slab<Conn>,
    core: Core,
    /// Whether new clients are taken; while not, they wait in the backlog.
    accepting: Accepting,
    /// Writes the journal still owed at start, resumed when the loop runs.
    resumed: Vec<Replayed>,
    /// Rung by the journal's thread after each sync.
    doorbell: Option<Arc<Doorbell>>,
}

impl EventLoop {
    /// Binds (or inherits) the listeners; `journal` is the opened `--journal` (or word that
    /// the lb this one replaces still holds it).
    pub fn bind(cfg: Config, tls: TlsContexts, journal: Option<Opened>) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let listeners = upgrade::listeners(&cfg)?;
        let register = |l: Option<TcpListener>, token| -> Result<_, String> {
            l.map(|mut l| {
                poll.registry()
                    .register(&mut l, token, Interest::READABLE)
                    .map(|()| l)
                    .map_err(|e| format!("cannot register a listener: {e}"))
            })
            .transpose()
        };
        let listener = register(listeners.listen, LISTENER)?;
        let tls_listener = register(listeners.tls, TLS_LISTENER)?;
        for l in [&listener, &tls_listener].into_iter().flatten() {
            if let Err(e) = limits::deepen_backlog(l) {
                warn!("cannot deepen a listen backlog: {e}");
            }
        }
        let admin = register(listeners.admin, ADMIN_LISTENER)?;
        let signals = Signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
        poll.registry()
            .register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)
            .map_err(|e| format!("cannot register the signal pipe: {e}"))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| format!("cannot clone registry: {e}"))?;
        let listening: Vec<SocketAddr> = [&listener, &tls_listener]
            .into_iter()
            .flatten()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let default_host = listening.first().map(|a| a.to_string()).unwrap_or_default();
        let waker = mio::Waker::new(poll.registry(), RESOLVER)
            .map_err(|e| format!("cannot make a waker for the resolver: {e}"))?;
        let slab_capacity = cfg.max_connections.saturating_mul(2).clamp(1024, 1 << 21);
        let mut core = Core::new(cfg, tls, registry, waker, default_host, listening)?;
        let (resumed, doorbell) = match journal {
            Some(opened) => {
                let (resumed, doorbell) = fanout::use_journal(&mut core, opened)?;
                poll.registry()
                    .register(&mut SourceFd(&doorbell.fd()), JOURNAL, Interest::READABLE)
                    .map_err(|e| format!("cannot register the journal's eventfd: {e}"))?;
                (resumed, Some(doorbell))
            }
            None => (Vec::new(), None),
        };
        Ok(EventLoop {
            poll,
            listener,
            tls_listener,
            signals,
            ready: listeners.ready,
            upgrades: Upgrades::default(),
            stopped: None,
            // Room for every client and a backend connection each, reserved up front: the
            // slab never moves, and slots never used never become resident memory.
            conns: Slab::with_capacity(slab_capacity),
            admin,
            core,
            accepting: Accepting::Open,
            resumed,
            doorbell,
        })
    }

    /// Where plain clients connect, if anywhere.
    pub fn local_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.listener.as_ref().map(TcpListener::local_addr)
    }

    /// Where TLS clients connect, if anywhere.
    pub fn tls_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.tls_listener.as_ref().map(TcpListener::local_addr)
    }

    /// Where the admin listener is, if there is one.
    pub fn admin_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr)
    }

    /// Serves until a stop signal and the drain that follows end it.
    pub fn run(&mut self) -> io::Result<Stopped> {
        if let Some(ready) = self.ready.take() {
            info!("upgrade: serving; the lb that started this one stops accepting now");
            ready.announce();
        }
        upgrade::notify_service_manager();
        let resumed = std::mem::take(&mut self.resumed);
        fanout::resume(&mut self.conns, &mut self.core, resumed);
        let stopped = self.turns();
        fanout::finish_journal(&mut self.core);
        stopped
    }

    fn turns(&mut self) -> io::Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        let mut sending = Vec::new();
        loop {
            let timeout = if self.core.revisit.is_empty() {
                self.core.timers.next_timeout(Instant::now())
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
            self.core.sends.hold();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(false),
                    TLS_LISTENER => self.accept(true),
                    ADMIN_LISTENER => self.accept_admin(),
                    SIGNALS => self.signalled(),
                    RESOLVER => {
                        for done in self.core.resolver.take() {
                            reconfigure::resolved(&mut self.conns, &mut self.core, done);
                        }
                    }
                    UPGRADE => self.upgrade_progress(),
                    JOURNAL => {
                        self.doorbell.iter().for_each(|d| d.clear());
                        fanout::journal_woke(&mut self.conns, &mut self.core);
                    }
                    Token(t) => self.ready(t >> 1, event),
                }
            }
            self.release_sends(&mut sending);
            for key in std::mem::take(&mut self.core.revisit) {
                self.resume(key);
            }
            self.core.timers.expire(self.core.now, &mut fired);
            for timer in fired.drain(..) {
                self.timer_fired(timer);
            }
            // The turn's journal records are written; the copies they held back go out,
            // grouped like the other sends.
            self.core.sends.hold();
            fanout::end_turn(&mut self.conns, &mut self.core);
            self.release_sends(&mut sending);
            if self.accepting == Accepting::Full
                && self.core.clients_open < self.core.cfg.max_connections
            {
                self.resume_accepting();
            }
            if self.core.draining && self.stopped.is_none() && drain::is_done(&self.core) {
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

    fn signalled(&mut self) {
        let arrived = self.signals.take();
        if arrived.reload {
            reconfigure::reload(&mut self.core);
            self.core.tls.reload_certificates();
        }
        if arrived.upgrade {
            self.upgrade();
        }
        if arrived.stops > 0 {
            self.stop_signalled(arrived.last_stop);
        }
    }

    /// SIGUSR2: starts the binary on disk with our listeners; it takes over once it serves.
    fn upgrade(&mut self) {
        let serving = self.listener.is_some() || self.tls_listener.is_some();
        if !serving || self.core.draining {
            return warn!("SIGUSR2 while stopping: no upgrade");
        }
        let fd = |l: &Option<TcpListener>| l.as_ref().map(AsRawFd::as_raw_fd);
        let fds = [fd(&self.listener), fd(&self.tls_listener), fd(&self.admin)];
        let registry = self.poll.registry();
        match self.upgrades.start(registry, UPGRADE, fds) {
            Ok(pid) => {
                let deadline = self.core.now + UPGRADE_TIMEOUT;
                self.core
                    .timers
                    .insert(deadline, Timer::UpgradeDeadline(pid));
            }
            Err(e) => error!("upgrade failed, carrying on: {e}"),
        }
    }

    /// The new process said something on its ready pipe: it serves, or it failed.
    fn upgrade_progress(&mut self) {
        match self.upgrades.progress(self.poll.registry()) {
            None => {}
            Some(Outcome::Serving(pid)) => {
                self.close_listeners();
                drain::begin(&mut self.conns, &mut self.core, Reason::HandedOver(pid));
                self.arm_drain_deadline();
            }
            Some(Outcome::Failed(why)) => error!("upgrade failed, carrying on: {why}"),
        }
    }

    /// The first stop signal starts the drain; another ends it at once.
    fn stop_signalled(&mut self, signal: &str) {
        if self.core.draining {
            drain::report_cut(&self.conns, &self.core, &format!("{signal} while draining"));
            self.stopped = Some(Stopped::Cut);
            return;
        }
        if self.upgrades.stop(self.poll.registry(), None) {
            warn!("{signal}: stopped the new lb that was starting to take over");
        }
        // Closed, not just ignored: new clients are refused at once instead of waiting in
        // the backlog for a process that will not accept them.
        self.close_listeners();
        drain::begin(&mut self.conns, &mut self.core, Reason::Signal(signal));
        self.arm_drain_deadline();
    }

    /// Drops this process's listening sockets. After a handover the new process holds
    /// the same sockets, so nothing waiting in their queues is lost.
    fn close_listeners(&mut self) {
        for mut listener in [
            self.listener.take(),
            self.tls_listener.take(),
            self.admin.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }

    fn arm_drain_deadline(&mut self) {
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
        self.core.history.sample(self.core.now, &self.core.metrics);
        self.core.buffers.trim_unused();
        let boxes_dropped = self.core.exchanges.trim_unused();
        if self.core.buffers.take_dropped() || boxes_dropped {
            release_free_memory();
        }
        reconfigure::tidy(&mut self.conns, &mut self.core);
        fanout::refresh_metrics(&mut self.core);
        let next = self.core.now + HOUSEKEEPING;
        self.core.timers.insert(next, Timer::Housekeeping);
    }

    fn accept(&mut self, tls: bool) {
        let listener = if tls {
            &self.tls_listener
        } else {
            &self.listener
        };
        let (Some(listener), false) = (listener, self.accepting == Accepting::Failing) else {
            return;
        };
        match accept::accept_all(&mut self.conns, &mut self.core, listener, tls) {
            Accepting::Open => {}
            Accepting::Full => {
                if self.accepting == Accepting::Open {
                    info!(
                        "{} client connections open (--max-connections): new ones wait",
                        self.core.clients_open
                    );
                }
                self.accepting = Accepting::Full;
            }
            // The clients left in the backlog bring no new readiness edge: a timer must.
            Accepting::Failing => {
                self.accepting = Accepting::Failing;
                let at = self.core.now + accept::RETRY;
                self.core.timers.insert(at, Timer::AcceptRetry);
            }
        }
    }

    fn resume_accepting(&mut self) {
        self.accepting = Accepting::Open;
        self.accept(false);
        self.accept(true);
    }

    fn accept_admin(&mut self) {
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
            Timer::UpgradeDeadline(pid) => {
                if self.upgrades.stop(self.poll.registry(), Some(pid)) {
                    error!(
                        "upgrade failed, carrying on: pid {pid} did not serve within \
                         {UPGRADE_TIMEOUT:?}; stopped it"
                    );
                }
                return;
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
            Some(Conn::AwaitingProxy(a)) if a.serial == serial => {
                accept_proxy::timed_out(&mut self.conns, &mut self.core, key);
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
