//! The one model of what lb runs: listeners, pools, routes and the process-wide settings.
//! The flags, the TOML file and the admin API are front ends that build or edit it;
//! `validate` holds every rule that spans more than one value, so that a value refused
//! on the command line is refused in the file and through the API, each front end saying
//! where (a flag, `FILE:LINE:COL`, a request).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::backends::BackendLine;
use super::diagnostic::Level;
use super::fanout::{JournalAt, JournalSync, RetryOn, StatusSet};
use super::values::Secret;
use super::{AccessLogTo, LogFormat};
use crate::proxy_protocol::{self, Cidr};
use crate::tls::CertPair;

/// Where a site came from: what a reload reads again, and what messages name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flags,
    File(PathBuf),
}

/// Everything lb runs, as values: no sockets, nothing resolved yet.
#[derive(Debug, Clone)]
pub struct Site {
    pub source: Source,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
    /// In order: the first that matches a request wins.
    pub routes: Vec<Route>,
    pub admin: Admin,
    pub process: Process,
}

impl Site {
    /// What pool `name` carries: TCP connections if a TCP listener sends to it, else HTTP
    /// requests (a pool serves one of the two, `validate` says).
    pub fn protocol_of(&self, name: &str) -> Protocol {
        let tcp = self
            .listeners
            .iter()
            .any(|l| l.protocol == Protocol::Tcp && l.pool.as_deref() == Some(name));
        if tcp { Protocol::Tcp } else { Protocol::Http }
    }

    /// Makes the file paths of a site read from a file in `dir` relative to `dir`, not to
    /// wherever lb was started from (systemd starts it in `/`).
    pub fn relative_to(&mut self, dir: &std::path::Path) {
        let under = |p: &mut String| {
            if !p.is_empty() && std::path::Path::new(p).is_relative() {
                *p = dir.join(&*p).display().to_string();
            }
        };
        for l in &mut self.listeners {
            for pair in &mut l.tls {
                under(&mut pair.cert);
                under(&mut pair.key);
            }
        }
        for p in &mut self.pools {
            p.backends_file.as_mut().map(under);
        }
        let process = &mut self.process;
        process.backend_ca.as_mut().map(under);
        let journal = match &mut process.journal {
            Some(JournalAt::Dir(p)) => Some(p),
            _ => None,
        };
        for path in [journal, process.hosts_file.as_mut()] {
            if let Some(p) = path.filter(|p| p.is_relative()) {
                *p = dir.join(&*p);
            }
        }
        if let super::AccessLogTo::File(p) = &mut process.access_log
            && p.is_relative()
        {
            *p = dir.join(&*p);
        }
    }
}

/// Where a value came from, for messages: a key path such as `routes[2].pool` or
/// `pools.app.backends[1]`. Each front end maps it back to what the operator wrote (a
/// flag, a file's line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPath(pub String);

impl KeyPath {
    pub fn key(&self, k: &str) -> KeyPath {
        if self.0.is_empty() {
            KeyPath(k.to_string())
        } else {
            KeyPath(format!("{}.{k}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> KeyPath {
        KeyPath(format!("{}[{i}]", self.0))
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What each pool's `backends_file` lists, by pool, as a front end read it to check it;
/// a pool that is not in it has no file, or one that could not be read.
pub type Listed = std::collections::HashMap<String, Vec<BackendLine>>;

/// One thing wrong with a model, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub at: KeyPath,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub protocol: Protocol,
    /// TCP listeners: the pool every connection goes to.
    pub pool: Option<String>,
    /// HTTP listeners: the routes that apply, by name, in the site's order; `None`: all.
    pub routes: Option<Vec<String>>,
    /// Certificates chosen by SNI; empty for a plain listener.
    pub tls: Vec<CertPair>,
    /// Every client starts with a PROXY header; if the list is not empty, only from these.
    pub accept_proxy: Option<Vec<Cidr>>,
    /// A plain HTTP listener also takes HTTP/2 from clients that start with its preface
    /// (prior knowledge); TLS listeners offer HTTP/2 by ALPN whatever this says.
    pub h2c: bool,
}

/// Active health checks of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Zero: no active checks.
    pub interval: Duration,
    pub timeout: Duration,
    pub path: String,
    pub rise: u32,
    pub fall: u32,
    /// Statuses that pass a check.
    pub expect: StatusSet,
    pub kind: CheckKind,
}

/// What an active check of an HTTP pool asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `GET path` over HTTP/1.1.
    Http,
    /// `grpc.health.v1.Health/Check` over HTTP/2 with prior knowledge, about this service
    /// ("": the server as a whole).
    Grpc { service: String },
}

/// How a pool's POST copies are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fanout {
    /// Copies per POST; 0: every backend of the pool.
    pub count: usize,
    pub success_status: StatusSet,
    pub retry_on: RetryOn,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub retry_jitter: Duration,
    pub retry_attempts: u32,
    pub timeout: Duration,
    /// The largest answer to a POST kept to be relayed to its client.
    pub max_response: u64,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    /// As written; names are resolved when the pool is started, and again later.
    pub backends: Vec<BackendLine>,
    /// `-f`, `backends_file`: more backends, one per line, read again at each SIGHUP.
    pub backends_file: Option<String>,
    /// One of `strategy::NAMES`.
    pub strategy: String,
    pub health: Health,
    pub connect_timeout: Duration,
    pub server_timeout: Duration,
    pub retries: u32,
    pub pool_size: usize,
    pub send_proxy: Option<proxy_protocol::Version>,
    /// What lb speaks to the pool's backends.
    pub backend_protocol: BackendProtocol,
    pub fanout: Fanout,
}

/// What lb speaks to a pool's backends (`protocol` in a pool's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendProtocol {
    #[default]
    Http1,
    /// HTTP/2: with prior knowledge (h2c) to `http://` backends, by ALPN to `https://`.
    H2,
}

