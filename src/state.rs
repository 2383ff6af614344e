//! What every connection handler shares: the slab's entry type, the timer kinds, and
//! `Core`, the loop's state apart from the slab itself. The loop that drives them is in
//! `event_loop.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::{Interest, Registry, Token};

use crate::accept_proxy::AwaitingProxy;
use crate::access_log::{AccessLog, Answered, Entry};
use crate::admin::AdminConn;
use crate::backend::{Backend, BackendId};
use crate::buffer::BufferPool;
use crate::config::model::{Admin, Pool as PoolSettings, Process, Site, Source};
use crate::config::{BackendSpec, OwnAddrs};
use crate::conn::{Socket, Woken};
use crate::fanout;
use crate::front::{Front, FrontId, Routes};
use crate::h2_upstream::H2Upstream;
use crate::held_sends::HeldSends;
use crate::http::client::ClientConn;
use crate::http::exchange::ExchangePool;
use crate::http::head::MAX_REQUEST_LINE;
use crate::http::upstream::UpstreamConn;
use crate::http2::H2Conn;
use crate::limits::Throttle;
use crate::metrics::Metrics;
use crate::metrics::history::History;
use crate::pool::{self, Pool};
use crate::probe::{HealthMonitor, Probe};
use crate::resolver::Resolver;
use crate::roster::{Roster, Snapshot};
use crate::shared::Shared;
use crate::tcp::TcpPipe;
use crate::timer::{TimerId, TimerWheel};
use crate::tls::TlsContexts;

/// A token names a slab entry and which of its sockets (0 or 1) is ready: an L4 pipe
/// owns two sockets in one entry, so no session needs to be shared between entries.
pub fn token(key: usize, side: usize) -> Token {
    Token(key << 1 | side)
}
/// Buffers hold a whole request head (8 KiB line + 16 KiB fields) with room to spare.
pub const BUFFER_SIZE: usize = 32 * 1024;
/// Free buffers kept for reuse: enough for a thousand HTTP/2 streams in flight, so that
/// a busy loop reuses rather than allocates and zeroes them; what a housekeeping period
/// leaves unused is freed (`FreeList`), so an idle lb keeps none of it.
const FREE_BUFFERS: usize = 2048;
pub(crate) const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Warnings about lb's own exhaustion are logged at most this often.
const EXHAUSTION_LOG_EVERY: Duration = Duration::from_secs(5);
const TIMER_TICK: Duration = Duration::from_millis(10);
const TIMER_SLOTS: usize = 512;
/// Bytes one connection may move in one turn of the loop before the others get theirs:
/// a fast upload must not keep thousands of other clients waiting.
pub const STEP_BUDGET: u64 = 256 * 1024;

/// Every socket the loop owns, by slab key. Entries live inline in the slab, so the
/// client (the largest) sets the slot size; boxing would cost an allocation per connection.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Client(ClientConn),
    Upstream(UpstreamConn),
    Probe(Probe),
    Admin(AdminConn),
    /// TCP mode, or an HTTP exchange upgraded to a tunnel: a client and its backend,
    /// both sockets in this one entry. Boxed: one allocation per session keeps every
    /// HTTP slot small.
    Pipe(Box<TcpPipe>),
    /// `--accept-proxy`: a new connection whose PROXY header is still to come.
    AwaitingProxy(AwaitingProxy),
    /// An HTTP/2 client; each of its streams is a `Client` of its own. Boxed: its codec
    /// is large, and the HTTP/1 slots stay small.
    H2(Box<H2Conn>),
    /// An HTTP/2 connection to a backend; each exchange it carries has an `Upstream` whose
    /// socket is its stream.
    H2Upstream(Box<H2Upstream>),
}

/// What a timer is for once it fires.
#[derive(Debug, Clone, Copy)]
pub enum Timer {
    /// A connection's own timeout; `serial` tells a reused slab key from the entry that set it.
    Conn { key: usize, serial: u32 },
    /// Time for the next health check of a backend, if the slot still holds the same one.
    Check { id: BackendId, generation: u32 },
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
    /// The process started by SIGUSR2 (by pid) has had UPGRADE_TIMEOUT to serve.
    UpgradeDeadline(u32),
    /// Time to try accept() again after it failed.
    AcceptRetry,
    /// Admin requests waiting for every worker's counters answer with what there is.
    Gathered,
    /// The journal has records to let go of by itself (`Store::due`).
    StoreDue,
}

