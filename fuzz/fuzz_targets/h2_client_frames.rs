//! A client HTTP/2 connection to a backend, fed arbitrary server frames in pieces after
//! the server's SETTINGS: it never panics, every event names a stream lb opened, the
//! caller's sends go out only on live streams, what it sends decodes as frames, and every
//! way it ends is a GOAWAY with an RFC 9113 §7 code (as is every RST_STREAM it sends).
#![no_main]

use std::time::{Duration, Instant};

use lb::h2::client::{ClientConnection, ClientEvent, OpenError, State};
use lb::h2::connection::SendError;
use lb::h2::frame::{self, Frame};
use lb::h2::hpack::HeaderList;
use lb::h2::limits::Limits;
use lb::h2::settings::MAX_MAX_FRAME_SIZE;
use libfuzzer_sys::fuzz_target;

/// Every frame in `out` decodes, and every error code in one is a defined code.
fn check_output(out: &[u8]) -> bool {
    let mut at = 0;
    let mut goaway = false;
    while at < out.len() {
        let Ok(Some((frame, used))) = frame::decode(&out[at..], MAX_MAX_FRAME_SIZE) else {
            panic!("the client sent a frame that does not decode at {at}");
        };
        match frame {
            Frame::RstStream { code, .. } => assert!(code.name().is_some(), "{code:?}"),
            Frame::GoAway { code, .. } => {
                assert!(code.name().is_some(), "{code:?}");
                goaway = true;
            }
            _ => {}
        }
        at += used;
    }
    goaway
}

/// Opens one more stream if the connection takes it; the highest id opened.
fn open(conn: &mut ClientConnection, request: &HeaderList, end_stream: bool, opened: u32) -> u32 {
    match conn.open_stream(request, end_stream) {
        Ok(id) => {
            assert!(id % 2 == 1 && id > opened, "ids are odd and grow");
            id
        }
        Err(OpenError::Busy | OpenError::Closed | OpenError::TooLarge) => opened,
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte sets the size of each read, how much time passes between reads, and
    // how many streams open at first.
    let Some((&knob, frames)) = data.split_first() else {
        return;
    };
    let piece = usize::from(knob % 64) + 1;
    let step = Duration::from_millis(u64::from(knob) * 40);
    let mut now = Instant::now();
    let mut conn = ClientConnection::new(Limits::default(), now);
    let mut request = HeaderList::new();
    for (name, value) in [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":authority", b"backend"),
        (b":path", b"/"),
    ] {
        request.push(name, value);
    }
    let mut opened = 0;
    for _ in 0..=knob % 4 {
        opened = open(&mut conn, &request, knob % 2 == 0, opened);
    }
    let mut preface = Vec::new();
    conn.take_output(&mut preface);
    let mut out = Vec::new();
    let mut buffer = Vec::new();
    frame::encode_settings(&mut buffer, &[]);
    for read in frames.chunks(piece) {
        buffer.extend_from_slice(read);
        now += step;
        loop {
            let before = buffer.len();
            let (used, acted) = match conn.next_event(&buffer, now) {
                Err(goaway) => {
                    assert!(goaway.code.name().is_some(), "{:?}", goaway.code);
                    assert_eq!(conn.state(), State::Closed);
                    conn.take_output(&mut out);
                    assert!(check_output(&out), "no GOAWAY went out");
                    return;
                }
                Ok((used, None)) => (used, None),
                Ok((used, Some(event))) => (used, act_of(event, opened)),
            };
            assert!(used <= before);
            buffer.drain(..used);
            let Some((stream, consumed)) = acted else {
                if used == 0 {
                    break;
                }
                continue;
            };
            conn.consumed(stream, consumed);
            // Send request body on the stream, and keep opening streams, to see the send
            // side obey the stream's state and the server's settings.
            if stream != 0 {
                let body = [b'x'; 40_000];
                match conn.send_data(stream, &body, stream % 4 == 1, now) {
                    Ok(n) => assert!(n <= body.len()),
                    Err(SendError::Closed | SendError::Ended) => {}
                }
            }
            if conn.can_open() > 0 {
                opened = open(&mut conn, &request, knob % 3 == 0, opened);
            }
            if knob % 3 == 0 {
                conn.take_output(&mut out);
            }
        }
    }
    conn.take_output(&mut out);
    check_output(&out);
    // Our GOAWAY goes out unless the connection already drains or is closed.
    if knob % 5 == 0 && matches!(conn.state(), State::AwaitingSettings | State::Open) {
        out.clear();
        conn.go_away();
        conn.take_output(&mut out);
        assert!(check_output(&out));
    }
});

/// The stream an event asks the caller to act on, and the body bytes it passes on.
fn act_of(event: ClientEvent<'_>, opened: u32) -> Option<(u32, usize)> {
    let ours = |stream: u32| {
        assert!(
            stream % 2 == 1 && stream <= opened,
            "{stream} is not a stream lb opened"
        );
    };
    match event {
        ClientEvent::Interim { stream, status, .. } => {
            ours(stream);
            assert!((100..200).contains(&status) && status != 101);
            Some((stream, 0))
        }
        ClientEvent::Response { stream, status, .. } => {
            ours(stream);
            assert!((200..1000).contains(&status));
            Some((stream, 0))
        }
        ClientEvent::Data { stream, data, .. } => {
            ours(stream);
            Some((stream, data.len()))
        }
        ClientEvent::Trailers { stream, .. } => {
            ours(stream);
            Some((stream, 0))
        }
        ClientEvent::WindowOpened { stream } => {
            if stream != 0 {
                ours(stream);
            }
            Some((stream, 0))
        }
        // The server's code may be any number (§7); the stream is one lb opened.
        ClientEvent::Reset { stream, .. } => {
            ours(stream);
            None
        }
        ClientEvent::GoAway { .. } | ClientEvent::SettingsChanged => Some((0, 0)),
    }
}
