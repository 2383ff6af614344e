//! aws-lc-rs's TLS 1.3 cipher suites with a key schedule that extracts each secret once.
//!
//! rustls's aws-lc-rs suites derive keys with aws-lc-rs's `hkdf`, whose `Salt::extract`
//! keeps the salt and the secret and runs the whole HKDF (extract, then expand) on every
//! expand: a TLS 1.3 handshake expands each secret two to four times, so the extract
//! HMACs are repeated, and every HMAC also hashes its key pads again. Under resumed
//! handshakes that was a fifth of lb's CPU time (SHA-384, which this CPU does not
//! accelerate). rustls's `HkdfUsingHmac` extracts once and keys one HMAC with the result;
//! aws-lc-rs's `hmac::Key` hashes the pads once, and each expand copies that state.
//! The AEADs, hashes and wire format are rustls's own: only the HKDF's arithmetic moves.

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use rustls::crypto::hmac::{Hmac, Key, Tag};
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{CryptoProvider, aws_lc_rs as rustls_aws_lc};
use rustls::{CipherSuiteCommon, SupportedCipherSuite, Tls13CipherSuite};

struct AwsLcHmac(hmac::Algorithm);

struct AwsLcHmacKey(hmac::Key);

impl Hmac for AwsLcHmac {
    fn with_key(&self, key: &[u8]) -> Box<dyn Key> {
        Box::new(AwsLcHmacKey(hmac::Key::new(self.0, key)))
    }

    fn hash_output_len(&self) -> usize {
        self.0.digest_algorithm().output_len()
    }
}

impl Key for AwsLcHmacKey {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(first);
        for part in middle {
            context.update(part);
        }
        context.update(last);
        Tag::new(context.sign().as_ref())
    }

    fn tag_len(&self) -> usize {
        self.0.algorithm().digest_algorithm().output_len()
    }
}

static HMAC_SHA256: AwsLcHmac = AwsLcHmac(hmac::HMAC_SHA256);
static HMAC_SHA384: AwsLcHmac = AwsLcHmac(hmac::HMAC_SHA384);
static HKDF_SHA256: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA256);
static HKDF_SHA384: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA384);

/// rustls's aws-lc-rs provider with each TLS 1.3 suite's HKDF replaced; the suites, their
/// order and everything else are the same. The new suites are made once per process.
pub fn default_provider() -> CryptoProvider {
    static SUITES: OnceLock<Vec<SupportedCipherSuite>> = OnceLock::new();
    let mut provider = rustls_aws_lc::default_provider();
    let suites = SUITES.get_or_init(|| {
        provider
            .cipher_suites
            .iter()
            .map(|&s| remade(s).unwrap_or(s))
            .collect()
    });
    provider.cipher_suites = suites.clone();
    provider
}

/// A TLS 1.3 suite like `suite` but for its HKDF; `None` for a TLS 1.2 suite or an
/// unknown hash.
fn remade(suite: SupportedCipherSuite) -> Option<SupportedCipherSuite> {
    let SupportedCipherSuite::Tls13(old) = suite else {
        return None;
    };
    let hkdf = match old.common.hash_provider.output_len() {
        32 => &HKDF_SHA256,
        48 => &HKDF_SHA384,
        _ => return None,
    };
    let new: &'static Tls13CipherSuite = Box::leak(Box::new(Tls13CipherSuite {
        common: CipherSuiteCommon {
            suite: old.common.suite,
            hash_provider: old.common.hash_provider,
            confidentiality_limit: old.common.confidentiality_limit,
        },
        hkdf_provider: hkdf,
        aead_alg: old.aead_alg,
        quic: old.quic,
    }));
    Some(SupportedCipherSuite::Tls13(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::tls13::Hkdf;

    /// RFC 5869 test case 1 (SHA-256), through the replacement and through aws-lc-rs's own
    /// HKDF as rustls uses it: the same keys.
    #[test]
    fn derives_what_rfc_5869_and_aws_lc_rs_derive() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        HKDF_SHA256
            .extract_from_secret(Some(&salt), &ikm)
            .expand_slice(&[&info], &mut okm)
            .expect("42 bytes is within 255 blocks");
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                        34007208d5b887185865";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);

        let theirs = rustls_aws_lc::default_provider().cipher_suites;
        let ours = default_provider().cipher_suites;
        for (ours, theirs) in ours.iter().zip(&theirs) {
            let (Some(ours), Some(theirs)) = (ours.tls13(), theirs.tls13()) else {
                continue;
            };
            assert!(
                !std::ptr::eq(ours, theirs),
                "{:?} replaced",
                theirs.common.suite
            );
            let derive = |s: &Tls13CipherSuite| {
                let prk = s
                    .hkdf_provider
                    .extract_from_secret(Some(b"salt"), b"secret");
                prk.expand_block(&[b"label", b"context"]).as_ref().to_vec()
            };
            assert_eq!(derive(ours), derive(theirs), "{:?}", theirs.common.suite);
        }
    }

    #[test]
    fn keeps_order_and_tls12_suites() {
        let theirs = rustls_aws_lc::default_provider().cipher_suites;
        let ours = default_provider().cipher_suites;
        let names = |v: &[SupportedCipherSuite]| v.iter().map(|s| s.suite()).collect::<Vec<_>>();
        assert_eq!(names(&ours), names(&theirs));
        assert!(ours.iter().any(|s| s.tls13().is_none()));
    }
}
