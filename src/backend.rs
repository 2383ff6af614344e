//! A backend server: where it is, how much it weighs, whether it is up, and what it is doing now.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;

use crate::config::MAX_RETRIES;
use crate::pool::PoolId;

/// Index of a backend's slot. A slot keeps its backend while anything in flight refers to
/// it, removed or not, so an id never changes meaning under a request or a POST copy;
/// a slot is reused only once it is empty (see `roster`).
pub type BackendId = usize;

/// Where a backend stands with the operator, apart from its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// In rotation.
    Ready,
    /// No new requests; those in flight finish; health checks go on.
    Drain,
    /// Out entirely: no new requests and no health checks.
    Maint,
    /// Removed from the list: what it still has in flight (requests, owed POST copies) finishes.
    Leaving,
    /// An empty slot, free for the next backend added.
    Vacant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Ready => "ready",
            Role::Drain => "drain",
            Role::Maint => "maint",
            Role::Leaving => "removed",
            Role::Vacant => "vacant",
        }
    }

    /// One of the backends the operator listed (not removed, not an empty slot).
    pub fn is_member(self) -> bool {
        matches!(self, Role::Ready | Role::Drain | Role::Maint)
    }
}

#[derive(Debug)]
pub struct Backend {
    /// The pool it serves in.
    pub pool: PoolId,
    pub addr: SocketAddr,
    /// The address as the operator wrote it, for logs and the status page.
    pub label: String,
    pub weight: u32,
    /// `https://`: the name its certificate must show, also sent as SNI.
    pub tls: Option<ServerName<'static>>,
    /// False while the health checks hold it down.
    pub up: bool,
    /// False while lb cannot reach it: a POST copy, a request or a health check could not
    /// connect or got no answer in time, and no copy or check has had an answer from it
    /// since (any status: DOWN for failing requests is not gone). Its POST copies wait
    /// meanwhile (`fanout::gate`). Tracked only with health checks on, which are what
    /// notice it answering again.
    pub reachable: bool,
    pub role: Role,
    /// Removed, and the POST copies it still owes are given up, not sent (`fanout::abandon`).
    pub owed_given_up: bool,
    /// Its place in the configured list, for strategies that follow the list's order.
    pub rank: usize,
    /// Counts the backends this slot has held, so that a health check timer or probe
    /// started for an earlier one is recognised and dropped.
    pub generation: u32,
    /// Counts the addresses this backend has had (a name that moves), so that a connection
    /// made to an earlier one is not pooled.
    pub moves: u32,
    /// Open connections (TCP mode) or requests in flight (HTTP mode) right now.
    pub active: u32,
    /// Moving average of response time in microseconds; `None` until the first sample.
    pub ewma_us: Option<f64>,
    /// Idle keep-alive connections to this backend, by slab token, most recent last.
    pub idle: Vec<usize>,
    /// Its HTTP/2 connections (`protocol = "h2"`), by slab key.
    pub h2: Vec<usize>,
    /// The fewest idle connections it had since the last `trim_idle`: what no request
    /// needed in that time.
    pub idle_low: usize,
    /// The most connections busy at once since the last `trim_idle`: how many idle ones
    /// a load like that one needs kept.
    pub busy_peak: usize,
}

/// How much one new sample moves the response-time average.
const EWMA_ALPHA: f64 = 0.3;

impl Backend {
    pub fn new(pool: PoolId, addr: SocketAddr, label: String, weight: u32) -> Self {
        let tls = crate::config::tls_name(&label);
        Backend {
            pool,
            addr,
            label,
            weight,
            tls,
            // Nowhere yet: it takes nothing until its name resolves.
            up: addr != crate::config::UNRESOLVED,
            reachable: true,
            role: Role::Ready,
            owed_given_up: false,
            rank: 0,
            generation: 0,
            active: 0,
            ewma_us: None,
            idle: Vec::new(),
            h2: Vec::new(),
            idle_low: 0,
            moves: 0,
            busy_peak: 0,
        }
    }

    /// The strategies may pick it: healthy and in rotation.
    pub fn selectable(&self) -> bool {
        self.up && self.role == Role::Ready
    }

    /// POST copies owed to it may be sent now: lb can reach it, and it is in rotation or
    /// removed (a removed backend still gets what it was promised; a drained one waits to
    /// be ready). Health is not asked: a backend held DOWN for answering GETs with 5xx
    /// still takes writes, and each copy's own answer decides whether it is retried.
    pub fn takes_copies(&self) -> bool {
        self.reachable && matches!(self.role, Role::Ready | Role::Leaving)
    }

    /// Idle keep-alive connections are kept for it only while it is in rotation.
    pub fn pools(&self) -> bool {
        self.role == Role::Ready
    }

    /// Active health checks run for everything that may still get traffic or copies.
    pub fn checked(&self) -> bool {
        !matches!(self.role, Role::Maint | Role::Vacant)
    }

    /// A request (HTTP) or a connection (TCP) is now in flight here.
    pub fn request_started(&mut self) {
        self.active += 1;
    }

    pub fn request_done(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    pub fn record_response_time(&mut self, micros: u64) {
        let sample = micros as f64;
        self.ewma_us = Some(match self.ewma_us {
            None => sample,
            Some(avg) => avg + EWMA_ALPHA * (sample - avg),
        });
    }
}

/// The backends one request (or TCP connection) has been sent to, so that a retry goes elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried {
    ids: [BackendId; MAX_RETRIES as usize + 1],
    len: usize,
}

impl Tried {
    pub fn add(&mut self, id: BackendId) {
        if self.len < self.ids.len() {
            self.ids[self.len] = id;
            self.len += 1;
        }
    }

    pub fn contains(&self, id: BackendId) -> bool {
        self.ids[..self.len].contains(&id)
    }

    pub fn count(&self) -> usize {
        self.len
    }
}
