use super::*;

/// A browser's first request on a connection.
const REQUEST: [(&[u8], &[u8]); 10] = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"shop.example.com"),
    (b":path", b"/products/42?ref=home"),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"cookie", b"session=3f2a9c1e8b7d4a6f"),
    (b"x-custom", b"same every time"),
];

fn decoded(list: &HeaderList) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

fn owned(fields: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

/// Writes an integer with a `prefix_bits`-bit prefix after the `pattern` bits (§5.1).
fn put_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, pattern: u8) {
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
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, s.len(), 7, 0x00);
    out.extend_from_slice(s);
}

/// A literal field with incremental indexing and a new name (RFC 7541 §6.2.1).
fn put_indexed_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x40);
    put_string(out, name);
    put_string(out, value);
}

/// The first entry of the dynamic table, indexed (§6.1).
const FIRST_DYNAMIC: u8 = 0x80 | 62;

fn decoder() -> Decoder {
    Decoder::new(HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE)
}

#[test]
fn a_list_comes_back_as_it_was_encoded_and_smaller_the_second_time() {
    let mut encoder = Encoder::new();
    let mut decoder = decoder();
    let mut list = HeaderList::new();
    let mut first = Vec::new();
    encoder.encode(REQUEST, &mut first);
    decoder.decode(&first, &mut list).unwrap();
    assert_eq!(decoded(&list), owned(&REQUEST));
    let mut second = Vec::new();
    encoder.encode(REQUEST, &mut second);
    decoder.decode(&second, &mut list).unwrap();
    assert_eq!(decoded(&list), owned(&REQUEST));
    // x-custom, not in the static table, is now an index into the dynamic table.
    assert!(second.len() < first.len(), "{second:?}");
}

#[test]
fn rfc7541_c4_requests_with_huffman_coding() {
    let blocks: [&[u8]; 3] = [
        &[
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ],
        &[
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ],
        &[
            0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
            0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
        ],
    ];
    let expected: [&[(&[u8], &[u8])]; 3] = [
        &[
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b":authority", b"www.example.com"),
        ],
        &[
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b":authority", b"www.example.com"),
            (b"cache-control", b"no-cache"),
        ],
        &[
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":path", b"/index.html"),
            (b":authority", b"www.example.com"),
            (b"custom-key", b"custom-value"),
        ],
    ];
    let mut decoder = decoder();
    let mut list = HeaderList::new();
    for (block, want) in blocks.iter().zip(expected) {
        decoder.decode(block, &mut list).unwrap();
        assert_eq!(decoded(&list), owned(want));
    }
}

/// A block of 101 fields of 4 KiB each, in 4 KiB of table and 105 octets of block after
/// the first entry: what it would decode to is 25 times the limit.
fn bomb() -> Vec<u8> {
    let mut block = Vec::new();
    put_indexed_literal(&mut block, b"x", &[b'a'; 4000]);
    block.extend(std::iter::repeat_n(FIRST_DYNAMIC, 100));
    block
}

#[test]
fn the_list_stops_being_stored_at_its_limit() {
    let limit = 16 * 1024;
    let mut decoder = Decoder::new(HEADER_TABLE_SIZE, limit);
    let mut list = HeaderList::new();
    assert_eq!(
        decoder.decode(&bomb(), &mut list),
        Err(DecodeError::ListTooLarge)
    );
    assert!(list.size() <= limit as usize, "{}", list.size());
    assert!(list.bytes.len() <= limit as usize);
    // What fitted is kept: four fields of 4033 octets.
    assert_eq!(list.len(), 4);
}

#[test]
fn a_list_just_within_its_limit_is_whole() {
    let mut block = Vec::new();
    put_indexed_literal(&mut block, b"x", &[b'a'; 4000]);
    block.push(FIRST_DYNAMIC);
    let entry = field_size(b"x", &[b'a'; 4000]) as u32;
    let mut list = HeaderList::new();
    Decoder::new(HEADER_TABLE_SIZE, 2 * entry)
        .decode(&block, &mut list)
        .unwrap();
    assert_eq!(list.size(), 2 * entry as usize);
    assert_eq!(
        Decoder::new(HEADER_TABLE_SIZE, 2 * entry - 1).decode(&block, &mut list),
        Err(DecodeError::ListTooLarge)
    );
}

