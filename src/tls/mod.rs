//! TLS with rustls, below the connection code: `TlsSession` is what a `conn::Socket`
//! runs its bytes through; `TlsContexts` holds the configurations sessions start from
//! (the certificates served on `--tls-listen`, and how backends named `https://` are
//! verified), and reloads the certificates on SIGHUP.

mod certs;
#[cfg(feature = "aws-lc-rs")]
mod hkdf;
mod session;
pub mod stats;
mod x509;

use std::sync::Arc;

use log::{error, info};

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

pub use certs::CertPair;
use certs::CertStore;

use crate::shared::TlsServers;
pub use session::TlsSession;

/// The crypto provider, chosen at build time (why aws-lc-rs: docs/benchmarks.md, TLS).
#[cfg(feature = "aws-lc-rs")]
mod provider {
    pub const NAME: &str = "aws-lc-rs";
    pub use super::hkdf::default_provider;
    pub use rustls::crypto::aws_lc_rs::Ticketer;
}
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
mod provider {
    pub const NAME: &str = "ring";
    pub use rustls::crypto::ring::{Ticketer, default_provider};
}
#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("build lb with the aws-lc-rs or the ring feature");

pub use provider::NAME as PROVIDER;

/// What TLS sessions are made from. Each worker has a copy; the configurations and the
/// session ticket key inside are shared, so a client resumes on whichever worker its next
/// connection reaches.
#[derive(Clone)]
pub struct TlsContexts {
    provider: Arc<CryptoProvider>,
    /// For the clients of each listener, by its place among the site's listeners; `None`
    /// for a plain one.
    servers: Vec<Option<Arc<ServerConfig>>>,
    /// For `https://` backends; `None` if no root certificates could be found.
    client: Option<Arc<ClientConfig>>,
    /// The same, offering only `h2` by ALPN: for pools with `protocol = "h2"`.
    client_h2: Option<Arc<ClientConfig>>,
    /// Each listener's certificates, to read again on SIGHUP.
    pairs: Vec<ListenerTls>,
    /// Kept across reloads, so that tickets issued before a reload still resume.
    ticketer: Option<Arc<dyn ProducesTickets>>,
    /// ALPN `http/1.1` is asked of `https://` backends in HTTP mode only.
    http: bool,
}

/// One listener's TLS: its certificates, chosen by SNI, the first the default (none for a
/// plain listener); and whether it carries HTTP, whose clients ALPN offers `h2` and
/// `http/1.1`. A TCP listener offers nothing: it carries any protocol to its backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerTls {
    pub certs: Vec<CertPair>,
    pub http: bool,
}

/// What the TLS side of lb is asked to do.
pub struct TlsSettings<'a> {
    /// Each listener's certificates and protocol.
    pub pairs: Vec<ListenerTls>,
    pub https_backends: bool,
    pub backend_ca: Option<&'a str>,
    pub http: bool,
}

impl TlsContexts {
    /// Loads everything the flags name. Errors are one line, for exit status 2.
    pub fn load(settings: &TlsSettings) -> Result<Self, String> {
        let provider = Arc::new(provider::default_provider());
        let mut contexts = TlsContexts {
            provider,
            servers: Vec::new(),
            client: None,
            client_h2: None,
            pairs: settings.pairs.clone(),
            ticketer: None,
            http: settings.http,
        };
        if settings.pairs.iter().any(|p| !p.certs.is_empty()) {
            let ticketer = provider::Ticketer::new()
                .map_err(|e| format!("cannot make a session ticket key: {e}"))?;
            contexts.ticketer = Some(ticketer);
        }
        for listener in &settings.pairs {
            let server = match listener.certs.is_empty() {
                true => None,
                false => {
                    let store = CertStore::load(&listener.certs, &contexts.provider)?;
                    Some(contexts.server_config(store, listener.http)?)
                }
            };
            contexts.servers.push(server);
        }
        // Built even without https backends, which a reload may add; a failure stops lb
        // only if one is there from the start.
        match contexts.client_config(settings.backend_ca) {
            Ok(config) => {
                let mut h2 = (*config).clone();
                h2.alpn_protocols = vec![b"h2".to_vec()];
                contexts.client_h2 = Some(Arc::new(h2));
                contexts.client = Some(config);
            }
            Err(e) if settings.https_backends || settings.backend_ca.is_some() => return Err(e),
            Err(_) => {}
        }
        Ok(contexts)
    }

