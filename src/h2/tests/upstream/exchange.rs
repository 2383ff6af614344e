//! The client codec against lb's own server codec, in memory: each exchange as a backend
//! that speaks h2 would carry it.

use super::super::client::Ev;
use super::{CEv, Pair, get, list};
use crate::h2::client::{OpenError, State};
use crate::h2::error::ErrorCode;
use crate::h2::limits::Limits;

const OK: &[(&[u8], &[u8])] = &[(b":status", b"200"), (b"content-type", b"text/plain")];

fn pair() -> Pair {
    Pair::new(Limits::default(), Limits::default())
}

fn owned(fields: &[(&str, &str)]) -> super::Fields {
    fields
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn a_get_is_answered() {
    let mut p = pair();
    let request = get("/a");
    assert_eq!(p.client.open_stream(&request, true), Ok(1));
    p.pump();
    let (_, server) = p.take_events();
    let sent: Vec<_> = request
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(
        server,
        [Ev::Request {
            stream: 1,
            headers: sent,
            end_stream: true
        }]
    );
    p.server.send_headers(1, OK.iter().copied(), false).unwrap();
    p.server.send_data(1, b"hello", true, p.now).unwrap();
    p.pump();
    let (client, _) = p.take_events();
    assert_eq!(
        client,
        [
            CEv::Response {
                stream: 1,
                status: 200,
                headers: owned(&[(":status", "200"), ("content-type", "text/plain")]),
                end_stream: false
            },
            CEv::Data {
                stream: 1,
                data: b"hello".to_vec(),
                end_stream: true
            }
        ]
    );
    assert_eq!((p.client.streams(), p.server.streams()), (0, 0));
}

#[test]
fn a_post_larger_than_the_windows_flows_both_ways() {
    let mut p = pair();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let post = list(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "backend"),
        (":path", "/upload"),
    ]);
    let id = p.client.open_stream(&post, false).unwrap();
    let (mut sent, mut received, mut stalls, mut opened) = (0, Vec::new(), 0, 0);
    while received.len() < body.len() {
        loop {
            let n = p.client.send_data(id, &body[sent..], true, p.now).unwrap();
            sent += n;
            if n == 0 || sent == body.len() {
                break;
            }
        }
        if sent < body.len() {
            assert_eq!(p.client.oldest_stall(), Some((id, p.now)));
            stalls += 1;
        }
        p.pump();
        let (_, server) = p.take_events();
        for event in server {
            if let Ev::Data { stream, data, .. } = event {
                p.server.consumed(stream, data.len());
                received.extend(data);
            }
        }
        p.pump();
        let (client, _) = p.take_events();
        opened += client.iter().filter(|e| **e == CEv::Window(id)).count();
        assert!(stalls < 100, "no progress");
    }
    assert!(received == body, "the request body arrived whole");
    // 300,000 bytes through a 65,535-byte stream window: four stalls, each ended by the
    // server's WINDOW_UPDATEs.
    assert_eq!(stalls, 4);
    assert!(opened >= stalls, "{opened} windows opened");

    p.server
        .send_headers(id, OK.iter().copied(), false)
        .unwrap();
    let (mut sent, mut received, mut rounds) = (0, Vec::new(), 0);
    while received.len() < body.len() {
        loop {
            let n = p.server.send_data(id, &body[sent..], true, p.now).unwrap();
            sent += n;
            if n == 0 || sent == body.len() {
                break;
            }
        }
        p.pump();
        let (client, _) = p.take_events();
        for event in client {
            if let CEv::Data { stream, data, .. } = event {
                p.client.consumed(stream, data.len());
                received.extend(data);
            }
        }
        rounds += 1;
        assert!(rounds < 100, "no progress");
    }
    assert!(received == body, "the response body arrived whole");
    assert!(rounds > 4, "the client's window held the server back");
    assert_eq!((p.client.streams(), p.server.streams()), (0, 0));
}

