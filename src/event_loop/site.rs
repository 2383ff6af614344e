//! A config file read again (SIGHUP with `-c FILE`): the running lb takes the new site
//! between requests. Worker 0 checks everything first (certificates, new listeners bound,
//! the backend list), so that a site that cannot run changes nothing; then it applies the
//! site and publishes it, and every other worker applies the same at its next turn.
//!
//! Pools and listeners keep their ids for the life of the process: a new one gets the next
//! id, one that vanishes keeps its id, empty. What is in flight (an exchange, a keep-alive
//! client of a listener, a POST's owed copies in a pool) finishes on what it started with:
//! a vanished listener stops accepting and its clients close after their request; a
//! vanished pool's backends leave as removed backends do, once what they owe is delivered.

use std::net::SocketAddr;
use std::sync::Arc;

use log::{error, info, warn};

use super::{EventLoop, listener_token};
use crate::config::OwnAddrs;
use crate::config::model::{Pool as PoolSettings, Process, Protocol, Site};
use crate::front::{CompiledRoutes, Front, Routes};
use crate::listen::{Listener, duplicate};
use crate::pool::Pool;
use crate::reconfigure;
use crate::resolver::FileReloaded;
use crate::roster::Lookup;
use crate::shared::TlsServers;
use crate::tls::ListenerTls;

impl EventLoop {
    /// Worker 0: the config file was read again (or could not be).
    pub(super) fn file_reloaded(&mut self, result: FileReloaded) {
        let read = match result {
            Ok(read) => *read,
            Err(lines) => return self.reload_failed(&lines),
        };
        for w in read.warnings {
            warn!("reload: {w}");
        }
        match self.stage(read.site, read.routes, read.lookups) {
            Ok(update) => {
                let closing: Vec<(String, SocketAddr)> = (update.fronts.iter().enumerate())
                    .filter(|&(id, f)| {
                        f.closed && self.listeners.get(id).is_some_and(Option::is_some)
                    })
                    .map(|(_, f)| (f.name.clone(), f.address))
                    .collect();
                let what = self.apply_site(&update);
                self.announce_listeners(&update, &closing);
                // Before the roster: a worker must know a pool before backends join it.
                if self.core.shared.workers() > 1 {
                    self.core.shared.publish_site(Arc::clone(&update));
                }
                let notes = reconfigure::sync(&mut self.conns, &mut self.core);
                self.core.metrics.reloads += 1;
                let backends = if notes.is_empty() {
                    "no backend changed".to_string()
                } else {
                    notes.join(", ")
                };
                info!("reloaded the config file: {what}; {backends}");
            }
            Err(why) => self.reload_failed(&[why]),
        }
    }

    /// Says where each new listener listens, as at start, and which ones closed.
    fn announce_listeners(&self, update: &SiteUpdate, closed: &[(String, SocketAddr)]) {
        let version = env!("CARGO_PKG_VERSION");
        let pid = std::process::id();
        for (id, sock) in update.sockets.iter().enumerate() {
            let (Some(sock), Some(f)) = (sock, update.fronts.get(id)) else {
                continue;
            };
            let Ok(addr) = sock.local_addr() else {
                continue;
            };
            let tls = if f.tls { "TLS " } else { "" };
            let what = match f.pool.and_then(|p| update.pools.get(p)) {
                Some(p) => format!("(TCP) to pool {}", p.settings.name),
                None => "(HTTP)".to_string(),
            };
            info!(
                "lb {version} {tls}listening on {addr} (pid {pid}) listener {} {what}",
                f.name
            );
        }
        for (name, addr) in closed {
            info!("listener {name} on {addr} is gone from the config: it takes no new clients");
        }
    }

    fn reload_failed(&mut self, lines: &[String]) {
        for line in lines {
            error!("reload: {line}");
        }
        self.core.metrics.reloads_failed += 1;
        error!("reload failed: the running config stays as it was");
    }

