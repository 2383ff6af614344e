//! HPACK decoding: arbitrary header blocks, several per input through one decoder (so the
//! dynamic table carries from one block to the next, as on a connection), never panic,
//! and the header list held never exceeds the decoder's limit, nor misstates its size,
//! whether the block was taken or refused.
//!
//! Input: one byte picks the table size we advertise; then blocks, each a length byte
//! and that many bytes.
#![no_main]

use lb::h2::hpack::{DecodeError, Decoder, FIELD_OVERHEAD, HeaderList};
use libfuzzer_sys::fuzz_target;

/// Small, so that blocks of a few hundred bytes reach it.
const MAX_LIST_SIZE: u32 = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let table_size = [0, 64, 256, 4096][usize::from(pick & 3)];
    let mut decoder = Decoder::new(table_size, MAX_LIST_SIZE);
    let mut list = HeaderList::new();
    while let Some((&len, after)) = rest.split_first() {
        let (block, after) = after.split_at(usize::from(len).min(after.len()));
        rest = after;
        let result = decoder.decode(block, &mut list);
        assert!(list.size() <= MAX_LIST_SIZE as usize, "{}", list.size());
        let counted: usize = list
            .iter()
            .map(|(name, value)| name.len() + value.len() + FIELD_OVERHEAD)
            .sum();
        assert_eq!(counted, list.size());
        // A COMPRESSION_ERROR ends the connection: no block follows it.
        if result == Err(DecodeError::Compression) {
            break;
        }
    }
});
