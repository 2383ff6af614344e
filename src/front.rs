//! What comes through each listener: HTTP requests for its routes, or TCP connections for
//! one pool; over TLS or not; with a PROXY header first or not. The loop keeps the
//! sockets; a client remembers which front it came through.

use crate::config::model::{Listener, Protocol};
use crate::pool::{self, Pool, PoolId};
use crate::proxy_protocol::Cidr;

/// A listener's place among the site's listeners.
pub type FrontId = usize;

#[derive(Debug, Clone)]
pub struct Front {
    pub name: String,
    pub protocol: Protocol,
    /// TCP: the pool every connection goes to.
    pub pool: Option<PoolId>,
    /// Clients speak TLS first (with the certificates of this listener).
    pub tls: bool,
    /// Every client starts with a PROXY header; if the list is not empty, only from these.
    pub accept_proxy: Option<Vec<Cidr>>,
}

impl Front {
    pub fn of(l: &Listener, pools: &[Pool]) -> Result<Self, String> {
        let pool = match &l.pool {
            Some(name) => Some(
                pool::by_name(pools, name)
                    .ok_or_else(|| format!("listener {} names no pool {name}", l.name))?,
            ),
            None => None,
        };
        Ok(Front {
            name: l.name.clone(),
            protocol: l.protocol,
            pool,
            tls: !l.tls.is_empty(),
            accept_proxy: l.accept_proxy.clone(),
        })
    }
}
