//! A server HTTP/2 connection after a valid preface, fed arbitrary frames in pieces: it
//! never panics, every event names a stream, the caller's answers go out only on live
//! streams, what it sends decodes as frames, and every way it ends is a GOAWAY with an
//! RFC 9113 §7 code (as is every RST_STREAM it sends).
#![no_main]

use std::time::{Duration, Instant};

use lb::h2::connection::{Connection, Event, PREFACE, SendError, State};
use lb::h2::frame::{self, Frame};
use lb::h2::limits::Limits;
use lb::h2::settings::MAX_MAX_FRAME_SIZE;
use libfuzzer_sys::fuzz_target;

const STATUS: &[(&[u8], &[u8])] = &[(b":status", b"200"), (b"server", b"lb")];

/// Every frame in `out` decodes, and every error code in one is a defined code.
fn check_output(out: &[u8]) -> bool {
    let mut at = 0;
    let mut goaway = false;
    while at < out.len() {
        let Ok(Some((frame, used))) = frame::decode(&out[at..], MAX_MAX_FRAME_SIZE) else {
            panic!("the server sent a frame that does not decode at {at}");
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

fuzz_target!(|data: &[u8]| {
    // The first byte sets the size of each read and how much time passes between reads.
    let Some((&knob, frames)) = data.split_first() else {
        return;
    };
    let piece = usize::from(knob % 64) + 1;
    let step = Duration::from_millis(u64::from(knob) * 40);
    let mut now = Instant::now();
    let mut conn = Connection::new(Limits::default(), now);
    let mut out = Vec::new();
    let mut buffer = PREFACE.to_vec();
    frame::encode_settings(&mut buffer, &[]);
    for read in frames.chunks(piece) {
        buffer.extend_from_slice(read);
        now += step;
        loop {
            let before = buffer.len();
            let (used, answered) = match conn.next_event(&buffer, now) {
                Err(goaway) => {
                    assert!(goaway.code.name().is_some(), "{:?}", goaway.code);
                    assert_eq!(conn.state(), State::Closed);
                    conn.take_output(&mut out);
                    assert!(check_output(&out), "no GOAWAY went out");
                    return;
                }
                Ok((used, None)) => (used, None),
                Ok((used, Some(event))) => (used, answer_of(event)),
            };
            assert!(used <= before);
            buffer.drain(..used);
            let Some((stream, consumed)) = answered else {
                if used == 0 {
                    break;
                }
                continue;
            };
            conn.consumed(stream, consumed);
            // Answer every request, in a body of a few frames, and see the send side obey
            // the stream's state.
            if stream != 0 {
                match conn.send_headers(stream, STATUS.iter().copied(), false) {
                    Ok(()) | Err(SendError::Closed) | Err(SendError::Ended) => {}
                }
                let body = [b'x'; 40_000];
                match conn.send_data(stream, &body, stream % 4 == 1, now) {
                    Ok(n) => assert!(n <= body.len()),
                    Err(SendError::Closed | SendError::Ended) => {}
                }
            }
            if knob % 3 == 0 {
                conn.take_output(&mut out);
            }
        }
    }
    conn.take_output(&mut out);
    check_output(&out);
    if knob % 5 == 0 {
        conn.go_away(true);
        conn.take_output(&mut out);
        assert!(check_output(&out));
    }
});

/// The stream an event asks the caller to act on, and the body bytes it passes on.
fn answer_of(event: Event<'_>) -> Option<(u32, usize)> {
    match event {
        Event::Request { stream, .. } | Event::RequestTooLarge { stream, .. } => {
            assert!(stream % 2 == 1, "a client's stream is odd");
            Some((stream, 0))
        }
        Event::Data { stream, data, .. } => Some((stream, data.len())),
        Event::Trailers { stream, .. } => Some((stream, 0)),
        Event::WindowOpened { stream } => Some((stream, 0)),
        // The client's code may be any number (§7); the stream is a real one.
        Event::Reset { stream, .. } => {
            assert!(stream != 0);
            None
        }
        Event::GoAway { .. } => None,
    }
}
