//! What comes through each listener: HTTP requests for its routes, or TCP connections for
//! one pool; over TLS or not; with a PROXY header first or not. The loop keeps the
//! sockets; a client remembers which front it came through.

use crate::config::check;
use crate::config::model::{Action, Listener, Problem, Protocol, Site};
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
        let problems = |p: Vec<Problem>| {
            let lines: Vec<String> = p
                .iter()
                .map(|p| format!("{}: {}", p.at, p.message))
                .collect();
            lines.join("; ")
        };
        let tables = fronts
            .iter()
            .map(|f| {
                let listener = site.listeners.iter().find(|l| l.name == f.name);
                match listener.filter(|l| !f.closed && l.protocol == Protocol::Http) {
                    None => Ok(None),
                    Some(l) => RouteTable::compile(&site.routes, l.routes.as_deref())
                        .map(Some)
                        .map_err(problems),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pools = site
            .routes
            .iter()
            .map(|r| match &r.action {
                Action::Proxy { pool, .. } => pools
                    .iter()
                    .position(|p| p == pool)
                    .map(Some)
                    .ok_or_else(|| format!("route {} names no pool {pool}", r.name)),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names = site.routes.iter().map(|r| r.name.clone()).collect();
        let described = site
            .routes
            .iter()
            .map(|r| (check::matcher(r), check::action(&r.action)))
            .collect();
        Ok(Routes {
            tables,
            pools,
            names,
            described,
        })
    }
}
