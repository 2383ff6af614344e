//! X-Request-Id: the id lb makes for a request, and the checks a client's own must pass.
//!
//! A fan-out write is keyed on its id at the backends (see docs/fanout.md), and every
//! answer echoes it: an id anyone can predict lets one client take another's key before
//! it is used. So an id lb makes is a UUIDv4 of 122 bits from a CSPRNG, never a counter.

/// Longest X-Request-Id we keep and echo; a longer one is replaced by one of ours.
pub const MAX_REQUEST_ID: usize = 128;

/// Length of an id lb makes: a UUID in its 8-4-4-4-12 text form.
const UUID_LEN: usize = 36;

/// An X-Request-Id, kept inline so that a request costs no allocation.
#[derive(Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl RequestId {
    /// At most MAX_REQUEST_ID bytes of `src`.
    pub(crate) fn from_bytes(src: &[u8]) -> Self {
        let src = &src[..src.len().min(MAX_REQUEST_ID)];
        let mut bytes = [0; MAX_REQUEST_ID];
        bytes[..src.len()].copy_from_slice(src);
        RequestId {
            bytes,
            len: src.len() as u8,
        }
    }

    /// A fresh id: a random UUID (version 4), from a CSPRNG (rand's thread-local ChaCha12,
    /// seeded and reseeded from the operating system).
    pub fn random() -> Self {
        Self::uuid(rand::random())
    }

    /// The UUIDv4 text form of `random`: its version and variant bits are overwritten, the
    /// other 122 bits appear as they are.
    pub fn uuid(random: u128) -> Self {
        // Where each byte's two hex digits go in `xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx`.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let v = (random & !(0xf << 76)) | (0x4 << 76);
        let v = (v & !(0x3 << 62)) | (0x2 << 62);
        let mut bytes = [b'-'; MAX_REQUEST_ID];
        for (&at, byte) in AT.iter().zip(v.to_be_bytes()) {
            bytes[at] = HEX[usize::from(byte >> 4)];
            bytes[at + 1] = HEX[usize::from(byte & 0xf)];
        }
        RequestId {
            bytes,
            len: UUID_LEN as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("-")
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a client's X-Request-Id is not used, if it is not: it goes into logs and to every
/// backend, so only a short run of visible ASCII is kept (no spaces, quotes or controls
/// that could forge a log field).
pub(super) fn unusable(v: &[u8]) -> Option<&'static str> {
    if v.is_empty() {
        Some("is empty")
    } else if v.len() > MAX_REQUEST_ID {
        Some("is longer than 128 bytes")
    } else if !v.iter().all(|b| b.is_ascii_graphic() && *b != b'"') {
        Some("has a space, a quote or a byte that is not visible ASCII")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_has_its_version_and_variant_and_the_rest_as_given() {
        assert_eq!(
            RequestId::uuid(0).as_str(),
            "00000000-0000-4000-8000-000000000000"
        );
        assert_eq!(
            RequestId::uuid(u128::MAX).as_str(),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            RequestId::uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef).as_str(),
            "01234567-89ab-4def-8123-456789abcdef"
        );
    }

    #[test]
    fn random_ids_differ() {
        let (a, b) = (RequestId::random(), RequestId::random());
        assert_eq!(a.as_bytes().len(), UUID_LEN);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(unusable(a.as_bytes()).is_none(), "ours pass our own check");
    }
}
