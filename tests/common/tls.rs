//! TLS for the tests: a certificate authority made at test time with rcgen, certificates
//! it signs written to a temporary directory, and a rustls client that trusts it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{Proc, connect};

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A directory of its own under the system's temporary one, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lb-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make a temporary directory");
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    der: CertificateDer<'static>,
}

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "lb test CA");
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An ECDSA P-256 certificate for `names` (DNS names, or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    pub fn issue_with(
        &self,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("a DNS name")),
            });
        }
        params.distinguished_name.push(DnType::CommonName, names[0]);
        adjust(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client that trusts this CA, with its own session cache for resumption.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("add the CA");
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Writes `issued` as `NAME.crt` and `NAME.key` in `dir`: the flags for lb.
pub fn write_pair(dir: &TempDir, name: &str, issued: &Issued) -> (String, String) {
    (
        dir.write(&format!("{name}.crt"), &issued.cert),
        dir.write(&format!("{name}.key"), &issued.key),
    )
}

/// A finished TLS connection to `addr` for `name`.
pub fn tls_connect(config: &Arc<ClientConfig>, addr: SocketAddr, name: &str) -> TlsStream {
    let server_name = ServerName::try_from(name.to_string()).expect("a server name");
    let conn = ClientConnection::new(Arc::clone(config), server_name).expect("client");
    let mut stream = StreamOwned::new(conn, connect(addr));
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}"));
    }
    stream
}

/// The address lb logged for `--tls-listen`.
pub fn tls_addr(lb: &Proc) -> SocketAddr {
    let mut found = None;
    let logged = super::eventually(std::time::Duration::from_secs(5), || {
        found = lb
            .log_text()
            .lines()
            .find_map(|l| l.split("TLS listening on ").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok());
        found.is_some()
    });
    match (logged, found) {
        (true, Some(addr)) => addr,
        _ => panic!("lb logged no TLS address:\n{}", lb.log_text()),
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, in files of their own.
pub struct Site {
    pub ca: TestCa,
    pub dir: TempDir,
    pub issued: Issued,
    pub cert: String,
    pub key: String,
}

impl Site {
    pub fn new() -> Self {
        let ca = TestCa::new();
        let dir = TempDir::new();
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        let (cert, key) = write_pair(&dir, "site", &issued);
        Site {
            ca,
            dir,
            issued,
            cert,
            key,
        }
    }

    /// lb in front of `backends`, with a TLS listener serving this certificate, and `extra`.
    pub fn lb(&self, backends: &[SocketAddr], extra: &[&str]) -> Proc {
        let addrs: Vec<String> = backends.iter().map(SocketAddr::to_string).collect();
        let mut args = vec![
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &self.cert,
            "--tls-key",
            &self.key,
        ];
        args.extend_from_slice(extra);
        super::lb_addrs(&addrs.iter().map(String::as_str).collect::<Vec<_>>(), &args)
    }
}
