//! The certificates lb serves: PEM files read and checked (readable, key matches, not
//! expired), then chosen per handshake by the name the client asks for (SNI).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::x509;

/// A certificate chain file and its private key file, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    pub cert: String,
    pub key: String,
}

/// Loads and checks one pair; the error is one line naming the file at fault.
pub fn load_pair(pair: &CertPair, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let CertPair { cert, key } = pair;
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {cert}: {}", pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read certificate {cert}: {}", pem_error(&e)))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{cert} holds no PEM certificate"));
    };
    let (not_before, not_after) = x509::validity(leaf)
        .ok_or_else(|| format!("{cert}: the first certificate is not valid X.509 DER"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if now > not_after {
        return Err(format!(
            "certificate {cert} expired on {}",
            x509::date(not_after)
        ));
    }
    if now < not_before {
        return Err(format!(
            "certificate {cert} is not valid before {}",
            x509::date(not_before)
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "{key} holds no private key lb can read (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC, \
             unencrypted)"
        ),
        e => format!("cannot read key {key}: {}", pem_error(&e)),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("key {key} does not match certificate {cert}")
        }
        e => format!("cannot use key {key} with certificate {cert}: {e}"),
    })
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        e => format!("{e:?}"),
    }
}

/// The names a certificate is valid for (its DNS subject alternative names), lowercase.
fn names(cert: &CertifiedKey) -> Vec<String> {
    let Ok(leaf) = cert.end_entity_cert() else {
        return Vec::new();
    };
    match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => ee.valid_dns_names().map(str::to_ascii_lowercase).collect(),
        Err(_) => Vec::new(),
    }
}

/// Certificates by the names they cover; the first one loaded answers every other name,
/// and clients that send no name.
#[derive(Debug)]
pub struct CertStore {
    certs: Vec<Arc<CertifiedKey>>,
    /// Exact names, and wildcard names stored without their `*.`, to an index in `certs`.
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
}

impl CertStore {
    pub fn load(pairs: &[CertPair], provider: &CryptoProvider) -> Result<Self, String> {
        let mut store = CertStore {
            certs: Vec::new(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for pair in pairs {
            let cert = Arc::new(load_pair(pair, provider)?);
            let index = store.certs.len();
            for name in names(&cert) {
                // The first certificate to claim a name keeps it.
                match name.strip_prefix("*.") {
                    Some(parent) => store.wildcard.entry(parent.to_string()),
                    None => store.exact.entry(name),
                }
                .or_insert(index);
            }
            store.certs.push(cert);
        }
        if store.certs.is_empty() {
            return Err("--tls-listen needs --tls-cert FILE --tls-key FILE".into());
        }
        Ok(store)
    }

    /// The certificate for `name` (any case), or the default one.
    pub fn choose(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let index = name.and_then(|name| {
            let name = name.to_ascii_lowercase();
            self.exact.get(&name).copied().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent).copied()
            })
        });
        &self.certs[index.unwrap_or(0)]
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(hello.server_name())))
    }
}