/// Everything the connection handlers share, apart from the slab itself.
pub struct Core {
    /// The settings of the whole process.
    pub cfg: Process,
    /// The flags, or the config file that SIGHUP reads again.
    pub source: Source,
    pub admin_settings: Admin,
    /// Every pool, by `PoolId`; each backend serves in one.
    pub pools: Vec<Pool>,
    /// What comes through each listener, by its place among the site's listeners.
    pub fronts: Vec<Front>,
    /// The routes each HTTP listener applies.
    pub routes: Arc<Routes>,
    /// Room for a request's target and its normal form, while it is routed.
    pub route_scratch: Box<[u8]>,
    /// This loop's backends, by slot; in line with `applied` (see `reconfigure`).
    pub backends: Vec<Backend>,
    /// The backend list as configured now, edited by reloads, the admin API and lookups.
    pub roster: Roster,
    /// The roster snapshot `backends` was last brought in line with.
    pub applied: Arc<Snapshot>,
    /// Name lookups and backends-file reads, on their own thread (worker 0 only).
    pub resolver: Option<Resolver>,
    /// Which worker this loop is; worker 0 is also the control loop (see `shared`).
    pub worker: usize,
    /// What the workers share: process-wide counts and values published whole.
    pub shared: Arc<Shared>,
    /// The `Shared::news` this loop has taken in.
    pub news_seen: u64,
    /// The roster version at which each slot's backend was removed, and when (worker 0
    /// frees the slot once every worker has applied it and has nothing left there, and
    /// gives up what it still owes after --leave-timeout).
    pub left_at: Vec<(u64, Instant)>,
    pub buffers: BufferPool,
    /// Certificates served and how https backends are verified.
    pub tls: TlsContexts,
    pub health: HealthMonitor,
    pub metrics: Metrics,
    /// The last minutes of rates, for the status page.
    pub history: History,
    pub fanout: fanout::Jobs,
    pub exchanges: ExchangePool,
    /// Connections that stopped at their STEP_BUDGET with work left: edge-triggered
    /// readiness will not announce them again, so the loop steps them next turn.
    pub revisit: Vec<usize>,
    /// Sends held while the loop reads a turn's events (see `held_sends`).
    pub sends: HeldSends,
    /// HTTP/2 connections whose streams have news (see `http2`).
    pub h2_woken: Woken,
    pub timers: TimerWheel<Timer>,
    pub registry: Registry,
    /// The time the loop last woke; handlers read this instead of the clock.
    pub now: Instant,
    /// Client connections open in this worker (the process's are in `shared`).
    pub clients_open: usize,
    /// Client connections this worker has accepted.
    pub clients_total: u64,
    /// Admin connections open, oldest first.
    pub admin_open: crate::admin::Open,
    /// Admin connections (slab keys) waiting for every worker's counters.
    pub gathering: Vec<usize>,
    /// A stop signal came: no new clients, no new keep-alive requests (see `drain`).
    pub draining: bool,
    /// The drain follows an upgrade: idle keep-alive clients get one more request.
    pub handing_over: bool,
    /// The Host header for HTTP/1.0 requests that carry none.
    pub default_host: String,
    /// The addresses lb listens on, as bound (`-l` may have asked for port 0): no backend
    /// may be one of them.
    pub own: OwnAddrs,
    /// `--access-log`, written at the end of each turn.
    pub access: AccessLog,
    /// When lb itself is out of descriptors, memory or ports, it says so this often.
    exhaustion_log: Throttle,
    /// Clients cut off for sending a body (or taking a held answer) too slowly: as often.
    slow_log: Throttle,
    serial: u32,
}

