//! RFC 9113, section by section, as an h2spec-like table: each case is a frame sequence
//! from a raw client and the answer the section requires.

mod frames;
mod messages;
mod streams;

use super::client::{Client, REQUEST, ping, raw};
use crate::h2::connection::PREFACE;
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::limits::Limits;

/// What the server must do.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// End the connection with GOAWAY and this code.
    GoAway(ErrorCode),
    /// Reset this stream with this code, and keep the connection.
    Reset(u32, ErrorCode),
    /// Neither: the frames were fine (or ignored).
    Fine,
    /// Fine, and a frame of this kind and flags went back.
    Answers(u8, u8),
}

use Expect::*;

pub struct Case {
    name: &'static str,
    run: fn(&mut Client),
    expect: Expect,
}

pub fn open(c: &mut Client, stream: u32) {
    let f = c.request(stream, false);
    c.send(&f);
}

pub fn with_length(c: &mut Client, stream: u32, length: &[u8], end_stream: bool) {
    let mut fields = REQUEST.to_vec();
    fields.push((b"content-length", length));
    let f = c.headers_frame(stream, &fields, end_stream);
    c.send(&f);
}

/// A valid request block for stream 1, as HEADERS without END_HEADERS.
pub fn started_block(c: &mut Client) -> Vec<u8> {
    let block = c.block(REQUEST);
    raw(kind::HEADERS, 0, 1, &block)
}

#[test]
fn rfc9113_sections() {
    let cases: Vec<&Case> = [streams::CASES, frames::CASES, messages::CASES]
        .into_iter()
        .flatten()
        .collect();
    for case in &cases {
        let mut c = Client::new();
        (case.run)(&mut c);
        let goaway = c.goaway();
        let resets = c.resets();
        let name = case.name;
        match case.expect {
            GoAway(code) => {
                assert_eq!(c.failed, Some(code), "{name}");
                assert_eq!(goaway, Some(code), "{name}");
            }
            Reset(stream, code) => {
                assert_eq!((c.failed, goaway), (None, None), "{name}");
                assert_eq!(resets, [(stream, code)], "{name}");
            }
            Fine => {
                assert_eq!((c.failed, goaway), (None, None), "{name}");
                assert_eq!(resets, [], "{name}");
            }
            Answers(kind, flags) => {
                assert_eq!((c.failed, goaway), (None, None), "{name}");
                let sent = c.take_sent();
                assert!(
                    sent.iter().any(|f| f.kind == kind && f.flags == flags),
                    "{name}: {sent:?}"
                );
            }
        }
    }
    eprintln!("{} RFC 9113 cases", cases.len());
}

#[test]
fn section_3_4_a_wrong_preface_is_a_protocol_error() {
    let mut c = Client::raw(Limits::default());
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r");
    assert_eq!(c.failed, None, "a preface cut short waits for more");
    let mut c = Client::raw(Limits::default());
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.failed, Some(ErrorCode::PROTOCOL_ERROR));
    assert_eq!(c.goaway(), Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn section_3_4_the_first_frame_must_be_settings() {
    let mut c = Client::raw(Limits::default());
    let mut hello = PREFACE.to_vec();
    hello.extend(ping());
    c.send(&hello);
    assert_eq!(c.failed, Some(ErrorCode::PROTOCOL_ERROR));
    let mut c = Client::raw(Limits::default());
    let mut hello = PREFACE.to_vec();
    hello.extend(raw(kind::SETTINGS, flag::ACK, 0, &[]));
    c.send(&hello);
    assert_eq!(c.failed, Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn section_3_4_the_server_starts_with_its_settings_and_connection_window() {
    let mut c = Client::raw(Limits::default());
    let sent = c.take_sent();
    assert_eq!(sent[0].kind, kind::SETTINGS);
    assert_eq!(sent[0].flags, 0);
    let params: Vec<&[u8]> = sent[0].payload.chunks(6).collect();
    assert!(
        params.contains(&&[0, 3, 0, 0, 0, 100][..]),
        "MAX_CONCURRENT_STREAMS 100"
    );
    assert_eq!(sent[1].kind, kind::WINDOW_UPDATE);
    assert_eq!(sent[1].stream, 0);
    assert_eq!(sent[1].payload, ((1u32 << 20) - 65_535).to_be_bytes());
}