    /// Everything the new site needs, made ready without changing what runs: the ids its
    /// pools and listeners get, its certificates, its new listeners bound, its routes
    /// compiled, and the backend list accepted by the roster (the one edit made here).
    fn stage(
        &mut self,
        mut site: Site,
        routes: CompiledRoutes,
        lookups: Vec<Lookup>,
    ) -> Result<Arc<SiteUpdate>, String> {
        site.process = kept_for_restart(&self.core.cfg, site.process);
        if site.admin.listen != self.core.admin_settings.listen {
            warn!("reload: the admin listener moves at a restart only; it stays where it is");
            site.admin.listen = self.core.admin_settings.listen;
        }
        let pools = pool_ids(&self.core.pools, &site);
        let (fronts, sockets) = self.front_ids(&site, &pools)?;
        let pairs: Vec<_> = fronts
            .iter()
            .map(|f| match f.closed {
                true => ListenerTls::default(),
                false => site
                    .listeners
                    .iter()
                    .find(|l| l.name == f.name)
                    .map_or_else(ListenerTls::default, |l| ListenerTls {
                        certs: l.tls.clone(),
                        http: l.protocol == Protocol::Http,
                    }),
            })
            .collect();
        let tls = self.core.tls.servers_for(&pairs)?;
        let names: Vec<&str> = pools.iter().map(|p| p.settings.name.as_str()).collect();
        let routes = routes.place(&fronts, &names)?;
        let bound: Vec<Option<SocketAddr>> = fronts
            .iter()
            .enumerate()
            .map(|(id, f)| match sockets.get(id).and_then(Option::as_ref) {
                Some(s) => s.local_addr().ok(),
                None if f.closed => None,
                None => self.listeners.get(id)?.as_ref()?.local_addr().ok(),
            })
            .collect();
        let admin = self.admin.as_ref().and_then(|a| a.local_addr().ok());
        let own = OwnAddrs::of_site(&site, &bound, admin);
        let kept = self.core.roster.reload(lookups, &own, true)?;
        for note in kept {
            warn!("reload: {note}");
        }
        self.core.own = own;
        Ok(Arc::new(SiteUpdate {
            site,
            pools,
            fronts,
            sockets: sockets.into_iter().map(|s| s.map(Arc::new)).collect(),
            routes: Arc::new(routes),
            tls,
        }))
    }

    /// By listener id: the new site's listeners, each where it was if it listens on the
    /// same address, else new, and the ones that vanished, closed; with a socket bound
    /// for each new one.
    fn front_ids(
        &self,
        site: &Site,
        pools: &[PoolSpec],
    ) -> Result<(Vec<Front>, Vec<Option<std::net::TcpListener>>), String> {
        let mut fronts: Vec<Front> = self.core.fronts.clone();
        let mut sockets: Vec<Option<std::net::TcpListener>> = fronts.iter().map(|_| None).collect();
        for f in fronts.iter_mut() {
            f.closed = true;
        }
        let names: Vec<&str> = pools.iter().map(|p| p.settings.name.as_str()).collect();
        for l in &site.listeners {
            let mut front = Front::of(l, &names)?;
            // The same name on the same address, still listening: it goes on as it is.
            let kept = (0..fronts.len()).find(|&id| {
                fronts[id].name == l.name
                    && fronts[id].address == l.address
                    && self.listeners.get(id).is_some_and(Option::is_some)
            });
            match kept {
                Some(id) => fronts[id] = front,
                None => {
                    let sock = std::net::TcpListener::bind(l.address).map_err(|e| {
                        format!("cannot listen on {} (listener {}): {e}", l.address, l.name)
                    })?;
                    sock.set_nonblocking(true)
                        .map_err(|e| format!("listener {}: {e}", l.name))?;
                    front.closed = false;
                    fronts.push(front);
                    sockets.push(Some(sock));
                }
            }
        }
        Ok((fronts, sockets))
    }

