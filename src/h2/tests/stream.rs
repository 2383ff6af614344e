//! The stream state machine (§5.1) and content-length against DATA (§8.1.1).

use crate::h2::error::{Error, ErrorCode};
use crate::h2::stream::{BodyLength, NotSendable, State, Step};

use State::*;

const HEADERS: Step = Step::Headers { end_stream: false };
const HEADERS_END: Step = Step::Headers { end_stream: true };
const DATA: Step = Step::Data { end_stream: false };
const DATA_END: Step = Step::Data { end_stream: true };

#[test]
fn section_5_1_received_frames() {
    let stream = |code| Err(Error::Stream(9, code));
    let connection = |code| Err(Error::Connection(code));
    let cases: &[(&str, State, Step, Result<State, Error>)] = &[
        ("idle: HEADERS opens", Idle, HEADERS, Ok(Open)),
        (
            "idle: HEADERS with END_STREAM half-closes",
            Idle,
            HEADERS_END,
            Ok(HalfClosedRemote),
        ),
        (
            "idle: DATA -> PROTOCOL_ERROR",
            Idle,
            DATA,
            connection(ErrorCode::PROTOCOL_ERROR),
        ),
        (
            "idle: RST_STREAM -> PROTOCOL_ERROR",
            Idle,
            Step::Reset,
            connection(ErrorCode::PROTOCOL_ERROR),
        ),
        ("open: DATA", Open, DATA, Ok(Open)),
        (
            "open: DATA with END_STREAM",
            Open,
            DATA_END,
            Ok(HalfClosedRemote),
        ),
        ("open: trailers", Open, HEADERS_END, Ok(HalfClosedRemote)),
        (
            "8.1 open: HEADERS without END_STREAM",
            Open,
            HEADERS,
            stream(ErrorCode::PROTOCOL_ERROR),
        ),
        ("open: RST_STREAM closes", Open, Step::Reset, Ok(Closed)),
        (
            "half-closed (local): DATA",
            HalfClosedLocal,
            DATA,
            Ok(HalfClosedLocal),
        ),
        (
            "half-closed (local): END_STREAM closes",
            HalfClosedLocal,
            DATA_END,
            Ok(Closed),
        ),
        (
            "half-closed (local): trailers close",
            HalfClosedLocal,
            HEADERS_END,
            Ok(Closed),
        ),
        (
            "half-closed (remote): DATA -> STREAM_CLOSED",
            HalfClosedRemote,
            DATA,
            stream(ErrorCode::STREAM_CLOSED),
        ),
        (
            "half-closed (remote): HEADERS -> STREAM_CLOSED",
            HalfClosedRemote,
            HEADERS_END,
            stream(ErrorCode::STREAM_CLOSED),
        ),
        (
            "half-closed (remote): RST_STREAM closes",
            HalfClosedRemote,
            Step::Reset,
            Ok(Closed),
        ),
        (
            "closed: DATA -> STREAM_CLOSED",
            Closed,
            DATA,
            stream(ErrorCode::STREAM_CLOSED),
        ),
        (
            "closed: HEADERS -> STREAM_CLOSED",
            Closed,
            HEADERS,
            stream(ErrorCode::STREAM_CLOSED),
        ),
        ("closed: RST_STREAM", Closed, Step::Reset, Ok(Closed)),
    ];
    for (name, state, step, expected) in cases {
        assert_eq!(state.received(9, *step), *expected, "5.1 {name}");
    }
}

#[test]
fn section_5_1_sent_frames() {
    let cases: &[(&str, State, Step, Result<State, NotSendable>)] = &[
        ("open: answer", Open, HEADERS, Ok(Open)),
        ("open: answer ends", Open, DATA_END, Ok(HalfClosedLocal)),
        (
            "half-closed (remote): answer",
            HalfClosedRemote,
            DATA,
            Ok(HalfClosedRemote),
        ),
        (
            "half-closed (remote): answer ends",
            HalfClosedRemote,
            HEADERS_END,
            Ok(Closed),
        ),
        (
            "half-closed (remote): reset",
            HalfClosedRemote,
            Step::Reset,
            Ok(Closed),
        ),
        (
            "half-closed (local): nothing more",
            HalfClosedLocal,
            DATA,
            Err(NotSendable),
        ),
        (
            "half-closed (local): reset",
            HalfClosedLocal,
            Step::Reset,
            Ok(Closed),
        ),
        (
            "idle: a server does not push",
            Idle,
            HEADERS,
            Err(NotSendable),
        ),
        ("closed: nothing", Closed, Step::Reset, Err(NotSendable)),
    ];
    for (name, state, step, expected) in cases {
        assert_eq!(state.sent(*step), *expected, "5.1 {name}");
    }
}

#[test]
fn section_5_1_2_which_states_count_as_concurrent() {
    let active: Vec<bool> = [Idle, Open, HalfClosedLocal, HalfClosedRemote, Closed]
        .iter()
        .map(|s| s.is_active())
        .collect();
    assert_eq!(active, [false, true, true, true, false]);
}

#[test]
fn section_8_1_1_content_length_against_data() {
    let one = |v: &'static [u8]| BodyLength::new(std::iter::once(v));
    let err = Err(ErrorCode::PROTOCOL_ERROR);
    assert_eq!(one(b"").map(|_| ()), err, "empty");
    assert_eq!(one(b"-1").map(|_| ()), err, "signed");
    assert_eq!(one(b"1 ").map(|_| ()), err, "trailing space");
    assert_eq!(one(b"99999999999999999999").map(|_| ()), err, "past u64");
    assert_eq!(
        BodyLength::new([&b"3"[..], b"03"].into_iter()).map(|_| ()),
        Ok(()),
        "same number"
    );
    assert_eq!(
        BodyLength::new([&b"3"[..], b"4"].into_iter()).map(|_| ()),
        err,
        "two numbers"
    );

    let mut body = one(b"10").unwrap();
    assert_eq!(body.data(4, false), Ok(()));
    assert_eq!(body.data(6, false), Ok(()));
    assert_eq!(body.data(0, true), Ok(()));
    let mut body = one(b"10").unwrap();
    assert_eq!(body.data(11, false), err, "past the length");
    let mut body = one(b"10").unwrap();
    assert_eq!(body.data(9, true), err, "short at END_STREAM");
    let mut body = BodyLength::new(std::iter::empty()).unwrap();
    assert_eq!(body.data(usize::MAX, false), Ok(()));
    assert_eq!(
        body.data(usize::MAX, true),
        Ok(()),
        "no length: anything goes"
    );
}
