//! RFC 9113 §4 (frame format and sizes) and §5 (stream states, identifiers, priority,
//! extensions).

use super::Expect::{Fine, GoAway, Reset};
use super::{Case, open, started_block};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::tests::client::{Ev, REQUEST, data, raw, rst, window_update};

pub const CASES: &[Case] = &[
    Case {
        name: "4.1 a frame of unknown type is ignored",
        run: |c| {
            c.send(&raw(0xfa, 0, 0, b"anything"));
        },
        expect: Fine,
    },
    Case {
        name: "4.1 the reserved bit of a stream id is ignored",
        run: |c| {
            let mut f = c.request(1, true);
            f[5] |= 0x80;
            let events = c.send(&f);
            assert!(
                matches!(events[..], [Ev::Request { stream: 1, .. }]),
                "{events:?}"
            );
        },
        expect: Fine,
    },
    Case {
        name: "4.2 DATA of 16384 octets is within the default max frame size",
        run: |c| {
            open(c, 1);
            c.send(&data(1, &[0; 16_384], false));
        },
        expect: Fine,
    },
    Case {
        name: "4.2 DATA larger than SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&data(1, &[0; 16_385], false));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "4.2 HEADERS larger than SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::HEADERS, flag::END_HEADERS, 1, &[0; 16_385]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "4.3 a header block that does not decode -> COMPRESSION_ERROR",
        run: |c| {
            // Index 0 is never valid (RFC 7541 §6.1).
            c.send(&raw(kind::HEADERS, flag::END_HEADERS, 1, &[0x80]));
        },
        expect: GoAway(ErrorCode::COMPRESSION_ERROR),
    },
    Case {
        name: "5.1 DATA on an idle stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&data(1, b"x", false));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.1 RST_STREAM on an idle stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&rst(1, ErrorCode::CANCEL));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.1 WINDOW_UPDATE on an idle stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&window_update(1, 100));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.1 PRIORITY on an idle stream is allowed",
        run: |c| {
            c.send(&raw(kind::PRIORITY, 0, 3, &[0, 0, 0, 0, 16]));
        },
        expect: Fine,
    },
    Case {
        name: "5.1 DATA on a half-closed (remote) stream -> STREAM_CLOSED",
        run: |c| {
            let f = c.request(1, true);
            c.send(&f);
            c.send(&data(1, b"x", false));
        },
        expect: Reset(1, ErrorCode::STREAM_CLOSED),
    },
    Case {
        name: "5.1 HEADERS on a half-closed (remote) stream -> STREAM_CLOSED",
        run: |c| {
            let f = c.request(1, true);
            c.send(&f);
            let f = c.request(1, true);
            c.send(&f);
        },
        expect: Reset(1, ErrorCode::STREAM_CLOSED),
    },
    Case {
        name: "5.1 DATA on a stream the client reset -> STREAM_CLOSED",
        run: |c| {
            open(c, 1);
            c.send(&rst(1, ErrorCode::CANCEL));
            c.send(&data(1, b"x", false));
        },
        expect: Reset(1, ErrorCode::STREAM_CLOSED),
    },
    Case {
        name: "5.1 PRIORITY, WINDOW_UPDATE and RST_STREAM on a closed stream are ignored",
        run: |c| {
            open(c, 1);
            c.send(&rst(1, ErrorCode::CANCEL));
            c.send(&raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]));
            c.send(&window_update(1, 10));
            c.send(&rst(1, ErrorCode::CANCEL));
        },
        expect: Fine,
    },
    Case {
        name: "5.1 frames in flight after the server's RST_STREAM are ignored",
        run: |c| {
            open(c, 1);
            c.conn.send_reset(1, ErrorCode::CANCEL);
            c.take_sent();
            c.send(&data(1, b"in flight", false));
            let f = c.request(1, true);
            c.send(&f);
        },
        expect: Fine,
    },
    Case {
        name: "5.1.1 an even stream id -> PROTOCOL_ERROR",
        run: |c| {
            let f = c.request(2, true);
            c.send(&f);
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.1.1 a stream id lower than one already used -> PROTOCOL_ERROR",
        run: |c| {
            open(c, 5);
            open(c, 3);
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.1.1 HEADERS reusing a closed stream's id -> PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&rst(1, ErrorCode::CANCEL));
            open(c, 1);
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.3.1 HEADERS depending on its own stream -> stream PROTOCOL_ERROR",
        run: |c| {
            let mut payload = vec![0, 0, 0, 1, 16];
            payload.extend(c.block(REQUEST));
            c.send(&raw(
                kind::HEADERS,
                flag::END_HEADERS | flag::PRIORITY,
                1,
                &payload,
            ));
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.3.1 PRIORITY depending on its own stream -> stream PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 16]));
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "5.5 an unknown frame inside a header block -> PROTOCOL_ERROR",
        run: |c| {
            let f = started_block(c);
            c.send(&f);
            c.send(&raw(0xfa, 0, 1, b""));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
];
