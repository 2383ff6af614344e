//! HPACK (RFC 7541) for lb's HTTP/2 codec, around the `httlib-hpack` crate (chosen by
//! measuring it against the other candidates: see benches/hpack.rs and the README). The
//! crate keeps the tables and does the Huffman coding; this module holds what lb must not
//! leave to it:
//! - a block is cut into whole representations before the crate sees any of it, and fed
//!   to it one at a time: the crate indexes past the end of a cut-short input (a panic),
//!   and moves the rest of its input down after each field (quadratic in the block);
//! - a decoded header list lives in one reused byte buffer and is counted with the
//!   32-octet overhead as it is decoded, so a small block that names a big table entry
//!   many times stops being stored at the limit (the rest is still decoded, so the table
//!   stays in step with the peer's);
//! - dynamic table size updates: none above what we advertise, none after the first
//!   field (§4.2);
//! - the encoder signals every change of its table size (§4.2), and never indexes the
//!   fields that are secret or differ in every message (§7.1.3).

use crate::http::head::{MAX_HEADER_BLOCK, MAX_HEADERS, MAX_REQUEST_LINE};

mod wire;

/// The SETTINGS_HEADER_TABLE_SIZE lb advertises, and the most its encoder uses whatever a
/// peer allows: the protocol's initial value (RFC 9113 §6.5.2), so the blocks a client
/// sends before it has read our SETTINGS are already within it. 4 KiB a direction per
/// connection keeps the fields that repeat from one request to the next.
pub const HEADER_TABLE_SIZE: u32 = 4096;

/// The octets RFC 7541 §4.1 (and RFC 9113 §6.5.2) count per field beyond its name and
/// value.
pub const FIELD_OVERHEAD: usize = 32;

/// The SETTINGS_MAX_HEADER_LIST_SIZE lb advertises and enforces: what lb takes in an
/// HTTP/1.1 head (a request line of `MAX_REQUEST_LINE` and a header block of
/// `MAX_HEADER_BLOCK`), plus the overhead of `MAX_HEADERS` fields and of the four
/// pseudo-header fields that carry the request line. A request whose HTTP/1.1 form lb
/// would take is not refused for its size in HTTP/2 (but for a cookie split into more
/// crumbs than there is room for fields); the head it becomes then meets lb's finer
/// HTTP/1 limits (line, block, count) like any other.
pub const MAX_HEADER_LIST_SIZE: u32 =
    (MAX_REQUEST_LINE + MAX_HEADER_BLOCK + FIELD_OVERHEAD * (MAX_HEADERS + 4)) as u32;

/// The size RFC 9113 §6.5.2 counts for one field.
pub fn field_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(FIELD_OVERHEAD)
}

/// A header list: every name and value in one byte buffer, and their places. Cleared and
/// filled again for each block, it allocates nothing once its buffers have grown to the
/// largest list it held.
#[derive(Debug, Default, Clone)]
pub struct HeaderList {
    bytes: Vec<u8>,
    fields: Vec<Field>,
    size: usize,
}

/// Where one field sits in `HeaderList::bytes`: the name is `start..name_end`, the value
/// `name_end..end`.
#[derive(Debug, Clone, Copy)]
struct Field {
    start: usize,
    name_end: usize,
    end: usize,
}

impl HeaderList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
        self.size = 0;
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        let name_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        let end = self.bytes.len();
        self.fields.push(Field {
            start,
            name_end,
            end,
        });
        self.size = self.size.saturating_add(field_size(name, value));
    }

    /// Pushes a field whose name comes from HTTP/1.1, where names are case-insensitive:
    /// HTTP/2 has them lowercase (RFC 9113 §8.2).
    pub fn push_lowercased(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.push(name, value);
        if let Some(stored) = self.bytes.get_mut(start..start + name.len()) {
            stored.make_ascii_lowercase();
        }
    }

    /// The fields in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|f| {
            (
                &self.bytes[f.start..f.name_end],
                &self.bytes[f.name_end..f.end],
            )
        })
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The list's size as RFC 9113 §6.5.2 counts it: names and values, and 32 octets a
    /// field.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Why a header block was not taken whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The block cannot be decoded, or changes the table beyond what we allow: a
    /// COMPRESSION_ERROR, which ends the connection (RFC 9113 §4.3), since the tables of
    /// both sides may no longer agree.
    Compression,
    /// The list is larger than the decoder's `max_list_size`. The block was still decoded
    /// to its end, so the table is in step and the connection can go on; the list holds
    /// the fields that fit before the limit. The caller answers the stream (431), not the
    /// connection.
    ListTooLarge,
}

/// One decoded field, as the crate hands it over: name, value, flags.
type CrateField = (Vec<u8>, Vec<u8>, u8);

/// Decodes the header blocks of one direction of one connection.
pub struct Decoder {
    table: httlib_hpack::Decoder<'static>,
    max_table_size: u32,
    max_list_size: usize,
    /// The representation being decoded: the crate takes its input as a `Vec` it drains.
    representation: Vec<u8>,
    /// What the crate decoded from it: one field at most.
    decoded: Vec<CrateField>,
}