    /// Takes `update` in: pools, listeners, routes, certificates and the process's
    /// settings. Returns what changed, for the log.
    pub(super) fn apply_site(&mut self, update: &SiteUpdate) -> String {
        let core = &mut self.core;
        for (id, spec) in update.pools.iter().enumerate() {
            if let Some(p) = core.pools.get_mut(id) {
                p.settings = spec.settings.clone();
                p.protocol = spec.protocol;
                p.retired = spec.retired;
                if let Err(e) = p.rebuild(id, &core.backends) {
                    error!("pool {}: {e}", spec.settings.name);
                }
                continue;
            }
            match Pool::new(spec.settings.clone(), spec.protocol) {
                Ok(p) => core.pools.push(p),
                Err(e) => error!("pool {}: {e}", spec.settings.name),
            }
        }
        let retuned: Vec<usize> = (0..core.backends.len())
            .filter(|&id| core.backends[id].role != crate::backend::Role::Vacant)
            .collect();
        for id in retuned {
            let pool = &core.pools[core.backends[id].pool];
            let label = core.backends[id].label.clone();
            core.health.retune(id, &label, pool);
        }
        let registry = self.poll.registry();
        let many = core.shared.workers() > 1;
        for (id, front) in update.fronts.iter().enumerate() {
            if id >= self.listeners.len() {
                self.listeners.push(None);
            }
            if front.closed {
                if let Some(l) = self.listeners[id].take() {
                    l.deregister(registry);
                }
                continue;
            }
            let Some(sock) = update.sockets.get(id).and_then(Option::as_ref) else {
                continue;
            };
            let mine = sock
                .try_clone()
                .map(mio::net::TcpListener::from_std)
                .and_then(|s| match core.worker {
                    0 => Ok(s),
                    _ => duplicate(&s),
                });
            let registered =
                mine.and_then(|s| Listener::register(s, registry, listener_token(id), many));
            match registered {
                Ok(l) => self.listeners[id] = Some(l),
                Err(e) => error!("listener {}: cannot take new clients: {e}", front.name),
            }
        }
        core.fronts = update.fronts.clone();
        core.metrics
            .routes_renamed(&core.routes.names, &update.routes.names);
        core.routes = Arc::clone(&update.routes);
        core.tls.adopt(update.tls.clone());
        core.cfg = update.site.process.clone();
        core.admin_settings = update.site.admin.clone();
        let open = core.fronts.iter().filter(|f| !f.closed).count();
        let pools = update.pools.iter().filter(|p| !p.retired).count();
        format!(
            "{open} listener(s), {pools} pool(s), {} route(s)",
            update.site.routes.len()
        )
    }
}

/// A site as worker 0 staged it, for every worker to take in: the same pools and
/// listeners by id, the same routes, certificates and (new) listening sockets.
pub struct SiteUpdate {
    pub site: Site,
    pub pools: Vec<PoolSpec>,
    pub fronts: Vec<Front>,
    /// By listener id: a socket for each listener new in this site.
    pub sockets: Vec<Option<Arc<std::net::TcpListener>>>,
    pub routes: Arc<Routes>,
    pub tls: TlsServers,
}

/// A pool by id, as worker 0 decided: every worker's pools are the same list.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub settings: PoolSettings,
    pub protocol: Protocol,
    /// No longer in the file: it keeps its id while its backends leave.
    pub retired: bool,
}

/// The new site's pools by id: each where it was (same name), new ones after, and the
/// ones that vanished kept, retired.
fn pool_ids(running: &[Pool], site: &Site) -> Vec<PoolSpec> {
    let mut out: Vec<PoolSpec> = running
        .iter()
        .map(|p| PoolSpec {
            settings: p.settings.clone(),
            protocol: p.protocol,
            retired: true,
        })
        .collect();
    for w in &site.pools {
        let spec = PoolSpec {
            settings: w.clone(),
            protocol: site.protocol_of(&w.name),
            retired: false,
        };
        match out.iter().position(|p| p.settings.name == w.name) {
            Some(id) => out[id] = spec,
            None => out.push(spec),
        }
    }
    out
}

/// What only a restart changes keeps its running value, with a warning when the file
/// asks for another.
fn kept_for_restart(running: &Process, mut new: Process) -> Process {
    let mut kept = Vec::new();
    // The default fitted to the descriptor limit at start is not a value to compare.
    if !new.max_connections_given {
        new.max_connections = running.max_connections;
    }
    // Each field with its key as the file writes it.
    macro_rules! keep {
        ($($field:ident $key:literal),*) => {$(
            if new.$field != running.$field {
                kept.push($key);
                new.$field = running.$field.clone();
            }
        )*};
    }
    keep!(
        workers "workers",
        max_connections "max_connections",
        journal "journal",
        journal_sync "journal_sync",
        resolve_interval "resolve_interval",
        hosts_file "hosts_file"
    );
    keep!(
        backend_ca "backend_ca",
        access_log "[log] access_log",
        log_format "[log] format",
        log_level "[log] level"
    );
    if !kept.is_empty() {
        warn!(
            "reload: {} change at a restart only; the running values stay",
            kept.join(", ")
        );
    }
    new.max_connections_given = running.max_connections_given;
    new
}
