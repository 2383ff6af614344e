//! The layout of HPACK representations on the wire (RFC 7541 §5, §6), read without
//! decoding strings or touching a table: enough to cut a block into whole representations
//! and to see where a dynamic table size update stands.

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

/// Splits the first representation (§6) off `block`: `None` when the block ends inside
/// it, or an integer in it is out of bounds.
pub(super) fn split_representation(block: &[u8]) -> Option<(&[u8], &[u8])> {
    let &first = block.first()?;
    let rest = if first & 0x80 != 0 {
        integer(block, 7)?.1
    } else if is_size_update(first) {
        integer(block, 5)?.1
    } else {
        let prefix_bits = if first & 0x40 != 0 { 6 } else { 4 };
        let (name_index, rest) = integer(block, prefix_bits)?;
        let rest = if name_index == 0 {
            skip_string(rest)?
        } else {
            rest
        };
        skip_string(rest)?
    };
    Some(block.split_at(block.len() - rest.len()))
}
