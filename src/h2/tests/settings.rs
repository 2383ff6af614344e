//! SETTINGS values (§6.5.2).

use crate::h2::error::ErrorCode;
use crate::h2::settings::{Settings, id};

fn params(list: &[(u16, u32)]) -> Vec<u8> {
    list.iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect()
}

/// A case: its name, one parameter, and what applying it gives.
type Case = (&'static str, (u16, u32), Result<(), ErrorCode>);

#[test]
fn section_6_5_2_values_are_checked() {
    let cases: &[Case] = &[
        ("ENABLE_PUSH 0", (id::ENABLE_PUSH, 0), Ok(())),
        ("ENABLE_PUSH 1", (id::ENABLE_PUSH, 1), Ok(())),
        (
            "ENABLE_PUSH 2 -> PROTOCOL_ERROR",
            (id::ENABLE_PUSH, 2),
            Err(ErrorCode::PROTOCOL_ERROR),
        ),
        (
            "INITIAL_WINDOW_SIZE 2^31-1",
            (id::INITIAL_WINDOW_SIZE, (1 << 31) - 1),
            Ok(()),
        ),
        (
            "INITIAL_WINDOW_SIZE 2^31 -> FLOW_CONTROL_ERROR",
            (id::INITIAL_WINDOW_SIZE, 1 << 31),
            Err(ErrorCode::FLOW_CONTROL_ERROR),
        ),
        ("MAX_FRAME_SIZE 16384", (id::MAX_FRAME_SIZE, 16_384), Ok(())),
        (
            "MAX_FRAME_SIZE 2^24-1",
            (id::MAX_FRAME_SIZE, (1 << 24) - 1),
            Ok(()),
        ),
        (
            "MAX_FRAME_SIZE 16383 -> PROTOCOL_ERROR",
            (id::MAX_FRAME_SIZE, 16_383),
            Err(ErrorCode::PROTOCOL_ERROR),
        ),
        (
            "MAX_FRAME_SIZE 2^24 -> PROTOCOL_ERROR",
            (id::MAX_FRAME_SIZE, 1 << 24),
            Err(ErrorCode::PROTOCOL_ERROR),
        ),
        ("an unknown id is ignored", (0x99, 12345), Ok(())),
    ];
    for (name, param, expected) in cases {
        let mut settings = Settings::default();
        assert_eq!(settings.apply(&params(&[*param])), *expected, "{name}");
    }
}

#[test]
fn section_6_5_3_values_apply_in_order() {
    let mut settings = Settings::default();
    let list = [
        (id::HEADER_TABLE_SIZE, 0),
        (id::MAX_CONCURRENT_STREAMS, 10),
        (id::INITIAL_WINDOW_SIZE, 1),
        (id::INITIAL_WINDOW_SIZE, 2),
        (id::MAX_HEADER_LIST_SIZE, 4000),
    ];
    settings.apply(&params(&list)).unwrap();
    assert_eq!(settings.header_table_size, 0);
    assert_eq!(settings.max_concurrent_streams, 10);
    assert_eq!(settings.initial_window_size, 2);
    assert_eq!(settings.max_header_list_size, 4000);
    assert_eq!(
        settings.changed().collect::<Vec<_>>(),
        [
            (id::HEADER_TABLE_SIZE, 0),
            (id::MAX_CONCURRENT_STREAMS, 10),
            (id::INITIAL_WINDOW_SIZE, 2),
            (id::MAX_HEADER_LIST_SIZE, 4000),
        ]
    );
    assert_eq!(Settings::default().changed().count(), 0);
}