impl BackendProtocol {
    pub fn name(self) -> &'static str {
        match self {
            BackendProtocol::Http1 => "http1",
            BackendProtocol::H2 => "h2",
        }
    }
}

/// A host a route matches, without a port, in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself).
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    /// Segment-aware: `/api` matches `/api` and `/api/x`, not `/apix`.
    Prefix(String),
    /// Anchored at both ends.
    Regex(String),
}

/// A header field (or query parameter) that must be present, with this value if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMatch {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    StripPrefix(String),
    ReplacePrefix { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Proxy {
        pool: String,
        /// `None`: a POST fans out, anything else goes to one backend.
        fanout: Option<bool>,
        rewrite: Option<Rewrite>,
        server_timeout: Option<Duration>,
        max_body: Option<u64>,
    },
    /// `to` is a template: `{host}`, `{path}`, `{query}`.
    Redirect { to: String, status: u16 },
    Respond {
        status: u16,
        body: String,
        content_type: String,
    },
}

/// Header edits on one side of an exchange, applied in this order: remove, set, add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Given, or `#N` (its place in the list, from 1).
    pub name: String,
    /// Empty: any host.
    pub hosts: Vec<HostPattern>,
    pub path: Option<PathMatch>,
    /// Upper case; empty: any method.
    pub methods: Vec<String>,
    pub headers: Vec<FieldMatch>,
    pub query: Vec<FieldMatch>,
    pub action: Action,
    pub request_headers: HeaderEdits,
    pub response_headers: HeaderEdits,
}

#[derive(Debug, Clone)]
pub struct Admin {
    /// `None`: no admin listener.
    pub listen: Option<SocketAddr>,
    /// The token that write actions must carry.
    pub token: Option<Secret>,
    /// The file it was read from, as written (for `--print-config`).
    pub token_file: Option<String>,
    /// Names besides its address and `localhost` that writes may carry as their Host.
    pub hosts: Vec<String>,
}

/// Settings of the whole process.
#[derive(Debug, Clone)]
pub struct Process {
    pub workers: usize,
    /// Written `auto` (one per core): printed back as `auto`, not this machine's count.
    pub workers_auto: bool,
    pub max_connections: usize,
    /// Given by the operator: kept even where the descriptor limit falls short.
    pub max_connections_given: bool,
    pub client_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_body: u64,
    /// Bytes POSTs may hold in the whole process (bodies arriving, refusals kept).
    pub max_buffered_bytes: u64,
    /// Bytes a second a request body must bring, judged per client timeout.
    pub client_min_rate: u64,
    pub max_pending: usize,
    pub max_pending_bytes: u64,
    /// How long a removed backend may keep the POST copies it owes.
    pub leave_timeout: Duration,
    pub journal: Option<JournalAt>,
    pub journal_sync: JournalSync,
    pub resolve_interval: Duration,
    pub hosts_file: Option<PathBuf>,
    /// Roots that `https://` backends are verified against instead of the system's.
    pub backend_ca: Option<String>,
    pub access_log: AccessLogTo,
    pub log_format: LogFormat,
    pub log_level: log::LevelFilter,
}
