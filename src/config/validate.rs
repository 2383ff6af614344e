//! The rules that span more than one value of a `Site`: names that must refer to
//! something, addresses that must not collide, settings that contradict each other. Each
//! problem names the key path it is about; the front end says where that was written.

use std::net::SocketAddr;

use super::backends::BackendLine;
use super::diagnostic::{Level, nearest};
use super::model::{Action, KeyPath, Listed, Listener, Problem, Protocol, Site};
use crate::strategy;

impl Site {
    /// `listed`: what the pools' backends files list, as the front end read them.
    pub fn validate(&self, listed: &Listed) -> Vec<Problem> {
        let mut out = Problems(Vec::new());
        self.check_listeners(&mut out);
        self.check_pools(&mut out, listed);
        self.check_routes(&mut out);
        out.0
    }

    fn pool_names(&self) -> Vec<&str> {
        self.pools.iter().map(|p| p.name.as_str()).collect()
    }

    fn check_listeners(&self, out: &mut Problems) {
        if self.listeners.is_empty() {
            out.error(
                KeyPath("listeners".into()),
                "no listeners: add one, e.g. [listeners.web] with address = \"127.0.0.1:8080\"",
            );
        }
        let pools = self.pool_names();
        for (i, l) in self.listeners.iter().enumerate() {
            let at = KeyPath("listeners".into()).key(&l.name);
            // Port 0 is any free port: two such listeners do not collide.
            let collides = |o: &&Listener| o.address == l.address && l.address.port() != 0;
            if let Some(first) = self.listeners[..i].iter().find(collides) {
                out.error(
                    at.key("address"),
                    format!(
                        "{} is also the address of listener `{}`",
                        l.address, first.name
                    ),
                );
            }
            if self.admin.listen == Some(l.address) && l.address.port() != 0 {
                out.error(
                    KeyPath("admin.listen".into()),
                    format!(
                        "the admin listener's {} is also listener `{}`'s address",
                        l.address, l.name
                    ),
                );
            }
            match (l.protocol, &l.pool, &l.routes) {
                (Protocol::Tcp, None, _) => out.error(
                    at.clone(),
                    format!(
                        "TCP listener `{}` needs `pool`: where its connections go",
                        l.name
                    ),
                ),
                (Protocol::Tcp, Some(_), Some(_)) => out.error(
                    at.key("routes"),
                    "a TCP listener has no routes: its connections go to its `pool` unparsed",
                ),
                (Protocol::Http, Some(_), _) => out.error(
                    at.key("pool"),
                    "an HTTP listener sends requests where its routes say: `pool` is for \
                     mode = \"tcp\" (a route has `pool`)",
                ),
                _ => {}
            }
            if let (Protocol::Tcp, Some(name)) = (l.protocol, &l.pool) {
                match self.pools.iter().find(|p| &p.name == name) {
                    None => out.error(at.key("pool"), unknown_pool(name, &pools)),
                    Some(p) if !strategy::tcp_compatible(&p.strategy) => out.error(
                        at.key("pool"),
                        format!(
                            "pool `{name}` balances with {}, which needs HTTP requests: a TCP \
                             listener cannot use it",
                            p.strategy
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    fn check_pools(&self, out: &mut Problems, listed: &Listed) {
        for p in &self.pools {
            let at = KeyPath("pools".into()).key(&p.name);
            let file = listed.get(&p.name);
            match (&p.backends_file, file) {
                (None, _) if p.backends.is_empty() => out.error(
                    at.key("backends"),
                    format!(
                        "pool `{}` has no backends: list them in `backends` (or name a \
                         `backends_file`)",
                        p.name
                    ),
                ),
                (Some(path), Some(lines)) if lines.is_empty() && p.backends.is_empty() => out
                    .error(
                        at.key("backends_file"),
                        format!(
                            "pool `{}` has no backends: {path} lists none, and no `backends` \
                             gives one",
                            p.name
                        ),
                    ),
                _ => {}
            }
            // The lines of the file are said at `backends_file`, each named by its line.
            let lines: Vec<(KeyPath, Option<&str>, &BackendLine)> = p
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| (at.key("backends").index(i), None, b))
                .chain(
                    file.into_iter()
                        .flatten()
                        .map(|b| (at.key("backends_file"), Some(b.at.as_str()), b)),
                )
                .collect();
            for (i, (bat, line, b)) in lines.iter().enumerate() {
                let whence = line.map(|l| format!("{l}: ")).unwrap_or_default();
                if lines[..i].iter().any(|(_, _, o)| o.label == b.label) {
                    out.error(
                        bat.clone(),
                        format!(
                            "{whence}backend {} is listed twice in pool `{}`: each backend \
                             once, with ,weight=N to send it more",
                            b.label, p.name
                        ),
                    );
                }
                if let Ok(addr) = b.label.trim_start_matches("http://").parse::<SocketAddr>() {
                    self.check_backend_address(out, bat.clone(), &whence, addr);
                }
            }
            // A file that could not be read has been told of: its count is not known.
            let n = lines.len();
            if (p.backends_file.is_none() || file.is_some()) && p.fanout.count > n {
                out.error(
                    at.key("fanout").key("count"),
                    format!(
                        "a fan-out to {} backends, but pool `{}` has {n}",
                        p.fanout.count, p.name
                    ),
                );
            }
            if p.fanout.retry_max < p.fanout.retry_base {
                out.error(
                    at.key("fanout").key("retry_max"),
                    "`retry_max` is below `retry_base`",
                );
            }
            if !strategy::uses_weights(&p.strategy) && lines.iter().any(|(_, _, b)| b.weight != 1) {
                out.warning(
                    at.key("strategy"),
                    format!(
                        "weight= is ignored: {} does not use weights (round-robin does)",
                        p.strategy
                    ),
                );
            }
            let used =
                self.listeners
                    .iter()
                    .any(|l| l.pool.as_deref() == Some(&p.name))
                    || self.routes.iter().any(
                        |r| matches!(&r.action, Action::Proxy { pool, .. } if pool == &p.name),
                    );
            if !used {
                out.warning(
                    at,
                    format!("pool `{}` is used by no route and no listener", p.name),
                );
            }
        }
    }

    /// A backend that is lb itself, or port 0, as the command line refuses it.
    /// `whence` leads the message: where in a backends file it was written.
    fn check_backend_address(
        &self,
        out: &mut Problems,
        at: KeyPath,
        whence: &str,
        addr: SocketAddr,
    ) {
        if addr.port() == 0 {
            out.error(at, format!("{whence}backend {addr} has port 0"));
            return;
        }
        let own = self
            .listeners
            .iter()
            .map(|l| (l.address, format!("listener `{}`", l.name)))
            .chain(
                self.admin
                    .listen
                    .map(|a| (a, "the admin listener".to_string())),
            );
        for (listen, whose) in own {
            let same_host = addr.ip() == listen.ip()
                || (listen.ip().is_unspecified() && addr.ip().is_loopback());
            if same_host && addr.port() == listen.port() {
                out.error(
                    at,
                    format!("{whence}backend {addr} is {whose}'s own address: requests would loop"),
                );
                return;
            }
        }
    }

    fn check_routes(&self, out: &mut Problems) {
        let pools = self.pool_names();
        let http = self.listeners.iter().any(|l| l.protocol == Protocol::Http);
        if http && self.routes.is_empty() {
            out.warning(
                KeyPath("listeners".into()),
                "no [[routes]]: every request gets 404 from lb",
            );
        }
        for (i, r) in self.routes.iter().enumerate() {
            let Action::Proxy { pool, .. } = &r.action else {
                continue;
            };
            let at = KeyPath("routes".into()).index(i).key("pool");
            if !pools.contains(&pool.as_str()) {
                out.error(at, unknown_pool(pool, &pools));
                continue;
            }
            // A pool's backends speak HTTP or take raw TCP: its settings, health checks
            // and connections are of one kind.
            let tcp = self
                .listeners
                .iter()
                .find(|l| l.protocol == Protocol::Tcp && l.pool.as_deref() == Some(pool));
            if let Some(l) = tcp {
                out.error(
                    at,
                    format!(
                        "pool `{pool}` is used by TCP listener `{}` and by route `{}`: a pool \
                         carries TCP connections or HTTP requests, not both (give each its own)",
                        l.name, r.name
                    ),
                );
            }
        }
    }
}

fn unknown_pool(name: &str, pools: &[&str]) -> String {
    match nearest(name, pools) {
        Some(near) => format!("no pool is called `{name}` (did you mean `{near}`?)"),
        None if pools.is_empty() => format!("no pool is called `{name}`: there are no [pools]"),
        None => format!(
            "no pool is called `{name}` (there are: {})",
            pools.join(", ")
        ),
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn error(&mut self, at: KeyPath, message: impl Into<String>) {
        self.0.push(Problem {
            level: Level::Error,
            at,
            message: message.into(),
        });
    }

    fn warning(&mut self, at: KeyPath, message: impl Into<String>) {
        self.0.push(Problem {
            level: Level::Warning,
            at,
            message: message.into(),
        });
    }
}