impl Decoder {
    /// `max_table_size` is the SETTINGS_HEADER_TABLE_SIZE we advertise, `max_list_size`
    /// the SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn new(max_table_size: u32, max_list_size: u32) -> Self {
        Self {
            // The table starts at what we advertise (not the protocol's 4096), so a peer
            // that never sends a size update still cannot make us hold more.
            table: httlib_hpack::Decoder::with_dynamic_size(max_table_size),
            max_table_size,
            max_list_size: max_list_size as usize,
            representation: Vec::new(),
            // The crate decodes as many fields as this has room for: one.
            decoded: Vec::with_capacity(1),
        }
    }

    /// Decodes one whole header block (HEADERS and its CONTINUATIONs) into `out`,
    /// replacing what it held.
    pub fn decode(&mut self, block: &[u8], out: &mut HeaderList) -> Result<(), DecodeError> {
        out.clear();
        let mut over = false;
        let mut after_field = false;
        let mut rest = block;
        while !rest.is_empty() {
            let (representation, after) =
                wire::split_representation(rest).ok_or(DecodeError::Compression)?;
            rest = after;
            if representation
                .first()
                .is_some_and(|&b| wire::is_size_update(b))
            {
                let size = wire::integer(representation, 5).map_or(u32::MAX, |(size, _)| size);
                if after_field || size > self.max_table_size {
                    return Err(DecodeError::Compression);
                }
            } else {
                after_field = true;
            }
            self.representation.clear();
            self.representation.extend_from_slice(representation);
            self.table
                .decode_exact(&mut self.representation, &mut self.decoded)
                .map_err(|_| DecodeError::Compression)?;
            for (name, value, _) in self.decoded.drain(..) {
                if !over
                    && out.size().saturating_add(field_size(&name, &value)) <= self.max_list_size
                {
                    out.push(&name, &value);
                } else {
                    over = true;
                }
            }
        }
        if over {
            Err(DecodeError::ListTooLarge)
        } else {
            Ok(())
        }
    }
}

/// Fields never put in the encoder's table, nor in any table after the peer (§6.2.3):
/// credentials, whose value an attacker who can add fields of its own could guess entry
/// by entry (§7.1.3), and lb's request id.
const NEVER_INDEXED: [&[u8]; 5] = [
    b"authorization",
    b"cookie",
    b"proxy-authorization",
    b"set-cookie",
    b"x-request-id",
];

/// Fields whose value differs in nearly every message: sent without indexing, as they
/// would only push out the entries that repeat.
const NOT_INDEXED: [&[u8]; 5] = [
    b":path",
    b"content-length",
    b"etag",
    b"last-modified",
    b"location",
];

/// How the crate is to encode a field.
fn flags(name: &[u8], value: &[u8]) -> u8 {
    use httlib_hpack::Encoder as E;
    let listed = |list: &[&[u8]]| list.iter().any(|n| name.eq_ignore_ascii_case(n));
    let indexing = if listed(&NEVER_INDEXED) {
        E::NEVER_INDEXED
    } else if listed(&NOT_INDEXED) {
        0
    } else {
        E::WITH_INDEXING
    };
    // Huffman coding shortens text, but can make other octets up to 3.75 times longer.
    let text = |s: &[u8]| s.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
    let huffman_name = if text(name) { E::HUFFMAN_NAME } else { 0 };
    let huffman_value = if text(value) { E::HUFFMAN_VALUE } else { 0 };
    E::BEST_FORMAT | indexing | huffman_name | huffman_value
}

/// Encodes the header blocks of one direction of one connection.
pub struct Encoder {
    table: httlib_hpack::Encoder<'static>,
    /// The table size the peer's decoder works with: the protocol's initial one, then the
    /// last one we signalled.
    signalled: u32,
    /// The size updates owed at the start of the next block: the smallest size the peer
    /// allowed since the last block, and the size to use now (§4.2).
    owed: Option<(u32, u32)>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self {
            table: httlib_hpack::Encoder::with_dynamic_size(HEADER_TABLE_SIZE),
            signalled: HEADER_TABLE_SIZE,
            owed: None,
        }
    }

    /// Takes the peer's SETTINGS_HEADER_TABLE_SIZE. The table follows at the start of the
    /// next block, before any field is encoded; it never grows past `HEADER_TABLE_SIZE`.
    pub fn set_max_table_size(&mut self, peer_setting: u32) {
        let size = peer_setting.min(HEADER_TABLE_SIZE);
        let (smallest, now) = self.owed.unwrap_or((self.signalled, self.signalled));
        if size != now {
            self.owed = Some((smallest.min(size), size));
        }
    }

    /// Encodes one header list as a block, appended to `out`.
    pub fn encode<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        out: &mut Vec<u8>,
    ) {
        // The crate fails only on what cannot come from here: an index not in its table
        // (it looks them up itself: BEST_FORMAT), a string of 4 GiB, a bad prefix size.
        if let Some((smallest, now)) = self.owed.take() {
            if smallest < now.min(self.signalled) {
                let _ = self.table.update_max_dynamic_size(smallest, out);
            }
            let _ = self.table.update_max_dynamic_size(now, out);
            self.signalled = now;
        }
        for (name, value) in headers {
            let field = (name.to_vec(), value.to_vec(), flags(name, value));
            let _ = self.table.encode(field, out);
        }
    }
}

#[cfg(test)]
mod tests;
