//! The flags as the one model: a listener (and a TLS one), one pool called `default` with
//! every backend, and one route to it, so that flags and a file run the same code.

use super::model::{
    Action, Admin, BackendProtocol, CheckKind, Fanout, HeaderEdits, Health, Listener, Pool,
    Process, Protocol, Route, Site, Source,
};
use super::{Config, Mode};

/// The names the flags' parts get in the model, and in `--print-config`.
pub const POOL: &str = super::FLAGS_POOL;
pub const LISTENER: &str = "main";
pub const TLS_LISTENER: &str = "tls";

impl Config {
    pub fn site(&self) -> Site {
        let protocol = match self.mode {
            Mode::Http => Protocol::Http,
            Mode::Tcp => Protocol::Tcp,
        };
        let listener = |name: &str, address, tls: Vec<_>| Listener {
            h2c: self.h2c && tls.is_empty(),
            name: name.to_string(),
            address,
            protocol,
            pool: (protocol == Protocol::Tcp).then(|| POOL.to_string()),
            routes: None,
            tls,
            accept_proxy: self.accept_proxy.clone(),
        };
        let listeners = self
            .listen
            .map(|a| listener(LISTENER, a, Vec::new()))
            .into_iter()
            .chain(
                self.tls_listen
                    .map(|a| listener(TLS_LISTENER, a, self.tls_certs.clone())),
            )
            .collect();
        let routes = match protocol {
            Protocol::Http => vec![Route {
                name: POOL.to_string(),
                hosts: Vec::new(),
                path: None,
                methods: Vec::new(),
                headers: Vec::new(),
                query: Vec::new(),
                action: Action::Proxy {
                    pool: POOL.to_string(),
                    fanout: None,
                    rewrite: None,
                    server_timeout: None,
                    max_body: None,
                },
                request_headers: HeaderEdits::default(),
                response_headers: HeaderEdits::default(),
            }],
            Protocol::Tcp => Vec::new(),
        };
        Site {
            source: Source::Flags,
            listeners,
            pools: vec![self.pool()],
            routes,
            admin: Admin {
                listen: self.admin,
                token: self.admin_token.clone(),
                token_file: self.admin_token_file.clone(),
                hosts: self.admin_hosts.clone(),
            },
            process: self.process(),
        }
    }

    fn pool(&self) -> Pool {
        Pool {
            name: POOL.to_string(),
            backends: self.backend_flags.clone(),
            backends_file: self.backends_file.clone(),
            strategy: self.strategy.clone(),
            health: Health {
                interval: self.health_interval,
                timeout: self.health_timeout,
                path: self.health_path.clone(),
                rise: self.rise,
                fall: self.fall,
                expect: super::StatusSet::PASSING,
                kind: CheckKind::Http,
            },
            connect_timeout: self.connect_timeout,
            server_timeout: self.server_timeout,
            retries: self.retries,
            pool_size: self.pool_size,
            send_proxy: self.send_proxy,
            backend_protocol: BackendProtocol::Http1,
            fanout: Fanout {
                count: self.fanout,
                success_status: self.success_status,
                retry_on: self.retry_on,
                retry_base: self.retry_base,
                retry_max: self.retry_max,
                retry_jitter: self.retry_jitter,
                retry_attempts: self.retry_attempts,
                timeout: self.fanout_timeout,
                max_response: self.fanout_max_response,
            },
        }
    }

    fn process(&self) -> Process {
        Process {
            workers: self.workers,
            workers_auto: self.workers_auto,
            max_connections: self.max_connections,
            max_connections_given: self.max_connections_given,
            client_timeout: self.client_timeout,
            idle_timeout: self.idle_timeout,
            drain_timeout: self.drain_timeout,
            max_body: self.max_body,
            max_buffered_bytes: self.max_buffered_bytes,
            client_min_rate: self.client_min_rate,
            max_pending: self.max_pending,
            max_pending_bytes: self.max_pending_bytes,
            leave_timeout: self.leave_timeout,
            journal: self.journal.clone(),
            journal_sync: self.journal_sync,
            resolve_interval: self.resolve_interval,
            hosts_file: self.hosts_file.clone(),
            backend_ca: self.backend_ca.clone(),
            access_log: self.access_log.clone(),
            log_format: self.log_format,
            log_level: self.log_level,
        }
    }
}
