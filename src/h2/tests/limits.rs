//! One test per limit: each trips it and checks the exact RST_STREAM or GOAWAY code, and
//! the behaviour just under it.

use std::time::Duration;

use super::client::{Client, Ev, REQUEST, data, ping, raw, rst, settings, window_update};
use crate::h2::connection::{PREFACE, State};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::limits::Limits;
use crate::h2::settings::id;

const OK: &[(&[u8], &[u8])] = &[(b":status", b"200")];

fn open(c: &mut Client, stream: u32, end_stream: bool) -> Vec<Ev> {
    let f = c.request(stream, end_stream);
    c.send(&f)
}

#[test]
fn max_concurrent_streams_refuses_the_excess_and_keeps_hpack_in_step() {
    let mut c = Client::new();
    for stream in (1..200).step_by(2) {
        assert!(matches!(
            open(&mut c, stream, false)[..],
            [Ev::Request { .. }]
        ));
    }
    // The refused block adds a field to the client's HPACK table...
    let mut fields = REQUEST.to_vec();
    fields.push((b"x-new", b"in the table"));
    let f = c.headers_frame(201, &fields, false);
    assert_eq!(c.send(&f), []);
    assert_eq!(c.resets(), [(201, ErrorCode::REFUSED_STREAM)]);
    // ...and once a stream ends, a new one that refers to it is decoded right.
    c.send(&rst(1, ErrorCode::CANCEL));
    let post: &[(&[u8], &[u8])] = &[(b":method", b"POST"), (b"x-new", b"in the table")];
    let f = c.headers_frame(203, post, true);
    let events = c.send(&f);
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        post.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
    assert_eq!(
        events,
        [Ev::Request {
            stream: 203,
            headers: expected,
            end_stream: true
        }]
    );
    assert_eq!(c.failed, None);
}

