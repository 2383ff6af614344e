//! A server that floods lb with frames that only cost work, or with a header block that
//! never ends: each bound of `Limits` trips with ENHANCE_YOUR_CALM, and not before.

use super::{RawServer, get};
use crate::h2::error::ErrorCode;
use crate::h2::frame::kind;
use crate::h2::limits::Limits;
use crate::h2::tests::client::{ping, raw, settings, window_update};

const GOAWAY: u8 = kind::GOAWAY;

fn server() -> RawServer {
    RawServer::new(Limits::default(), &[])
}

/// A server with stream 1 open: a GET, sent.
fn with_get() -> RawServer {
    let mut s = server();
    assert_eq!(s.client.open_stream(&get("/"), true), Ok(1));
    s.frames();
    s
}

#[test]
fn continuation_floods_are_cut_by_count_and_by_bytes() {
    let limits = Limits::default();
    let mut s = with_get();
    s.send(&raw(kind::HEADERS, 0, 1, &[0x88]));
    for _ in 1..limits.max_header_block_frames {
        s.send(&raw(kind::CONTINUATION, 0, 1, &[]));
    }
    assert_eq!(
        s.failed, None,
        "{} frames in a block",
        limits.max_header_block_frames
    );
    s.send(&raw(kind::CONTINUATION, 0, 1, &[]));
    assert_eq!(s.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert_eq!(s.errors(), [(GOAWAY, 0, ErrorCode::ENHANCE_YOUR_CALM)]);

    let most = limits.max_header_block_bytes as usize;
    let mut s = with_get();
    s.send(&raw(kind::HEADERS, 0, 1, &[0; 16_384]));
    s.send(&raw(kind::CONTINUATION, 0, 1, &vec![0; most - 16_384]));
    assert_eq!(s.failed, None, "{most} bytes in a block");
    s.send(&raw(kind::CONTINUATION, 0, 1, &[0]));
    assert_eq!(s.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
}

/// Sends `frames` until the connection fails; how many went.
fn flood(s: &mut RawServer, frames: &[u8]) -> u32 {
    for sent in 1..10_000 {
        s.send(frames);
        if s.failed.is_some() {
            return sent;
        }
    }
    panic!("no limit");
}

#[test]
fn floods_of_work_only_frames_end_with_enhance_your_calm() {
    let limits = Limits::default();
    let hundred = server().headers(1, &[(":status", "100")], false);
    let floods: [(&str, Vec<u8>); 6] = [
        ("PING", ping()),
        ("SETTINGS", settings(&[])),
        ("WINDOW_UPDATE", window_update(0, 1)),
        ("PRIORITY", raw(kind::PRIORITY, 0, 9, &[0, 0, 0, 0, 16])),
        ("unknown frames", raw(0xfa, 0, 0, b"")),
        ("1xx responses", hundred),
    ];
    for (name, frames) in floods {
        let mut s = server();
        s.client.open_stream(&get("/"), false).unwrap();
        let went = flood(&mut s, &frames);
        assert_eq!(s.failed, Some(ErrorCode::ENHANCE_YOUR_CALM), "{name}");
        assert!(
            s.errors()
                .contains(&(GOAWAY, 0, ErrorCode::ENHANCE_YOUR_CALM)),
            "{name}"
        );
        // The handshake's SETTINGS and ack counted; the request earned its share.
        let allowed = limits.flood_allowance + limits.flood_per_useful - 2;
        assert_eq!(went, allowed + 1, "{name}");
    }
}

#[test]
fn keepalive_pings_spread_over_time_are_not_a_flood() {
    let mut s = server();
    for _ in 0..20 {
        for _ in 0..90 {
            s.send(&ping());
        }
        s.frames();
        s.now += Limits::default().flood_period;
    }
    assert_eq!(s.failed, None);
}

#[test]
fn ping_acks_left_unread_are_bounded() {
    let limits = Limits {
        flood_allowance: 100_000,
        ..Limits::default()
    };
    let most = limits.max_queued_control_frames as usize;
    let mut s = RawServer::new(limits, &[]);
    s.send(&ping().repeat(most));
    assert_eq!(s.failed, None, "{most} unread acks");
    s.send(&ping());
    assert_eq!(s.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
}
