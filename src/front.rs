//! What comes through each listener: HTTP requests for its routes, or TCP connections for
//! one pool; over TLS or not; with a PROXY header first or not. The loop keeps the
//! sockets; a client remembers which front it came through.

use crate::config::check;
use crate::config::model::{Action, Listener, Problem, Protocol, Site};
use std::collections::HashMap;
use std::net::SocketAddr;

use crate::pool::PoolId;
use crate::proxy_protocol::Cidr;
use crate::route::RouteTable;

/// A listener's place among the site's listeners.
pub type FrontId = usize;

#[derive(Debug, Clone)]
pub struct Front {
    pub name: String,
    pub address: SocketAddr,
    /// Its listener vanished from the config: it takes no new clients.
    pub closed: bool,
    pub protocol: Protocol,
    /// TCP: the pool every connection goes to.
    pub pool: Option<PoolId>,
    /// Clients speak TLS first (with the certificates of this listener).
    pub tls: bool,
    /// Every client starts with a PROXY header; if the list is not empty, only from these.
    pub accept_proxy: Option<Vec<Cidr>>,
    /// Plain HTTP clients may start with the HTTP/2 preface.
    pub h2c: bool,
}

impl Front {
    /// Listener `l`, with `pools` the names of the pools by id.
    pub fn of(l: &Listener, pools: &[&str]) -> Result<Self, String> {
        let pool = match &l.pool {
            Some(name) => Some(
                pools
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| format!("listener {} names no pool {name}", l.name))?,
            ),
            None => None,
        };
        Ok(Front {
            name: l.name.clone(),
            address: l.address,
            closed: false,
            protocol: l.protocol,
            pool,
            tls: !l.tls.is_empty(),
            accept_proxy: l.accept_proxy.clone(),
            h2c: l.h2c,
        })
    }
}

/// The site's routes as the listeners apply them: one table per HTTP listener, and the
/// pool of each route that proxies. Swapped whole at a reload; an exchange that still
/// needs its route (for the rules on its answer) keeps the one it started with.
pub struct Routes {
    /// By `FrontId`; `None` for a TCP listener.
    pub tables: Vec<Option<RouteTable>>,
    /// By route index: the pool a proxying route sends to.
    pub pools: Vec<Option<PoolId>>,
    /// By route index: its name, and what it matches and does, in words.
    pub names: Vec<String>,
    pub described: Vec<(String, String)>,
}

impl Routes {
    /// The table of listener `front`; `None` for a TCP listener.
    pub fn table(&self, front: FrontId) -> Option<&RouteTable> {
        self.tables.get(front).and_then(Option::as_ref)
    }

    pub fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// The tables of `site`'s listeners, by the ids of `fronts` (a closed one has none),
    /// with pools by the ids of `pools` (their names).
    pub fn compile(site: &Site, fronts: &[Front], pools: &[&str]) -> Result<Self, String> {
        CompiledRoutes::of(site)?.place(fronts, pools)
    }
}

/// A site's routes compiled, before they have ids: a table per HTTP listener, by its name,
/// and each route's pool by name. Compiling thousands of routes takes milliseconds, so a
/// reload does it on the resolver thread; the loop only `place`s the result.
pub struct CompiledRoutes {
    tables: Vec<(String, RouteTable)>,
    pools: Vec<Option<String>>,
    names: Vec<String>,
    described: Vec<(String, String)>,
}

impl CompiledRoutes {
    pub fn of(site: &Site) -> Result<Self, String> {
        let problems = |p: Vec<Problem>| {
            let lines: Vec<String> = p
                .iter()
                .map(|p| format!("{}: {}", p.at, p.message))
                .collect();
            lines.join("; ")
        };
        let tables = site
            .listeners
            .iter()
            .filter(|l| l.protocol == Protocol::Http)
            .map(|l| {
                RouteTable::compile(&site.routes, l.routes.as_deref())
                    .map(|t| (l.name.clone(), t))
                    .map_err(problems)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pools = site
            .routes
            .iter()
            .map(|r| match &r.action {
                Action::Proxy { pool, .. } => Some(pool.clone()),
                _ => None,
            })
            .collect();
        Ok(CompiledRoutes {
            tables,
            pools,
            names: site.routes.iter().map(|r| r.name.clone()).collect(),
            described: site
                .routes
                .iter()
                .map(|r| (check::matcher(r), check::action(&r.action)))
                .collect(),
        })
    }

    /// The tables by the ids of `fronts` (a closed one has none), each route's pool by
    /// the ids of `pools` (their names): linear in the routes.
    pub fn place(self, fronts: &[Front], pools: &[&str]) -> Result<Routes, String> {
        let mut by_name: HashMap<String, RouteTable> = self.tables.into_iter().collect();
        let tables = fronts
            .iter()
            .map(|f| {
                if f.closed {
                    None
                } else {
                    by_name.remove(&f.name)
                }
            })
            .collect();
        let mut ids: HashMap<&str, PoolId> = HashMap::with_capacity(pools.len());
        for (id, name) in pools.iter().enumerate() {
            ids.entry(name).or_insert(id);
        }
        let pools = (self.pools.iter().zip(&self.names))
            .map(|(pool, route)| match pool {
                None => Ok(None),
                Some(pool) => (ids.get(pool.as_str()).copied().map(Some))
                    .ok_or_else(|| format!("route {route} names no pool {pool}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Routes {
            tables,
            pools,
            names: self.names,
            described: self.described,
        })
    }
}
