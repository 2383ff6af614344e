//! The layout of HPACK representations on the wire (RFC 7541 §5, §6), read without
//! decoding strings or touching a table: enough to find where each representation starts,
//! and so where a dynamic table size update stands. Also the few representations the
//! encoder writes itself.

/// The first octet of a dynamic table size update (§6.3) is `001xxxxx`.
pub(super) fn is_size_update(first: u8) -> bool {
    first & 0xe0 == 0x20
}

/// Reads an integer with a `prefix_bits`-bit prefix (§5.1). `None` when the input ends
/// inside it, or it has more continuation octets or a larger value than any field of a
/// header block can use (lengths, indices and table sizes all fit a `u32`).
pub(super) fn integer(buf: &[u8], prefix_bits: u32) -> Option<(u32, &[u8])> {
    let (&first, mut rest) = buf.split_first()?;
    let mask = u8::MAX >> (8 - prefix_bits);
    if first & mask < mask {
        return Some((u32::from(first & mask), rest));
    }
    let mut value = u64::from(mask);
    for shift in (0..=28).step_by(7) {
        let (&octet, after) = rest.split_first()?;
        rest = after;
        value = value.saturating_add(u64::from(octet & 0x7f) << shift);
        if octet & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, rest));
        }
    }
    None
}

/// Skips a string literal (§5.2): its length, then that many octets.
fn skip_string(buf: &[u8]) -> Option<&[u8]> {
    let (len, rest) = integer(buf, 7)?;
    rest.get(usize::try_from(len).ok()?..)
}

/// Skips one field representation (§6.1, §6.2) whose first octet is `first`.
fn skip_field(buf: &[u8], first: u8) -> Option<&[u8]> {
    if first & 0x80 != 0 {
        return integer(buf, 7).map(|(_, rest)| rest);
    }
    let prefix_bits = if first & 0x40 != 0 { 6 } else { 4 };
    let (name_index, rest) = integer(buf, prefix_bits)?;
    let rest = if name_index == 0 {
        skip_string(rest)?
    } else {
        rest
    };
    skip_string(rest)
}

/// Whether `fields` (a block after its leading size updates) is a run of whole field
/// representations with no size update among them: §4.2 allows one only at the start.
pub(super) fn only_fields(mut fields: &[u8]) -> bool {
    while let Some(&first) = fields.first() {
        if is_size_update(first) {
            return false;
        }
        match skip_field(fields, first) {
            Some(rest) => fields = rest,
            None => return false,
        }
    }
    true
}

/// Writes an integer with a `prefix_bits`-bit prefix after the `pattern` bits (§5.1).
pub(super) fn put_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, pattern: u8) {
    let mask = u8::MAX >> (8 - prefix_bits);
    let Some(mut rest) = value.checked_sub(usize::from(mask)) else {
        // Below the mask, so it fits the prefix.
        out.push(pattern | value as u8);
        return;
    };
    out.push(pattern | mask);
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Writes a string literal without Huffman coding (§5.2).
pub(super) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, s.len(), 7, 0x00);
    out.extend_from_slice(s);
}
