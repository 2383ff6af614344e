//! Every backend's health in one loop: the rise/fall state of each, the last check of each
//! for the status page, and the request an active check sends (see `probe` for the checks).

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::{HealthState, Transition};
use crate::backend::{Backend, BackendId};
use crate::config::StatusSet;
use crate::config::model::{CheckKind, Protocol};
use crate::pool::Pool;

/// How one backend is checked: its pool's settings, taken when it joins.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Zero: no active checks.
    pub interval: Duration,
    pub timeout: Duration,
    rise: u32,
    fall: u32,
    /// What a check sends: an HTTP request, or nothing (a TCP connect is the check, or
    /// `grpc` says what the check asks).
    request: Vec<u8>,
    /// The service a gRPC health check asks about ("": the whole server); `None`: the
    /// check is not a gRPC one.
    pub grpc: Option<String>,
    /// Statuses that pass.
    pub expect: StatusSet,
}

impl Checks {
    fn of(pool: &Pool, label: &str) -> Self {
        let h = &pool.settings.health;
        let host = label.strip_prefix("https://").unwrap_or(label);
        let grpc = match (&h.kind, pool.protocol) {
            (CheckKind::Grpc { service }, Protocol::Http) => Some(service.clone()),
            _ => None,
        };
        let request = match pool.protocol {
            Protocol::Http if grpc.is_some() => Vec::new(),
            Protocol::Http => format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lb-health-check\r\nConnection: close\r\n\r\n",
                h.path
            )
            .into_bytes(),
            Protocol::Tcp => Vec::new(),
        };
        Checks {
            interval: h.interval,
            timeout: h.timeout,
            rise: h.rise,
            fall: h.fall,
            request,
            grpc,
            expect: h.expect,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    /// What a check sends.
    pub fn request(&self) -> &[u8] {
        &self.request
    }
}

/// Health of every backend, and what a check sends.
pub struct HealthMonitor {
    states: Vec<HealthState>,
    /// How each backend is checked, set when it joins.
    pub checks: Vec<Checks>,
    /// Last check results, for the status page and metrics.
    pub last_check: Vec<Option<LastCheck>>,
    pub checks_passed: Vec<u64>,
    pub checks_failed: Vec<u64>,
    /// When each backend last went up or down (or lb started).
    pub since: Vec<Instant>,
}

/// What lb can tell of a backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Up,
    Down,
    /// No check has ended since it joined: it takes traffic, and nothing has said whether
    /// it should.
    Unknown,
    /// `--health-interval 0`: nothing checks it.
    Unchecked,
}

impl Known {
    pub fn name(self) -> &'static str {
        match self {
            Known::Up => "up",
            Known::Down => "down",
            Known::Unknown => "unknown",
            Known::Unchecked => "unchecked",
        }
    }
}

/// How the latest active check of a backend went.
#[derive(Debug, Clone)]
pub struct LastCheck {
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub error: String,
    pub took: Duration,
    pub at: Instant,
}

impl HealthMonitor {
    pub fn new(pools: &[Pool], backends: &[Backend]) -> Self {
        let mut health = HealthMonitor {
            states: Vec::new(),
            checks: Vec::new(),
            last_check: Vec::new(),
            checks_passed: Vec::new(),
            checks_failed: Vec::new(),
            since: Vec::new(),
        };
        for (id, b) in backends.iter().enumerate() {
            health.place(id, &b.label, &pools[b.pool]);
        }
        health
    }

    /// A backend joined slot `id` in `pool`: it starts up, with no history.
    pub fn place(&mut self, id: BackendId, label: &str, pool: &Pool) {
        let now = Instant::now();
        let checks = Checks::of(pool, label);
        if id >= self.states.len() {
            let n = id + 1;
            self.states.resize_with(n, HealthState::new);
            self.checks.resize(n, checks.clone());
            self.last_check.resize(n, None);
            self.checks_passed.resize(n, 0);
            self.checks_failed.resize(n, 0);
            self.since.resize(n, now);
        }
        self.states[id] = HealthState::new();
        self.checks[id] = checks;
        self.last_check[id] = None;
        self.checks_passed[id] = 0;
        self.checks_failed[id] = 0;
        self.since[id] = now;
    }

