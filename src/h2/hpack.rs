//! HPACK (RFC 7541) for lb's HTTP/2 codec, around the `loona-hpack` crate. The crate keeps
//! the tables and does the Huffman coding; this module holds what lb must not leave to
//! it:
//! - a decoded header list lives in one reused byte buffer and is counted with the
//!   32-octet overhead as it is decoded, so a small block that names a big table entry
//!   many times stops being stored at the limit (the rest is still decoded, so the table
//!   stays in step with the peer's);
//! - dynamic table size updates are checked before the crate sees the block: none above
//!   what we advertise, none after the first field (§4.2);
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

/// Decodes the header blocks of one direction of one connection.
pub struct Decoder {
    table: loona_hpack::Decoder<'static>,
    max_table_size: u32,
    max_list_size: usize,
}

impl Decoder {
    /// `max_table_size` is the SETTINGS_HEADER_TABLE_SIZE we advertise, `max_list_size`
    /// the SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn new(max_table_size: u32, max_list_size: u32) -> Self {
        let mut table = loona_hpack::Decoder::new();
        // The crate starts at the protocol's 4096; starting at what we advertise means a
        // peer that never sends a size update still cannot make us hold more.
        table.set_max_table_size(max_table_size as usize);
        Self {
            table,
            max_table_size,
            max_list_size: max_list_size as usize,
        }
    }

    /// Decodes one whole header block (HEADERS and its CONTINUATIONs) into `out`,
    /// replacing what it held.
    pub fn decode(&mut self, block: &[u8], out: &mut HeaderList) -> Result<(), DecodeError> {
        out.clear();
        let fields = self.apply_size_updates(block)?;
        if !wire::only_fields(fields) {
            return Err(DecodeError::Compression);
        }
        let limit = self.max_list_size;
        let mut over = false;
        self.table
            .decode_with_cb(fields, |name, value| {
                if !over && out.size().saturating_add(field_size(&name, &value)) <= limit {
                    out.push(&name, &value);
                } else {
                    over = true;
                }
            })
            .map_err(|_| DecodeError::Compression)?;
        if over {
            Err(DecodeError::ListTooLarge)
        } else {
            Ok(())
        }
    }

    /// Applies the dynamic table size updates that open `block` and returns the rest.
    fn apply_size_updates<'b>(&mut self, block: &'b [u8]) -> Result<&'b [u8], DecodeError> {
        let mut rest = block;
        while rest.first().is_some_and(|&b| wire::is_size_update(b)) {
            let (size, after) = wire::integer(rest, 5).ok_or(DecodeError::Compression)?;
            if size > self.max_table_size {
                return Err(DecodeError::Compression);
            }
            self.table.set_max_table_size(size as usize);
            rest = after;
        }
        Ok(rest)
    }
}

/// Fields never put in the encoder's table, with their name's index in the static table
/// (RFC 7541 Appendix A) where it has one: credentials, whose value an attacker who can
/// add fields of its own could guess entry by entry (§7.1.3), and values that differ in
/// every message, which would only push out the entries that repeat.
const NEVER_INDEXED: [(&[u8], Option<usize>); 5] = [
    (b"authorization", Some(23)),
    (b"cookie", Some(32)),
    (b"proxy-authorization", Some(49)),
    (b"set-cookie", Some(55)),
    (b"x-request-id", None),
];

/// Encodes the header blocks of one direction of one connection.
pub struct Encoder {
    table: loona_hpack::Encoder<'static>,
    /// The table size the peer's decoder works with: the protocol's initial one, then the
    /// last one we signalled.
    signalled: u32,
    /// The size updates owed at the start of the next block: the smallest size the table
    /// had since the last block, and the size it has now (§4.2).
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
            table: loona_hpack::Encoder::new(),
            signalled: HEADER_TABLE_SIZE,
            owed: None,
        }
    }

    /// Takes the peer's SETTINGS_HEADER_TABLE_SIZE. The table shrinks at once when the
    /// peer allows less than it has; it never grows past `HEADER_TABLE_SIZE`.
    pub fn set_max_table_size(&mut self, peer_setting: u32) {
        let size = peer_setting.min(HEADER_TABLE_SIZE);
        let (smallest, now) = self.owed.unwrap_or((self.signalled, self.signalled));
        if size == now {
            return;
        }
        self.owed = Some((smallest.min(size), size));
        self.table.set_max_table_size(size as usize);
    }

    /// Encodes one header list as a block, appended to `out`.
    pub fn encode<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        out: &mut Vec<u8>,
    ) {
        if let Some((smallest, now)) = self.owed.take() {
            if smallest < now.min(self.signalled) {
                wire::put_integer(out, smallest as usize, 5, 0x20);
            }
            wire::put_integer(out, now as usize, 5, 0x20);
            self.signalled = now;
        }
        for (name, value) in headers {
            match NEVER_INDEXED
                .iter()
                .find(|(never, _)| name.eq_ignore_ascii_case(never))
            {
                Some(&(_, static_index)) => put_never_indexed(out, name, static_index, value),
                // Writing into a Vec cannot fail.
                None => drop(self.table.encode_header_into((name, value), out)),
            }
        }
    }
}

/// Writes a literal field never indexed (§6.2.3): the peer, and any proxy after it, must
/// not index it either.
fn put_never_indexed(out: &mut Vec<u8>, name: &[u8], static_index: Option<usize>, value: &[u8]) {
    match static_index {
        Some(index) => wire::put_integer(out, index, 4, 0x10),
        None => {
            out.push(0x10);
            wire::put_string(out, name);
        }
    }
    wire::put_string(out, value);
}

#[cfg(test)]
mod tests;