#[test]
fn a_block_past_the_limit_still_updates_the_table() {
    let mut decoder = Decoder::new(HEADER_TABLE_SIZE, 100);
    let mut list = HeaderList::new();
    let mut block = Vec::new();
    put_indexed_literal(&mut block, b"big", &[b'b'; 200]);
    put_indexed_literal(&mut block, b"small", b"s");
    assert_eq!(
        decoder.decode(&block, &mut list),
        Err(DecodeError::ListTooLarge)
    );
    // "small" was inserted after the field that went over: the table has both.
    decoder.decode(&[FIRST_DYNAMIC], &mut list).unwrap();
    assert_eq!(decoded(&list), owned(&[(b"small", b"s")]));
}

#[test]
fn a_size_update_above_what_we_advertise_is_a_compression_error() {
    let mut block = Vec::new();
    put_integer(&mut block, 4097, 5, 0x20);
    block.push(0x82);
    let mut list = HeaderList::new();
    assert_eq!(
        decoder().decode(&block, &mut list),
        Err(DecodeError::Compression)
    );
    let mut block = Vec::new();
    put_integer(&mut block, 4096, 5, 0x20);
    block.push(0x82);
    decoder().decode(&block, &mut list).unwrap();
}

#[test]
fn a_size_update_after_a_field_is_a_compression_error() {
    let mut list = HeaderList::new();
    assert_eq!(
        decoder().decode(&[0x82, 0x20, 0x84], &mut list),
        Err(DecodeError::Compression)
    );
    // Two at the start are what §4.2 asks of an encoder whose table shrank and grew.
    decoder()
        .decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82], &mut list)
        .unwrap();
}

#[test]
fn a_size_update_at_the_start_evicts() {
    let mut decoder = decoder();
    let mut list = HeaderList::new();
    let mut block = Vec::new();
    put_indexed_literal(&mut block, b"k", b"v");
    decoder.decode(&block, &mut list).unwrap();
    assert_eq!(
        decoder.decode(&[0x20, FIRST_DYNAMIC], &mut list),
        Err(DecodeError::Compression)
    );
}

