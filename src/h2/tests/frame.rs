//! The frame layer alone (§4, §6): decoding with its error kinds, and what the encoders
//! produce decodes back.

use super::client::raw;
use crate::h2::error::{Error, ErrorCode};
use crate::h2::frame::{self, Frame, flag, kind};

fn decode(bytes: &[u8]) -> Result<Option<(Frame<'_>, usize)>, Error> {
    frame::decode(bytes, frame::DEFAULT_MAX_FRAME_SIZE)
}

fn conn(code: ErrorCode) -> Result<Option<(Frame<'static>, usize)>, Error> {
    Err(Error::Connection(code))
}

#[test]
fn section_4_1_a_frame_waits_for_all_its_bytes() {
    let f = raw(kind::PING, 0, 0, b"12345678");
    for cut in 0..f.len() {
        assert_eq!(decode(&f[..cut]), Ok(None), "cut at {cut}");
    }
    let (frame, used) = decode(&f).unwrap().unwrap();
    assert_eq!(used, 17);
    assert_eq!(
        frame,
        Frame::Ping {
            ack: false,
            opaque: *b"12345678"
        }
    );
}

#[test]
fn section_4_2_an_oversized_frame_is_refused_from_its_header_alone() {
    let mut head = raw(kind::DATA, 0, 1, &[]);
    head[..3].copy_from_slice(&[0, 0x40, 0x01]);
    assert_eq!(decode(&head), conn(ErrorCode::FRAME_SIZE_ERROR));
    assert_eq!(frame::decode(&head, 1 << 20).map(|f| f.is_none()), Ok(true));
}

#[test]
fn section_6_stream_errors_name_their_stream() {
    // §6.3: a PRIORITY of the wrong size is a stream error.
    assert_eq!(
        decode(&raw(kind::PRIORITY, 0, 7, &[0; 4])),
        Err(Error::Stream(7, ErrorCode::FRAME_SIZE_ERROR))
    );
    // §6.9: a zero increment on a stream is a stream error, on the connection not.
    assert_eq!(
        decode(&raw(kind::WINDOW_UPDATE, 0, 7, &[0; 4])),
        Err(Error::Stream(7, ErrorCode::PROTOCOL_ERROR))
    );
    assert_eq!(
        decode(&raw(kind::WINDOW_UPDATE, 0, 0, &[0; 4])),
        conn(ErrorCode::PROTOCOL_ERROR)
    );
}

#[test]
fn section_6_frames_with_short_mandatory_fields_are_frame_size_errors() {
    for (name, f) in [
        (
            "6.1 PADDED DATA without its pad length",
            raw(kind::DATA, flag::PADDED, 1, &[]),
        ),
        (
            "6.2 HEADERS with PRIORITY shorter than 5",
            raw(kind::HEADERS, flag::PRIORITY, 1, &[0; 4]),
        ),
        (
            "6.6 PUSH_PROMISE without its promised id",
            raw(kind::PUSH_PROMISE, 0, 1, &[0; 3]),
        ),
    ] {
        assert_eq!(decode(&f), conn(ErrorCode::FRAME_SIZE_ERROR), "{name}");
    }
}

#[test]
fn section_6_1_padding_counts_against_flow_control() {
    let f = raw(
        kind::DATA,
        flag::PADDED | flag::END_STREAM,
        3,
        &[3, b'a', b'b', 0, 0, 0],
    );
    let (frame, _) = decode(&f).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::Data {
            stream: 3,
            end_stream: true,
            data: b"ab",
            flow_len: 6
        }
    );
}

#[test]
fn encoders_round_trip() {
    let mut out = Vec::new();
    frame::encode_data(&mut out, 5, b"body", true);
    frame::encode_settings(&mut out, &[(3, 100), (4, 1)]);
    frame::encode_settings_ack(&mut out);
    frame::encode_ping(&mut out, *b"abcdefgh", true);
    frame::encode_rst_stream(&mut out, 5, ErrorCode::CANCEL);
    frame::encode_goaway(&mut out, 9, ErrorCode::ENHANCE_YOUR_CALM, b"calm");
    frame::encode_window_update(&mut out, 0, 1000);
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some((frame, used)) = decode(&out[at..]).unwrap() {
        frames.push(frame);
        at += used;
    }
    assert_eq!(at, out.len());
    assert_eq!(
        frames,
        [
            Frame::Data {
                stream: 5,
                end_stream: true,
                data: b"body",
                flow_len: 4
            },
            Frame::Settings {
                ack: false,
                params: &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0, 1]
            },
            Frame::Settings {
                ack: true,
                params: &[]
            },
            Frame::Ping {
                ack: true,
                opaque: *b"abcdefgh"
            },
            Frame::RstStream {
                stream: 5,
                code: ErrorCode::CANCEL
            },
            Frame::GoAway {
                last_stream: 9,
                code: ErrorCode::ENHANCE_YOUR_CALM,
                debug: b"calm"
            },
            Frame::WindowUpdate {
                stream: 0,
                increment: 1000
            },
        ]
    );
}

#[test]
fn section_4_3_a_header_block_is_split_at_the_max_frame_size() {
    let block: Vec<u8> = (0..=255).cycle().take(40_000).collect();
    let mut out = Vec::new();
    frame::encode_headers(&mut out, 3, &block, true, 16_384);
    let mut fragments = Vec::new();
    let mut at = 0;
    while let Some((frame, used)) = decode(&out[at..]).unwrap() {
        fragments.push(frame);
        at += used;
    }
    assert!(matches!(
        fragments[..],
        [
            Frame::Headers { stream: 3, end_stream: true, end_headers: false, fragment: a, .. },
            Frame::Continuation { stream: 3, end_headers: false, fragment: b },
            Frame::Continuation { stream: 3, end_headers: true, fragment: c },
        ] if [a, b, c].concat() == block
    ));
    let mut out = Vec::new();
    frame::encode_headers(&mut out, 3, &[], false, 16_384);
    assert_eq!(out, raw(kind::HEADERS, flag::END_HEADERS, 3, &[]));
}

#[test]
fn section_7_unknown_error_codes_are_kept() {
    let f = raw(kind::RST_STREAM, 0, 1, &[0, 0, 0xff, 0xff]);
    let (frame, _) = decode(&f).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::RstStream {
            stream: 1,
            code: ErrorCode(0xffff)
        }
    );
    assert_eq!(format!("{:?}", ErrorCode(0xffff)), "ErrorCode(0xffff)");
    assert_eq!(
        ErrorCode::ENHANCE_YOUR_CALM.to_string(),
        "ENHANCE_YOUR_CALM"
    );
}
