//! Segments written by an lb from before records were authenticated (format 1), read once
//! on upgrade so that the writes they owe are not lost, then written anew in the current
//! format. Each record was
//!
//! ```text
//! magic "LBJ1" | payload length u32 | CRC-32C of the payload u32 | payload
//! ```
//!
//! with 64-bit job ids. Nothing but a checksum anyone can compute stands between request
//! bytes and a record here, so a reader never looks past the first record that is not
//! whole: records are read only in the chain of lengths from the segment's start.

use super::record::{Read, decode};

/// Marks the start of every format 1 record: "LBJ1".
pub const MAGIC: [u8; 4] = *b"LBJ1";
const HEADER: usize = 12;
const MAX_PAYLOAD: usize = 1 << 30;

/// What is at `buf[pos..]`: a record, `Short` when the bytes end inside one (a write cut
/// short), or `Lost` for anything else.
pub fn read_at(buf: &[u8], pos: usize) -> Read<'_> {
    let Some(header) = buf.get(pos..pos + HEADER) else {
        return Read::Short;
    };
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, crc) = (word(4) as usize, word(8));
    if header[..4] != MAGIC || len > MAX_PAYLOAD {
        return Read::Lost;
    }
    let Some(payload) = buf.get(pos + HEADER..pos + HEADER + len) else {
        return Read::Short;
    };
    match decode(payload, 8) {
        Some(record) if crc32c(payload) == crc => Read::Record(record, pos + HEADER + len),
        _ => Read::Lost,
    }
}

/// CRC-32C (Castagnoli), the checksum of ext4, iSCSI and most logs: it catches every
/// burst error up to 32 bits.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Format 1 records as the lb of that format wrote them, for the tests of reading them.
#[cfg(test)]
pub mod write {
    use super::*;

    pub fn job(out: &mut Vec<u8>, id: u64, backends: &[&str], request: &[u8]) {
        let mut p = vec![1];
        p.extend_from_slice(&id.to_le_bytes());
        put(&mut p, b"rid");
        p.extend_from_slice(&(backends.len() as u32).to_le_bytes());
        for b in backends {
            put(&mut p, b.as_bytes());
        }
        put(&mut p, request);
        record(out, &p);
    }

    pub fn delivered(out: &mut Vec<u8>, id: u64, backend: &str) {
        let mut p = vec![2];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        put(&mut p, backend.as_bytes());
        record(out, &p);
    }

    fn put(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    fn record(out: &mut Vec<u8>, payload: &[u8]) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c(payload).to_le_bytes());
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answers() {
        // RFC 3720 B.4 test vectors.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
