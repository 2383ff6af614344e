//! SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash that authenticates the
//! journal's records: a pseudo-random function of a 128-bit key, so that without the key
//! no one can make bytes that pass for a record. Here in its 64-bit form (record headers)
//! and its 128-bit form (whole records); both are checked against the reference vectors.

/// A SipHash key: two little-endian words of 16 key bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SipKey(u64, u64);

impl SipKey {
    pub fn new(bytes: [u8; 16]) -> SipKey {
        let (a, b) = bytes.split_at(8);
        SipKey(word(a), word(b))
    }
}

/// Never printed: the key is a secret.
impl std::fmt::Debug for SipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipKey(..)")
    }
}

fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(w)
}

struct State([u64; 4]);

impl State {
    fn new(key: SipKey, wide: bool) -> State {
        let mut v = [
            key.0 ^ 0x736f_6d65_7073_6575,
            key.1 ^ 0x646f_7261_6e64_6f6d,
            key.0 ^ 0x6c79_6765_6e65_7261,
            key.1 ^ 0x7465_6462_7974_6573,
        ];
        if wide {
            v[1] ^= 0xee;
        }
        State(v)
    }

    fn round(&mut self) {
        let v = &mut self.0;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    fn compress(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.round();
        self.0[0] ^= m;
    }

    /// Every word of `data`, then the last one with the length's low byte on top.
    fn absorb(&mut self, data: &[u8]) {
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.compress(word(w));
        }
        self.compress(word(words.remainder()) | ((data.len() as u64) << 56));
    }

    fn squeeze(&mut self, mark: u64) -> u64 {
        self.0[2] ^= mark;
        for _ in 0..4 {
            self.round();
        }
        self.0.iter().fold(0, |a, v| a ^ v)
    }
}

/// SipHash-2-4 with its 64-bit output.
pub fn siphash64(key: SipKey, data: &[u8]) -> u64 {
    let mut s = State::new(key, false);
    s.absorb(data);
    s.squeeze(0xff)
}

/// SipHash-2-4 with its 128-bit output, as the reference implementation writes it.
pub fn siphash128(key: SipKey, data: &[u8]) -> [u8; 16] {
    let mut s = State::new(key, true);
    s.absorb(data);
    let first = s.squeeze(0xee);
    s.0[1] ^= 0xdd;
    let second = s.squeeze(0);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&first.to_le_bytes());
    out[8..].copy_from_slice(&second.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The reference vectors (veorq/SipHash `vectors.h`): key 00 01 .. 0f, message
    /// 00 01 .. of each length.
    fn reference() -> (SipKey, Vec<u8>) {
        let key: Vec<u8> = (0..16).collect();
        (SipKey::new(key.try_into().unwrap()), (0..64).collect())
    }

    #[test]
    fn the_64_bit_form_matches_the_reference_vectors() {
        let (key, msg) = reference();
        for (len, expected) in [
            (0, "310e0edd47db6f72"),
            (1, "fd67dc93c539f874"),
            (7, "37d1018bf50002ab"),
            (8, "6224939a79f5f593"),
            (15, "e545be4961ca29a1"),
            (16, "db9bc2577fcc2a3f"),
            (63, "724506eb4c328a95"),
        ] {
            let got = siphash64(key, &msg[..len]).to_le_bytes();
            assert_eq!(got.to_vec(), hex(expected), "length {len}");
        }
        // The paper's worked example (appendix A).
        assert_eq!(siphash64(key, &msg[..15]), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn the_128_bit_form_matches_the_reference_vectors() {
        let (key, msg) = reference();
        for (len, expected) in [
            (0, "a3817f04ba25a8e66df67214c7550293"),
            (1, "da87c1d86b99af44347659119b22fc45"),
            (7, "a1f1ebbed8dbc153c0b84aa61ff08239"),
            (8, "3b62a9ba6258f5610f83e264f31497b4"),
            (15, "5493e99933b0a8117e08ec0f97cfc3d9"),
            (16, "6ee2a4ca67b054bbfd3315bf85230577"),
            (63, "5150d1772f50834a503e069a973fbd7c"),
        ] {
            assert_eq!(
                siphash128(key, &msg[..len]).to_vec(),
                hex(expected),
                "length {len}"
            );
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let (key, _) = reference();
        assert_eq!(format!("{key:?}"), "SipKey(..)");
    }
}
