//! A client that follows every rule gets every event: several concurrent streams, request
//! and response bodies larger than the windows, WINDOW_UPDATEs both ways.

use std::collections::HashMap;

use super::client::{Client, Ev, REQUEST, window_update};
use crate::h2::frame::{self, kind};

const STREAMS: [u32; 3] = [1, 3, 5];
const REQUEST_BODY: usize = 200_000;
const RESPONSE_BODY: usize = 150_000;

fn body(stream: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32 * 7 + stream) as u8).collect()
}

/// The client's view of the server's windows, grown by the WINDOW_UPDATEs it reads.
struct Windows {
    connection: i64,
    streams: HashMap<u32, i64>,
}

#[test]
fn a_well_behaved_client_gets_all_its_events() {
    let mut c = Client::new();
    let mut windows = Windows {
        // The server's SETTINGS left the stream window at 65,535 and its WINDOW_UPDATE
        // raised the connection's to 1 MiB (read by Client::new).
        connection: 1 << 20,
        streams: STREAMS.iter().map(|&s| (s, 65_535)).collect(),
    };
    let length = REQUEST_BODY.to_string();
    for stream in STREAMS {
        let mut fields = REQUEST.to_vec();
        fields[0] = (b":method", b"POST");
        fields.push((b"content-length", length.as_bytes()));
        let f = c.headers_frame(stream, &fields, false);
        assert!(matches!(
            c.send(&f)[..],
            [Ev::Request {
                end_stream: false,
                ..
            }]
        ));
    }

    // Request bodies, round robin, each DATA within the client's view of the windows; the
    // server's caller passes every byte on at once.
    let mut sent: HashMap<u32, usize> = HashMap::new();
    let mut received: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut ended = Vec::new();
    while sent.values().sum::<usize>() < REQUEST_BODY * STREAMS.len() {
        let mut progress = false;
        for stream in STREAMS {
            let done = sent.entry(stream).or_default();
            let window = windows.streams[&stream].min(windows.connection);
            let n = (REQUEST_BODY - *done)
                .min(16_384)
                .min(window.max(0) as usize);
            if n == 0 {
                continue;
            }
            progress = true;
            let chunk = &body(stream, REQUEST_BODY)[*done..*done + n];
            *done += n;
            let end = *done == REQUEST_BODY;
            let mut f = Vec::new();
            frame::encode_data(&mut f, stream, chunk, end);
            windows.connection -= n as i64;
            *windows.streams.get_mut(&stream).unwrap() -= n as i64;
            for event in c.send(&f) {
                let Ev::Data {
                    stream,
                    data,
                    end_stream,
                } = event
                else {
                    panic!("{event:?}");
                };
                c.conn.consumed(stream, data.len());
                received.entry(stream).or_default().extend(data);
                if end_stream {
                    ended.push(stream);
                }
            }
            for f in c.take_sent() {
                assert_eq!(f.kind, kind::WINDOW_UPDATE, "{f:?}");
                let increment = i64::from(u32::from_be_bytes(f.payload[..4].try_into().unwrap()));
                match f.stream {
                    0 => windows.connection += increment,
                    s => *windows.streams.get_mut(&s).unwrap() += increment,
                }
            }
        }
        assert!(progress, "the client's windows never reopened");
    }
    ended.sort();
    assert_eq!(ended, STREAMS);
    for stream in STREAMS {
        assert_eq!(
            received[&stream],
            body(stream, REQUEST_BODY),
            "stream {stream}"
        );
    }

    // Answers larger than the client's windows: the server sends what the windows allow
    // and resumes on WindowOpened; the client reads and gives the credit back.
    let mut offsets: HashMap<u32, usize> = HashMap::new();
    let mut answers: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut finished = Vec::new();
    for stream in STREAMS {
        c.conn
            .send_headers(stream, [(&b":status"[..], &b"200"[..])], false)
            .unwrap();
    }
    while finished.len() < STREAMS.len() {
        for stream in STREAMS {
            let at = offsets.entry(stream).or_default();
            if finished.contains(&stream) {
                continue;
            }
            let whole = body(stream + 1, RESPONSE_BODY);
            loop {
                let n = c
                    .conn
                    .send_data(stream, &whole[*at..], true, c.now)
                    .unwrap();
                *at += n;
                if n == 0 || *at == RESPONSE_BODY {
                    break;
                }
            }
        }
        let mut updates = Vec::new();
        for f in c.take_sent() {
            match f.kind {
                kind::HEADERS => {}
                kind::DATA => {
                    answers.entry(f.stream).or_default().extend(&f.payload);
                    if f.flags & frame::flag::END_STREAM != 0 {
                        finished.push(f.stream);
                    }
                    if !f.payload.is_empty() {
                        let n = f.payload.len() as u32;
                        updates.extend(window_update(0, n));
                        updates.extend(window_update(f.stream, n));
                    }
                }
                other => panic!("unexpected frame {other}: {f:?}"),
            }
        }
        let events = c.send(&updates);
        assert!(
            events.iter().all(|e| matches!(e, Ev::Window(_))),
            "{events:?}"
        );
    }
    for stream in STREAMS {
        assert_eq!(
            answers[&stream],
            body(stream + 1, RESPONSE_BODY),
            "stream {stream}"
        );
    }
    assert_eq!(c.conn.streams(), 0);
    assert_eq!(c.failed, None);
    assert_eq!(c.conn.oldest_stall(), None);
}