impl Core {
    /// The state at start: every backend up, its first health check spread over one
    /// interval; `waker` is how the resolver thread wakes worker 0's loop.
    pub fn new(
        (site, specs): (Site, &[BackendSpec]),
        tls: TlsContexts,
        registry: Registry,
        (worker, shared, waker): (usize, Arc<Shared>, Arc<mio::Waker>),
        default_host: String,
        own: OwnAddrs,
    ) -> Result<Self, String> {
        let names: Vec<&str> = site.pools.iter().map(|p| p.name.as_str()).collect();
        let fronts = site
            .listeners
            .iter()
            .map(|l| Front::of(l, &names))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = Arc::new(Routes::compile(&site, &fronts, &names)?);
        let mut pools = site
            .pools
            .iter()
            .map(|p| Pool::new(p.clone(), site.protocol_of(&p.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let Site {
            admin,
            process: cfg,
            source,
            ..
        } = site;
        let mut backends = Vec::with_capacity(specs.len());
        for (rank, s) in specs.iter().enumerate() {
            let pool = pool::by_name(&pools, &s.pool)
                .ok_or_else(|| format!("backend {} is in no pool called {}", s.label, s.pool))?;
            let mut b = Backend::new(pool, s.addr, s.label.clone(), s.weight);
            b.rank = rank;
            backends.push(b);
        }
        for (id, p) in pools.iter_mut().enumerate() {
            p.rebuild(id, &backends)?;
        }
        let health = HealthMonitor::new(&pools, &backends);
        let now = Instant::now();
        let mut timers = TimerWheel::new(TIMER_TICK, TIMER_SLOTS, now);
        // One health checker for the process: worker 0's.
        if worker == 0 {
            for id in (0..backends.len()).filter(|&id| health.enabled(id)) {
                let at = now + health.first_delay(id, backends.len());
                timers.insert(at, Timer::Check { id, generation: 0 });
            }
        }
        timers.insert(now + HOUSEKEEPING, Timer::Housekeeping);
        let roster = Roster::new(specs);
        let resolver = match worker {
            0 => Some(
                Resolver::spawn(
                    cfg.resolve_interval,
                    cfg.hosts_file.clone(),
                    roster.names(),
                    waker,
                )
                .map_err(|e| format!("cannot start the resolver thread: {e}"))?,
            ),
            _ => None,
        };
        let access = AccessLog::open(&cfg.access_log, cfg.log_format)?;
        Ok(Core {
            metrics: Metrics::new(backends.len(), now, longest_wait(&pools)),
            history: History::new(&pools, &backends),
            fanout: fanout::Jobs::new(backends.len()),
            exchanges: ExchangePool::default(),
            revisit: Vec::new(),
            sends: HeldSends::default(),
            h2_woken: Woken::default(),
            health,
            backends,
            applied: roster.snapshot(),
            roster,
            resolver,
            worker,
            shared,
            news_seen: 0,
            left_at: Vec::new(),
            pools,
            fronts,
            source,
            routes,
            route_scratch: vec![0; 2 * (MAX_REQUEST_LINE + 2)].into_boxed_slice(),
            admin_settings: admin,
            buffers: BufferPool::new(BUFFER_SIZE, FREE_BUFFERS),
            tls,
            timers,
            registry,
            now,
            gathering: Vec::new(),
            clients_open: 0,
            clients_total: 0,
            admin_open: crate::admin::Open::new(),
            draining: false,
            handing_over: false,
            default_host,
            own,
            access,
            exhaustion_log: Throttle::new(EXHAUSTION_LOG_EVERY),
            slow_log: Throttle::new(EXHAUSTION_LOG_EVERY),
            serial: 0,
            cfg,
        })
    }

    /// Registers socket `side` of slab entry `key` for both readiness kinds, edge-triggered.
    pub fn register(
        &self,
        sock: &mut impl mio::event::Source,
        key: usize,
        side: usize,
    ) -> io::Result<()> {
        self.registry.register(
            sock,
            token(key, side),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Socket 0 of slab entry `key` moved there from another entry.
    pub fn reregister(&self, sock: &mut impl mio::event::Source, key: usize) -> io::Result<()> {
        self.registry
            .reregister(sock, token(key, 0), Interest::READABLE | Interest::WRITABLE)
    }

    /// The socket of a newly accepted client: TLS if it came to a TLS listener.
    pub fn client_socket(&self, sock: mio::net::TcpStream, front: FrontId) -> Option<Socket> {
        if !self.fronts[front].tls {
            return Some(Socket::new(sock));
        }
        self.tls
            .server_session(front)
            .map(|session| Socket::with_tls(sock, session))
    }

    /// A client connection was accepted (the process-wide count was taken at accept).
    pub fn client_opened(&mut self) {
        self.clients_open += 1;
        self.clients_total += 1;
    }

    /// A client connection closed.
    pub fn client_closed(&mut self) {
        self.clients_open -= 1;
        self.shared.close_client();
    }

    /// The settings of backend `id`'s pool.
    pub fn settings(&self, id: BackendId) -> &PoolSettings {
        &self.pools[self.backends[id].pool].settings
    }

    pub fn next_serial(&mut self) -> u32 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// Replaces whatever timer `slot` held with one firing `after` from now.
    pub fn arm(&mut self, slot: &mut Option<TimerId>, after: Duration, key: usize, serial: u32) {
        self.disarm(slot);
        *slot = Some(
            self.timers
                .insert(self.now + after, Timer::Conn { key, serial }),
        );
    }

    /// Sets a connection's one timer to `next`, the soonest of its deadlines, unless it
    /// is set for that already (`set_at` remembers for when).
    pub fn arm_at(
        &mut self,
        (slot, set_at): (&mut Option<TimerId>, &mut Option<Instant>),
        next: Option<Instant>,
        key: usize,
        serial: u32,
    ) {
        if next == *set_at {
            return;
        }
        *set_at = next;
        match next {
            Some(at) => {
                let after = at.saturating_duration_since(self.now);
                self.arm(slot, after, key, serial);
            }
            None => self.disarm(slot),
        }
    }

    pub fn disarm(&mut self, slot: &mut Option<TimerId>) {
        if let Some(id) = slot.take() {
            self.timers.cancel(id);
        }
    }

    /// lb could not open a socket (`limits::is_local_exhaustion`): not a backend's fault,
    /// so only logged, and not thousands of times a second.
    pub fn exhausted(&mut self, doing: &str, e: &io::Error) {
        if let Some(held_back) = self.exhaustion_log.allow(self.now) {
            warn!(
                "lb is out of resources: {doing}: {e} ({held_back} more since the last report; \
                 see --max-connections and ulimit -n)"
            );
        }
    }

    /// The bytes a client must move in each --client-timeout window while it sends a
    /// request body, or takes an answer lb holds for it: --client-min-rate per second.
    pub fn window_quota(&self) -> u64 {
        let millis = self.cfg.client_timeout.as_millis();
        let quota = u128::from(self.cfg.client_min_rate).saturating_mul(millis) / 1000;
        u64::try_from(quota).unwrap_or(u64::MAX).max(1)
    }

    /// Client `client` moved less than its window's quota while `doing` (sending its
    /// body, taking its answer): counted, and logged at most every few seconds.
    pub fn too_slow(&mut self, client: SocketAddr, doing: &str) {
        self.metrics.slow_clients += 1;
        if let Some(held_back) = self.slow_log.allow(self.now) {
            info!(
                "client {client} was cut off {doing}: less than --client-min-rate ({} bytes/s) \
                 over --client-timeout ({} ms); {held_back} more since the last report",
                self.cfg.client_min_rate,
                self.cfg.client_timeout.as_millis()
            );
        }
    }

    /// A client's request got its final answer (or its client left first): counted once
    /// and logged once, whoever answered it.
    pub fn answered(
        &mut self,
        client: SocketAddr,
        took: Duration,
        backend: Option<BackendId>,
        a: Answered,
    ) {
        if let Some(status) = a.status {
            self.metrics.client_answer(status);
        }
        if self.access.enabled() {
            let routed = (self.source != Source::Flags).then(|| {
                let route = a.route.and_then(|r| self.routes.names.get(r));
                // The backend's pool, or, for an answer of lb's own, the route's.
                let pool = match backend {
                    Some(id) => Some(self.backends[id].pool),
                    None => a
                        .route
                        .and_then(|r| self.routes.pools.get(r).copied().flatten()),
                };
                let pool = pool.map(|p| self.pools[p].name());
                (route.map(String::as_str), pool)
            });
            let entry = Entry::Http {
                request: a.request,
                backend: backend.map(|id| self.backends[id].label.as_str()),
                status: a.status,
                bytes: a.bytes,
                id: a.id,
                routed,
            };
            self.access.write(client, took, &entry);
        }
    }
}

/// The longest a request may wait for its answer head: the top latency bucket.
fn longest_wait(pools: &[Pool]) -> Duration {
    pools
        .iter()
        .map(|p| p.settings.server_timeout.max(p.settings.connect_timeout))
        .max()
        .unwrap_or_default()
}
