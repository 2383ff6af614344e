//! RFC 9113 §6: each frame type's own rules, flow control and SETTINGS.

use super::Expect::{Answers, Fine, GoAway, Reset};
use super::{Case, open, started_block};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::settings::id;
use crate::h2::tests::client::{Ev, REQUEST, data, ping, raw, rst, settings, window_update};

pub const CASES: &[Case] = &[
    Case {
        name: "6.1 DATA on stream 0 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&data(0, b"x", false));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.1 DATA with padding as long as its payload -> PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&raw(kind::DATA, flag::PADDED, 1, &[4, 0, 0, 0]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.1 padded DATA delivers only the data",
        run: |c| {
            open(c, 1);
            let events = c.send(&raw(
                kind::DATA,
                flag::PADDED | flag::END_STREAM,
                1,
                &[2, b'h', b'i', 0, 0],
            ));
            assert_eq!(
                events,
                [Ev::Data {
                    stream: 1,
                    data: b"hi".to_vec(),
                    end_stream: true
                }]
            );
        },
        expect: Fine,
    },
    Case {
        name: "6.2 HEADERS on stream 0 -> PROTOCOL_ERROR",
        run: |c| {
            let f = c.request(0, true);
            c.send(&f);
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.2 HEADERS with padding longer than its payload -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(
                kind::HEADERS,
                flag::END_HEADERS | flag::PADDED,
                1,
                &[9, 0, 0],
            ));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.2 HEADERS with padding and priority fields is a request",
        run: |c| {
            let mut payload = vec![2, 0, 0, 0, 0, 16];
            payload.extend(c.block(REQUEST));
            payload.extend([0, 0]);
            let flags = flag::END_HEADERS | flag::END_STREAM | flag::PADDED | flag::PRIORITY;
            let events = c.send(&raw(kind::HEADERS, flags, 1, &payload));
            assert!(
                matches!(&events[..], [Ev::Request { stream: 1, headers, end_stream: true }] if headers.len() == 4),
                "{events:?}"
            );
        },
        expect: Fine,
    },
    Case {
        name: "6.3 PRIORITY on stream 0 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.3 PRIORITY of length 4 -> stream FRAME_SIZE_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 3]));
        },
        expect: Reset(1, ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.4 RST_STREAM on stream 0 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&rst(0, ErrorCode::CANCEL));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.4 RST_STREAM of length 3 -> FRAME_SIZE_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&raw(kind::RST_STREAM, 0, 1, &[0, 0, 8]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.5 SETTINGS on a stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(kind::SETTINGS, 0, 1, &[]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.5 SETTINGS with a length not a multiple of 6 -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.5 SETTINGS ack with a payload -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::SETTINGS, flag::ACK, 0, &[0, 3, 0, 0, 0, 1]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.5.2 SETTINGS_ENABLE_PUSH of 2 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&settings(&[(id::ENABLE_PUSH, 2)]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.5.2 SETTINGS_INITIAL_WINDOW_SIZE of 2^31 -> FLOW_CONTROL_ERROR",
        run: |c| {
            c.send(&settings(&[(id::INITIAL_WINDOW_SIZE, 1 << 31)]));
        },
        expect: GoAway(ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.5.2 SETTINGS_MAX_FRAME_SIZE of 16383 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&settings(&[(id::MAX_FRAME_SIZE, 16_383)]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.5.2 SETTINGS_MAX_FRAME_SIZE of 2^24 -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&settings(&[(id::MAX_FRAME_SIZE, 1 << 24)]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.5.2 an unknown setting is ignored and acknowledged",
        run: |c| {
            c.send(&settings(&[(0xff, 7)]));
        },
        expect: Answers(kind::SETTINGS, flag::ACK),
    },
    Case {
        name: "6.5.3 SETTINGS is acknowledged",
        run: |c| {
            c.send(&settings(&[(id::MAX_FRAME_SIZE, 20_000)]));
        },
        expect: Answers(kind::SETTINGS, flag::ACK),
    },
    Case {
        name: "6.7 PING is answered with an ACK carrying its payload",
        run: |c| {
            c.send(&ping());
            let sent = c.take_sent();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].payload, b"12345678");
            c.sent = sent;
        },
        expect: Answers(kind::PING, flag::ACK),
    },
    Case {
        name: "6.7 a PING ack is not answered",
        run: |c| {
            c.send(&raw(kind::PING, flag::ACK, 0, b"12345678"));
            assert!(c.take_sent().is_empty());
        },
        expect: Fine,
    },
    Case {
        name: "6.7 PING on a stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(kind::PING, 0, 1, b"12345678"));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.7 PING of length 7 -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::PING, 0, 0, b"1234567"));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.8 GOAWAY on a stream -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(kind::GOAWAY, 0, 1, &[0; 8]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.8 GOAWAY shorter than 8 octets -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::GOAWAY, 0, 0, &[0; 7]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.8 the client's GOAWAY is passed on",
        run: |c| {
            let events = c.send(&raw(
                kind::GOAWAY,
                0,
                0,
                &[0, 0, 0, 0, 0, 0, 0, 0, b'b', b'y', b'e'],
            ));
            assert_eq!(events, [Ev::GoAway(0, ErrorCode::NO_ERROR)]);
        },
        expect: Fine,
    },
    Case {
        name: "6.9 WINDOW_UPDATE of 0 on the connection -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&window_update(0, 0));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.9 WINDOW_UPDATE of 0 on a stream -> stream PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&window_update(1, 0));
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.9 WINDOW_UPDATE of length 3 -> FRAME_SIZE_ERROR",
        run: |c| {
            c.send(&raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1]));
        },
        expect: GoAway(ErrorCode::FRAME_SIZE_ERROR),
    },
    Case {
        name: "6.9.1 the connection window past 2^31-1 -> FLOW_CONTROL_ERROR",
        run: |c| {
            c.send(&window_update(0, (1 << 31) - 1));
        },
        expect: GoAway(ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.9.1 a stream window past 2^31-1 -> stream FLOW_CONTROL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&window_update(1, (1 << 31) - 1));
        },
        expect: Reset(1, ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.9.1 DATA beyond the stream's window -> stream FLOW_CONTROL_ERROR",
        run: |c| {
            open(c, 1);
            for _ in 0..4 {
                c.send(&data(1, &[0; 16_384], false));
            }
        },
        expect: Reset(1, ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.9.1 DATA beyond the connection's window -> FLOW_CONTROL_ERROR",
        run: |c| {
            // Streams of 60 KiB each, never consumed: the 1 MiB connection window runs out.
            for stream in (1..40).step_by(2) {
                open(c, stream);
                for _ in 0..4 {
                    c.send(&data(stream, &[0; 15_000], false));
                }
            }
        },
        expect: GoAway(ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.9.2 a SETTINGS_INITIAL_WINDOW_SIZE change past 2^31-1 -> FLOW_CONTROL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&window_update(1, (1 << 31) - 1 - 65_535));
            c.send(&settings(&[(id::INITIAL_WINDOW_SIZE, 65_536)]));
        },
        expect: GoAway(ErrorCode::FLOW_CONTROL_ERROR),
    },
    Case {
        name: "6.10 CONTINUATION without HEADERS -> PROTOCOL_ERROR",
        run: |c| {
            c.send(&raw(kind::CONTINUATION, flag::END_HEADERS, 1, &[]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.10 CONTINUATION on another stream -> PROTOCOL_ERROR",
        run: |c| {
            let f = started_block(c);
            c.send(&f);
            c.send(&raw(kind::CONTINUATION, flag::END_HEADERS, 3, &[]));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.10 DATA inside a header block -> PROTOCOL_ERROR",
        run: |c| {
            let f = started_block(c);
            c.send(&f);
            c.send(&data(1, b"x", false));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "6.10 a header block split across CONTINUATIONs is one request",
        run: |c| {
            let block = c.block(REQUEST);
            let (a, b) = block.split_at(block.len() / 2);
            c.send(&raw(kind::HEADERS, flag::END_STREAM, 1, a));
            c.send(&raw(kind::CONTINUATION, 0, 1, &[]));
            let events = c.send(&raw(kind::CONTINUATION, flag::END_HEADERS, 1, b));
            assert!(
                matches!(&events[..], [Ev::Request { stream: 1, headers, end_stream: true }] if headers.len() == 4),
                "{events:?}"
            );
        },
        expect: Fine,
    },
];
