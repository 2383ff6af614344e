//! A pool: the backends that a route or a TCP listener sends to, and how: its strategy,
//! health checks, timeouts and fan-out. The backends of every pool share the loop's one
//! list (a `BackendId` is a slot of it, whatever its pool); a pool knows its members.

use crate::backend::{Backend, BackendId};
use crate::config::model::{self, Protocol};
use crate::strategy::{self, Members, Strategy};

/// A pool's place in `Core::pools`, kept for the pool's life.
pub type PoolId = usize;

pub struct Pool {
    pub settings: model::Pool,
    /// What it carries: HTTP requests (routes) or TCP connections (a TCP listener).
    pub protocol: Protocol,
    /// Its listed backends (ready, drained or in maintenance), in list order.
    pub members: Vec<BackendId>,
    pub strategy: Box<dyn Strategy>,
    /// Gone from the config file at a reload: it keeps its id while its backends leave.
    pub retired: bool,
}

impl Pool {
    /// A pool with no members yet (`rebuild` gives it its backends). The strategy's name
    /// was checked with the config.
    pub fn new(settings: model::Pool, protocol: Protocol) -> Result<Self, String> {
        let strategy = strategy::by_name(&settings.strategy, Members::all(&[]))?;
        Ok(Pool {
            settings,
            protocol,
            members: Vec::new(),
            strategy,
            retired: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn members<'a>(&'a self, backends: &'a [Backend]) -> Members<'a> {
        Members::of(backends, &self.members)
    }

    /// Its backends changed: the members are found again in `backends`, and the strategy,
    /// which keeps state per member, starts afresh.
    pub fn rebuild(&mut self, id: PoolId, backends: &[Backend]) -> Result<(), String> {
        let mut members: Vec<BackendId> = (0..backends.len())
            .filter(|&b| backends[b].pool == id && backends[b].role.is_member())
            .collect();
        members.sort_by_key(|&b| backends[b].rank);
        self.members = members;
        self.strategy = strategy::by_name(&self.settings.strategy, self.members(backends))?;
        Ok(())
    }
}

/// The pool called `name`.
pub fn by_name(pools: &[Pool], name: &str) -> Option<PoolId> {
    pools.iter().position(|p| p.name() == name)
}