#[test]
fn rapid_reset_ends_the_connection_with_enhance_your_calm() {
    let mut c = Client::new();
    let mut opened = 0;
    for stream in (1..1000).step_by(2) {
        let mut f = c.request(stream, false);
        f.extend(rst(stream, ErrorCode::CANCEL));
        let events = c.send(&f);
        opened += 1;
        if c.failed.is_some() {
            break;
        }
        // The caller learns at once that the exchange is abandoned.
        assert!(
            matches!(events[..], [Ev::Request { .. }, Ev::Reset(s, ErrorCode::CANCEL)] if s == stream)
        );
    }
    assert_eq!(c.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert_eq!(c.goaway(), Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert_eq!(opened, Limits::default().premature_resets_min);
}

#[test]
fn resets_are_premature_only_before_the_answer_and_past_the_ratio() {
    let mut c = Client::new();
    for stream in (1..600).step_by(2) {
        open(&mut c, stream, true);
        // Two in three answered before the client resets them: 33% premature, under 50%.
        if stream % 3 != 0 {
            c.conn
                .send_headers(stream, OK.iter().copied(), false)
                .unwrap();
        }
        c.send(&rst(stream, ErrorCode::CANCEL));
    }
    assert_eq!(c.failed, None);
}

#[test]
fn continuation_flood_is_cut_by_frame_count() {
    let mut c = Client::new();
    let block = c.block(REQUEST);
    c.send(&raw(kind::HEADERS, 0, 1, &block));
    let frames = Limits::default().max_header_block_frames;
    for _ in 1..frames {
        c.send(&raw(kind::CONTINUATION, 0, 1, &[]));
    }
    assert_eq!(c.failed, None, "{frames} frames in a block are allowed");
    c.send(&raw(kind::CONTINUATION, 0, 1, &[]));
    assert_eq!(c.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert_eq!(c.goaway(), Some(ErrorCode::ENHANCE_YOUR_CALM));
}

#[test]
fn continuation_flood_is_cut_by_block_bytes() {
    let mut c = Client::new();
    let most = Limits::default().max_header_block_bytes as usize;
    c.send(&raw(kind::HEADERS, 0, 1, &[0; 16_384]));
    c.send(&raw(kind::CONTINUATION, 0, 1, &vec![0; most - 16_384]));
    assert_eq!(c.failed, None, "{most} bytes are allowed");
    c.send(&raw(kind::CONTINUATION, 0, 1, &[0]));
    assert_eq!(c.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
}

#[test]
fn a_header_list_over_the_limit_is_answered_and_the_connection_goes_on() {
    let mut c = Client::new();
    let value = [b'v'; 60];
    // One field more than the list size holds (each counts 3 + 60 + 32 octets).
    let over = Limits::default().max_header_list_size as usize / (3 + 60 + 32) + 1;
    let mut fields = REQUEST.to_vec();
    fields.extend(std::iter::repeat_n((&b"x-f"[..], &value[..]), over));
    let f = c.headers_frame(1, &fields, true);
    assert_eq!(c.send(&f), [Ev::TooLarge(1)]);
    c.conn
        .send_headers(1, [(&b":status"[..], &b"431"[..])], true)
        .unwrap();
    assert!(matches!(
        open(&mut c, 3, true)[..],
        [Ev::Request { stream: 3, .. }]
    ));
    assert_eq!((c.failed, c.resets()), (None, vec![]));
}

/// Sends `frame` until the connection fails; how many went.
fn flood(c: &mut Client, frame: &[u8]) -> u32 {
    for sent in 1..10_000 {
        c.send(frame);
        if c.failed.is_some() {
            return sent;
        }
    }
    panic!("no limit");
}

#[test]
fn floods_of_work_only_frames_end_with_enhance_your_calm() {
    let floods: [(&str, Vec<u8>); 7] = [
        ("PING", ping()),
        ("SETTINGS", settings(&[])),
        ("empty DATA", data(1, b"", false)),
        ("WINDOW_UPDATE", window_update(0, 1)),
        ("PRIORITY", raw(kind::PRIORITY, 0, 7, &[0, 0, 0, 0, 16])),
        ("RST_STREAM of a closed stream", rst(3, ErrorCode::CANCEL)),
        ("unknown frames", raw(0xfa, 0, 0, b"")),
    ];
    let limits = Limits::default();
    for (name, frame) in floods {
        let mut c = Client::new();
        open(&mut c, 1, false);
        open(&mut c, 3, false);
        c.send(&rst(3, ErrorCode::CANCEL));
        let went = flood(&mut c, &frame);
        assert_eq!(c.failed, Some(ErrorCode::ENHANCE_YOUR_CALM), "{name}");
        assert_eq!(c.goaway(), Some(ErrorCode::ENHANCE_YOUR_CALM), "{name}");
        // The handshake's two SETTINGS counted; the two requests earned their share.
        let allowed = limits.flood_allowance + 2 * limits.flood_per_useful - 2;
        assert_eq!(went, allowed + 1, "{name}");
    }
}

#[test]
fn keepalive_pings_spread_over_time_are_not_a_flood() {
    let mut c = Client::new();
    for _ in 0..20 {
        for _ in 0..90 {
            c.send(&ping());
        }
        c.later(Limits::default().flood_period);
    }
    assert_eq!(c.failed, None);
}

#[test]
fn control_answers_the_client_does_not_read_are_bounded() {
    let limits = Limits {
        flood_allowance: 100_000,
        ..Limits::default()
    };
    let most = limits.max_queued_control_frames as usize;
    let mut c = Client::with_limits(limits);
    c.send(&ping().repeat(most));
    assert_eq!(c.failed, None, "{most} unread acks are allowed");
    let mut c = Client::with_limits(limits);
    c.send(&ping().repeat(most + 1));
    assert_eq!(c.failed, Some(ErrorCode::ENHANCE_YOUR_CALM));
}

#[test]
fn stream_ids_near_the_end_start_a_graceful_goaway() {
    let high = Limits::default().stream_id_high_water;
    let mut c = Client::new();
    open(&mut c, 1, true);
    open(&mut c, high - 2, true);
    assert_eq!(c.goaway(), None);
    assert!(matches!(open(&mut c, high, true)[..], [Ev::Request { .. }]));
    let goaway: Vec<_> = c
        .take_sent()
        .into_iter()
        .filter(|f| f.kind == kind::GOAWAY)
        .collect();
    assert_eq!(goaway.len(), 1);
    assert_eq!(goaway[0].payload, [high.to_be_bytes(), [0; 4]].concat());
    assert_eq!(c.conn.state(), State::GoingAway { last_stream: high });
    // Later streams are refused; those in flight finish, then the connection closes.
    assert_eq!(open(&mut c, high + 2, true), []);
    assert_eq!(c.resets(), [(high + 2, ErrorCode::REFUSED_STREAM)]);
    for stream in [1, high - 2, high] {
        c.conn
            .send_headers(stream, OK.iter().copied(), true)
            .unwrap();
    }
    assert_eq!(c.conn.state(), State::Closed);
    assert_eq!(c.failed, None);
}

#[test]
fn zero_window_stalls_are_not_reset_by_one_byte_drips() {
    let mut c = Client::new();
    c.send(&settings(&[(id::INITIAL_WINDOW_SIZE, 0)]));
    open(&mut c, 1, true);
    c.conn.send_headers(1, OK.iter().copied(), false).unwrap();
    let body = vec![b'x'; 100_000];
    let start = c.now;
    assert_eq!(c.conn.send_data(1, &body, true, c.now), Ok(0));
    assert_eq!(c.conn.stalled_since(1), Some(start));
    let mut at = 0;
    for _ in 0..10 {
        c.later(Duration::from_secs(1));
        assert_eq!(c.send(&window_update(1, 1)), [Ev::Window(1)]);
        at += c.conn.send_data(1, &body[at..], true, c.now).unwrap();
        assert_eq!(
            c.conn.stalled_since(1),
            Some(start),
            "a drip is not progress"
        );
    }
    assert_eq!(at, 10);
    assert_eq!(c.conn.oldest_stall(), Some((1, start)));
    c.send(&window_update(1, Limits::default().useful_window));
    assert_eq!(c.conn.stalled_since(1), None);
    assert_eq!(c.conn.oldest_stall(), None);
}

#[test]
fn connection_window_stalls_are_not_reset_by_drips_either() {
    let mut c = Client::new();
    c.send(&settings(&[(id::INITIAL_WINDOW_SIZE, 1 << 20)]));
    open(&mut c, 1, true);
    c.conn.send_headers(1, OK.iter().copied(), false).unwrap();
    let body = vec![b'x'; 200_000];
    let mut at = 0;
    loop {
        let n = c.conn.send_data(1, &body[at..], true, c.now).unwrap();
        if n == 0 {
            break;
        }
        at += n;
    }
    assert_eq!(at, 65_535, "the connection's initial window");
    let start = c.conn.stalled_since(0).expect("stalled");
    assert_eq!(
        c.conn.stalled_since(1),
        None,
        "the stream's own window is open"
    );
    c.later(Duration::from_secs(5));
    assert_eq!(c.send(&window_update(0, 1)), [Ev::Window(0)]);
    assert_eq!(c.conn.send_data(1, &body[at..], true, c.now), Ok(1));
    assert_eq!(c.conn.stalled_since(0), Some(start));
    c.send(&window_update(0, 1 << 16));
    assert_eq!(c.conn.stalled_since(0), None);
}

#[test]
fn settings_unacknowledged_since_is_exposed_until_the_ack() {
    let mut c = Client::raw(Limits::default());
    let sent_at = c.now;
    let mut hello = PREFACE.to_vec();
    hello.extend(settings(&[]));
    c.send(&hello);
    c.later(Duration::from_secs(30));
    assert_eq!(c.conn.settings_unacked_since(), Some(sent_at));
    c.conn.abort(ErrorCode::SETTINGS_TIMEOUT);
    assert_eq!(c.goaway(), Some(ErrorCode::SETTINGS_TIMEOUT));
    assert_eq!(c.conn.state(), State::Closed);

    let mut c = Client::raw(Limits::default());
    hello.extend(raw(kind::SETTINGS, flag::ACK, 0, &[]));
    c.send(&hello);
    assert_eq!(c.conn.settings_unacked_since(), None);
}