#[test]
fn streams_open_within_the_servers_max_concurrent_streams() {
    let server = Limits {
        max_concurrent_streams: 10,
        ..Limits::default()
    };
    let mut p = Pair::new(Limits::default(), server);
    let mut opened = Vec::new();
    let mut busy = 0;
    while opened.len() < 150 {
        match p.client.open_stream(&get("/"), true) {
            Ok(id) => opened.push(id),
            Err(OpenError::Busy) => {
                busy += 1;
                assert_eq!(p.client.can_open(), 0);
                assert_eq!(p.client.streams(), 10, "the server's limit");
                p.pump();
                let (_, server) = p.take_events();
                for event in server {
                    let Ev::Request { stream, .. } = event else {
                        panic!("{event:?}: never refused");
                    };
                    p.server
                        .send_headers(stream, [(&b":status"[..], &b"204"[..])], true)
                        .unwrap();
                }
                p.pump();
                assert_eq!(p.client.can_open(), 10);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(busy, 14);
    assert_eq!(opened.last(), Some(&299));
}

#[test]
fn trailers_go_both_ways() {
    let mut p = pair();
    let post = list(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "backend"),
        (":path", "/grpc.Service/Call"),
        ("te", "trailers"),
    ]);
    let id = p.client.open_stream(&post, false).unwrap();
    p.client.send_data(id, b"request", false, p.now).unwrap();
    p.client
        .send_trailers(id, &list(&[("x-checksum", "c1")]))
        .unwrap();
    assert!(p.client.send_data(id, b"late", true, p.now).is_err());
    p.pump();
    let (_, server) = p.take_events();
    assert!(matches!(
        server[..],
        [Ev::Request { .. }, Ev::Data { .. }, Ev::Trailers(1)]
    ));
    p.server
        .send_headers(id, OK.iter().copied(), false)
        .unwrap();
    p.server.send_data(id, b"reply", false, p.now).unwrap();
    let trailers: &[(&[u8], &[u8])] = &[(b"grpc-status", b"0"), (b"grpc-message", b"")];
    p.server
        .send_headers(id, trailers.iter().copied(), true)
        .unwrap();
    p.pump();
    let (client, _) = p.take_events();
    assert_eq!(client.len(), 3);
    assert_eq!(
        client[2],
        CEv::Trailers(id, owned(&[("grpc-status", "0"), ("grpc-message", "")]))
    );
    assert_eq!((p.client.streams(), p.server.streams()), (0, 0));
}

#[test]
fn resets_reach_the_other_side_and_frames_in_flight_are_ignored() {
    let mut p = pair();
    let first = p.client.open_stream(&get("/1"), true).unwrap();
    let second = p.client.open_stream(&get("/2"), true).unwrap();
    p.pump();
    p.take_events();
    // The client gives up on the first while the server answers it.
    p.client.send_reset(first, ErrorCode::CANCEL);
    p.server
        .send_headers(first, OK.iter().copied(), false)
        .unwrap();
    p.server
        .send_data(first, b"unwanted", false, p.now)
        .unwrap();
    p.server.send_reset(second, ErrorCode::REFUSED_STREAM);
    p.pump();
    let (client, server) = p.take_events();
    assert_eq!(server, [Ev::Reset(first, ErrorCode::CANCEL)]);
    assert_eq!(client, [CEv::Reset(second, ErrorCode::REFUSED_STREAM)]);
    assert_eq!(p.client.streams(), 0);
    assert_eq!(p.client.state(), State::Open);
}

#[test]
fn a_goaway_refuses_the_streams_above_its_last() {
    let mut p = pair();
    for path in ["/1", "/3"] {
        p.client.open_stream(&get(path), true).unwrap();
    }
    p.pump();
    p.take_events();
    // The server drains while the client, not knowing yet, opens two more.
    p.server.go_away(true);
    assert_eq!(p.client.open_stream(&get("/5"), true), Ok(5));
    assert_eq!(p.client.open_stream(&get("/7"), true), Ok(7));
    p.pump();
    let (client, _) = p.take_events();
    assert_eq!(
        client,
        [
            CEv::GoAway(3, ErrorCode::NO_ERROR),
            CEv::Reset(5, ErrorCode::REFUSED_STREAM),
            CEv::Reset(7, ErrorCode::REFUSED_STREAM),
        ]
    );
    assert_eq!(
        p.client.open_stream(&get("/9"), true),
        Err(OpenError::Closed)
    );
    assert_eq!(p.client.can_open(), 0);
    // Those it took finish, and then the connection is closed.
    for stream in [1, 3] {
        p.server
            .send_headers(stream, OK.iter().copied(), true)
            .unwrap();
    }
    p.pump();
    let (client, _) = p.take_events();
    assert_eq!(client.len(), 2);
    assert_eq!(p.client.state(), State::Closed);
}

#[test]
fn the_clients_goaway_lets_its_streams_finish() {
    let mut p = pair();
    let id = p.client.open_stream(&get("/"), true).unwrap();
    p.client.go_away();
    assert_eq!(p.client.state(), State::Draining { last_stream: id });
    assert_eq!(
        p.client.open_stream(&get("/"), true),
        Err(OpenError::Closed)
    );
    p.pump();
    let (_, server) = p.take_events();
    assert!(matches!(
        server[..],
        [Ev::Request { .. }, Ev::GoAway(0, ErrorCode::NO_ERROR)]
    ));
    p.server.send_headers(id, OK.iter().copied(), true).unwrap();
    p.pump();
    assert_eq!(p.client.state(), State::Closed);
}

#[test]
fn stream_ids_near_the_end_drain_the_connection() {
    let limits = Limits {
        stream_id_high_water: 7,
        ..Limits::default()
    };
    let mut p = Pair::new(limits, Limits::default());
    for want in [1, 3, 5] {
        assert_eq!(p.client.open_stream(&get("/"), true), Ok(want));
    }
    assert_eq!(p.client.state(), State::Draining { last_stream: 5 });
    assert_eq!(
        p.client.open_stream(&get("/"), true),
        Err(OpenError::Closed)
    );
}

#[test]
fn a_header_list_the_server_would_refuse_is_not_sent() {
    let server = Limits {
        max_header_list_size: 200,
        ..Limits::default()
    };
    let mut p = Pair::new(Limits::default(), server);
    let mut big = get("/");
    big.push(b"x-big", &[b'v'; 100]);
    assert_eq!(p.client.open_stream(&big, true), Err(OpenError::TooLarge));
    assert!(!p.client.has_output());
    assert_eq!(p.client.open_stream(&get("/"), true), Ok(1));
}
