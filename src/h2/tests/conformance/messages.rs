//! RFC 9113 §8: trailers, content-length against DATA, and push.

use super::Expect::{Fine, GoAway, Reset};
use super::{Case, open, with_length};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::tests::client::{Ev, REQUEST, data, raw};

pub const CASES: &[Case] = &[
    Case {
        name: "8.1 trailers end the request",
        run: |c| {
            open(c, 1);
            c.send(&data(1, b"body", false));
            let f = c.headers_frame(1, &[(b"x-checksum", b"1")], true);
            assert_eq!(c.send(&f), [Ev::Trailers(1)]);
        },
        expect: Fine,
    },
    Case {
        name: "8.1 trailers without END_STREAM -> stream PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            let f = c.headers_frame(1, &[(b"x-checksum", b"1")], false);
            c.send(&f);
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 content-length matching the DATA is fine",
        run: |c| {
            with_length(c, 1, b"5", false);
            c.send(&data(1, b"12", false));
            c.send(&data(1, b"345", true));
        },
        expect: Fine,
    },
    Case {
        name: "8.1.1 less DATA than content-length -> stream PROTOCOL_ERROR",
        run: |c| {
            with_length(c, 1, b"5", false);
            c.send(&data(1, b"1234", true));
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 more DATA than content-length -> stream PROTOCOL_ERROR",
        run: |c| {
            with_length(c, 1, b"2", false);
            c.send(&data(1, b"123", false));
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 content-length on a HEADERS with END_STREAM -> stream PROTOCOL_ERROR",
        run: |c| with_length(c, 1, b"3", true),
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 content-length of 0 with END_STREAM on HEADERS is fine",
        run: |c| with_length(c, 1, b"0", true),
        expect: Fine,
    },
    Case {
        name: "8.1.1 a content-length that is not a number -> stream PROTOCOL_ERROR",
        run: |c| with_length(c, 1, b"5x", false),
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 two different content-lengths -> stream PROTOCOL_ERROR",
        run: |c| {
            let mut fields = REQUEST.to_vec();
            fields.push((b"content-length", b"1"));
            fields.push((b"content-length", b"2"));
            let f = c.headers_frame(1, &fields, false);
            c.send(&f);
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.1.1 trailers before the content-length is reached -> stream PROTOCOL_ERROR",
        run: |c| {
            with_length(c, 1, b"5", false);
            c.send(&data(1, b"12", false));
            let f = c.headers_frame(1, &[(b"x-checksum", b"1")], true);
            c.send(&f);
        },
        expect: Reset(1, ErrorCode::PROTOCOL_ERROR),
    },
    Case {
        name: "8.4 PUSH_PROMISE from a client -> PROTOCOL_ERROR",
        run: |c| {
            open(c, 1);
            c.send(&raw(
                kind::PUSH_PROMISE,
                flag::END_HEADERS,
                1,
                &[0, 0, 0, 2],
            ));
        },
        expect: GoAway(ErrorCode::PROTOCOL_ERROR),
    },
];