#[test]
fn a_block_cut_inside_a_size_update_is_an_error_not_a_panic() {
    let mut list = HeaderList::new();
    for block in [
        &[0x3f][..],
        &[0x3f, 0xff],
        &[0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ] {
        assert_eq!(
            decoder().decode(block, &mut list),
            Err(DecodeError::Compression),
            "{block:?}"
        );
    }
}

#[test]
fn a_block_cut_inside_a_field_is_an_error_not_a_panic() {
    let mut list = HeaderList::new();
    for block in [
        &[0x44][..],
        &[0x40, 0x03, b'a'],
        &[0x40, 0x01, b'a', 0x05, b'b'],
        &[0x82, 0xff],
        &[0x0f],
        &[0x10, 0x00],
    ] {
        assert_eq!(
            decoder().decode(block, &mut list),
            Err(DecodeError::Compression),
            "{block:?}"
        );
    }
}

#[test]
fn the_table_starts_at_the_size_we_advertise() {
    let mut decoder = Decoder::new(100, MAX_HEADER_LIST_SIZE);
    let mut list = HeaderList::new();
    let mut block = Vec::new();
    put_indexed_literal(&mut block, b"k", &[b'v'; 100]);
    block.push(FIRST_DYNAMIC);
    assert_eq!(
        decoder.decode(&block, &mut list),
        Err(DecodeError::Compression)
    );
}

#[test]
fn the_encoder_uses_no_more_table_than_the_peer_allows() {
    let fields: [(&[u8], &[u8]); 3] = [
        (b"x-first", b"a value of some thirty octets"),
        (b"x-second", b"a value of some thirty octets"),
        (b"x-third", b"a value of some thirty octets"),
    ];
    let mut encoder = Encoder::new();
    encoder.set_max_table_size(100);
    let mut peer = Decoder::new(100, MAX_HEADER_LIST_SIZE);
    let mut list = HeaderList::new();
    for round in 0..3 {
        let mut block = Vec::new();
        encoder.encode(fields, &mut block);
        if round == 0 {
            assert_eq!(block[..2], [0x3f, 100 - 31], "the size update comes first");
        }
        peer.decode(&block, &mut list).unwrap();
        assert_eq!(decoded(&list), owned(&fields));
    }
}

#[test]
fn two_changes_between_blocks_signal_the_smallest_then_the_last() {
    let mut encoder = Encoder::new();
    encoder.set_max_table_size(0);
    encoder.set_max_table_size(4096);
    let mut block = Vec::new();
    encoder.encode([(&b":status"[..], &b"200"[..])], &mut block);
    assert_eq!(block, [0x20, 0x3f, 0xe1, 0x1f, 0x88]);
    let mut again = Vec::new();
    encoder.encode([(&b":status"[..], &b"200"[..])], &mut again);
    assert_eq!(again, [0x88], "signalled once");
}

#[test]
fn a_larger_peer_setting_changes_nothing() {
    let mut encoder = Encoder::new();
    encoder.set_max_table_size(1 << 20);
    let mut block = Vec::new();
    encoder.encode([(&b":status"[..], &b"200"[..])], &mut block);
    assert_eq!(block, [0x88]);
}

#[test]
fn secrets_and_unique_values_are_never_indexed() {
    for name in [
        &b"set-cookie"[..],
        b"cookie",
        b"authorization",
        b"proxy-authorization",
        b"x-request-id",
    ] {
        let mut encoder = Encoder::new();
        let mut decoder = decoder();
        let mut list = HeaderList::new();
        let field = [(name, &b"secret-value-1234"[..])];
        let mut first = Vec::new();
        encoder.encode(field, &mut first);
        let mut second = Vec::new();
        encoder.encode(field, &mut second);
        let name_shown = String::from_utf8_lossy(name);
        assert_eq!(first[0] & 0xf0, 0x10, "{name_shown}: never indexed");
        assert_eq!(first, second, "{name_shown}: not taken from the table");
        decoder.decode(&second, &mut list).unwrap();
        assert_eq!(decoded(&list), owned(&field));
    }
}

#[test]
fn the_list_size_counts_32_octets_a_field() {
    let mut list = HeaderList::new();
    list.push(b"ab", b"cde");
    list.push(b"", b"");
    assert_eq!(list.size(), 5 + 32 + 32);
    assert_eq!(list.len(), 2);
    list.clear();
    assert!(list.is_empty());
    assert_eq!(list.size(), 0);
}

#[test]
fn a_warm_list_grows_no_more() {
    let mut decoder = decoder();
    let mut encoder = Encoder::new();
    let mut list = HeaderList::new();
    let mut block = Vec::new();
    encoder.encode(REQUEST, &mut block);
    decoder.decode(&block, &mut list).unwrap();
    let capacity = (list.bytes.capacity(), list.fields.capacity());
    for _ in 0..3 {
        block.clear();
        encoder.encode(REQUEST, &mut block);
        decoder.decode(&block, &mut list).unwrap();
        assert_eq!((list.bytes.capacity(), list.fields.capacity()), capacity);
    }
}

#[test]
fn integers_read_as_written() {
    for prefix_bits in [4, 5, 6, 7] {
        for value in [
            0,
            1,
            14,
            15,
            16,
            30,
            31,
            127,
            128,
            1337,
            4096,
            u32::MAX as usize,
        ] {
            let mut out = Vec::new();
            put_integer(&mut out, value, prefix_bits, 0);
            let (read, rest) = wire::integer(&out, prefix_bits).unwrap();
            assert_eq!(
                (read as usize, rest.len()),
                (value, 0),
                "{prefix_bits} {value}"
            );
        }
    }
    // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    let mut out = Vec::new();
    put_integer(&mut out, 1337, 5, 0);
    assert_eq!(out, [31, 154, 10]);
    assert_eq!(
        wire::integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x10], 5),
        None
    );
}