    /// Backend `id`'s pool changed its health settings: they apply from its next check,
    /// with its state kept.
    pub fn retune(&mut self, id: BackendId, label: &str, pool: &Pool) {
        if let Some(c) = self.checks.get_mut(id) {
            *c = Checks::of(pool, label);
        }
    }

    /// Backend `id` is checked actively.
    pub fn enabled(&self, id: BackendId) -> bool {
        self.checks.get(id).is_some_and(Checks::enabled)
    }

    /// First checks are spread over one interval so that they do not all fire at once.
    pub fn first_delay(&self, id: BackendId, count: usize) -> Duration {
        self.checks[id]
            .interval
            .mul_f64(id as f64 / count.max(1) as f64)
    }

    /// An active check result, `started` at and done now; logs a transition once, with its
    /// reason, and returns it.
    pub fn checked(
        &mut self,
        backends: &mut [Backend],
        id: BackendId,
        (passed, why): (bool, &str),
        (started, now): (Instant, Instant),
    ) -> Option<Transition> {
        self.last_check[id] = Some(LastCheck {
            passed,
            error: why.to_string(),
            took: now.saturating_duration_since(started),
            at: now,
        });
        if passed {
            self.checks_passed[id] += 1;
            debug!(
                "health check of {} passed in {:?}",
                backends[id].label,
                now.saturating_duration_since(started)
            );
        } else {
            self.checks_failed[id] += 1;
            debug!("health check of {} failed: {why}", backends[id].label);
        }
        let Checks { rise, fall, .. } = self.checks[id];
        let transition = self.states[id].record(passed, rise, fall);
        match transition {
            Some(Transition::WentDown) => warn!(
                "backend {} DOWN after {fall} failed checks: {why}",
                backends[id].label
            ),
            Some(Transition::CameUp) => info!(
                "backend {} UP after {rise} passed checks",
                backends[id].label
            ),
            None => {}
        }
        if transition.is_some() {
            self.since[id] = now;
        }
        backends[id].up = self.states[id].is_up();
        transition
    }

    /// A result from real traffic; true when it took the backend down. Only failures move
    /// a backend (down, at `--fall` in a row); bringing it back is left to the active
    /// checks, so passive tracking is off when they are.
    pub fn observed(&mut self, backends: &mut [Backend], id: BackendId, passed: bool) -> bool {
        if !self.enabled(id) || !self.states[id].is_up() {
            return false;
        }
        let Checks { rise, fall, .. } = self.checks[id];
        let went_down = matches!(
            self.states[id].record(passed, rise, fall),
            Some(Transition::WentDown)
        );
        if went_down {
            backends[id].up = false;
            // Read from the clock rather than passed in: this is rare, and its callers are many.
            self.since[id] = Instant::now();
        }
        went_down
    }

    /// Another worker's traffic or the health checker moved backend `id`: this loop
    /// follows, and counts afresh from there (a backend taken down must pass `--rise`
    /// checks to come back).
    pub fn follow(&mut self, backends: &mut [Backend], id: BackendId, up: bool, now: Instant) {
        self.states[id] = HealthState::starting(up);
        backends[id].up = up;
        self.since[id] = now;
    }

    /// What can be said of backend `id`, `up` or held down: down says so at once, up only
    /// once a check has ended since it joined.
    pub fn known(&self, id: BackendId, up: bool) -> Known {
        if !up {
            Known::Down
        } else if !self.enabled(id) {
            Known::Unchecked
        } else if self.last_check.get(id).is_none_or(Option::is_none) {
            Known::Unknown
        } else {
            Known::Up
        }
    }

    pub fn is_up(&self, id: BackendId) -> bool {
        self.states[id].is_up()
    }
}