    fn server_config(&self, store: CertStore, http: bool) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(store));
        if http {
            // HTTP/2 first: a client that speaks both gets it, as from nginx and HAProxy.
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        if let Some(ticketer) = &self.ticketer {
            config.ticketer = Arc::clone(ticketer);
        }
        // One ticket per full handshake: a browser resumes with one, and each costs an
        // encryption and a write.
        config.send_tls13_tickets = 1;
        Ok(Arc::new(config))
    }

    fn client_config(&self, backend_ca: Option<&str>) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        match backend_ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| format!("--backend-ca: cannot read {path}: {e:?}"))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("--backend-ca: {path} holds no usable certificate"));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "https backends: no system root certificates found; give --backend-ca FILE"
                            .into(),
                    );
                }
            }
        }
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if self.http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Ok(Arc::new(config))
    }

    /// SIGHUP: reads the certificate files again, and new handshakes use them; if one is
    /// bad, the certificates in use stay. Logs what happened.
    pub fn reload_certificates(&mut self) {
        for i in 0..self.pairs.len() {
            if self.pairs[i].certs.is_empty() {
                continue;
            }
            let http = self.pairs[i].http;
            let reloaded =
                CertStore::load(&self.pairs[i].certs, &self.provider).and_then(|store| {
                    let loaded = store.len();
                    self.servers[i] = Some(self.server_config(store, http)?);
                    Ok(loaded)
                });
            match reloaded {
                Ok(n) => info!("SIGHUP: reloaded {n} TLS certificate(s)"),
                Err(e) => error!("SIGHUP: certificates not reloaded, the old ones stay: {e}"),
            }
        }
    }

    /// Server configurations for listeners with these certificates (by listener id; none
    /// for a plain one), sharing this lb's ticket key; none is used until `adopt`.
    pub fn servers_for(&mut self, pairs: &[ListenerTls]) -> Result<TlsServers, String> {
        if self.ticketer.is_none() && pairs.iter().any(|p| !p.certs.is_empty()) {
            let ticketer = provider::Ticketer::new()
                .map_err(|e| format!("cannot make a session ticket key: {e}"))?;
            self.ticketer = Some(ticketer);
        }
        let servers = pairs
            .iter()
            .map(|p| match p.certs.is_empty() {
                true => Ok(None),
                false => {
                    let store = CertStore::load(&p.certs, &self.provider)?;
                    self.server_config(store, p.http).map(Some)
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        self.pairs = pairs.to_vec();
        Ok(servers)
    }

    /// What new TLS clients of each listener get, for the other workers after a
    /// certificate reload.
    pub fn serving(&self) -> Vec<Option<Arc<ServerConfig>>> {
        self.servers.clone()
    }

    /// Another worker reloaded the certificates: new handshakes here use `configs`.
    pub fn adopt(&mut self, configs: Vec<Option<Arc<ServerConfig>>>) {
        self.servers = configs;
    }

    /// A session for a client that connected to TLS listener `front`.
    pub fn server_session(&self, front: usize) -> Option<TlsSession> {
        let config = Arc::clone(self.servers.get(front)?.as_ref()?);
        let conn = ServerConnection::new(config).ok()?;
        Some(TlsSession::new(conn.into()))
    }

    /// A session to an `https://` backend, verified for `name`.
    pub fn client_session(&self, name: &ServerName<'static>) -> Result<TlsSession, String> {
        Self::session(self.client.as_ref(), name)
    }

    /// A session to an `https://` backend of an h2 pool: it offers only `h2` by ALPN.
    pub fn client_session_h2(&self, name: &ServerName<'static>) -> Result<TlsSession, String> {
        Self::session(self.client_h2.as_ref(), name)
    }

    fn session(
        config: Option<&Arc<ClientConfig>>,
        name: &ServerName<'static>,
    ) -> Result<TlsSession, String> {
        let config = config
            .ok_or("no root certificates to verify https backends with: give --backend-ca FILE")?;
        ClientConnection::new(Arc::clone(config), name.clone())
            .map(|conn| TlsSession::new(conn.into()))
            .map_err(|e| e.to_string())
    }
}
