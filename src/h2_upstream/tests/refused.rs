//! A stream the server refuses before answering keeps its whole request for the exchange
//! to send elsewhere; one reset otherwise, or refused once answering began, does not.

use super::{Pair, request_of, stream};
use crate::buffer::BufferPool;
use crate::h2::error::ErrorCode;
use crate::h2::hpack::HeaderList;
use crate::h2_upstream::frames::on_event;
use crate::h2_upstream::stream::Stream;
use crate::state::BUFFER_SIZE;

const POST: &[u8] = b"POST /call HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";

/// A POST opened and sent whole on stream 1, which the server saw.
fn posted(p: &mut Pair) -> [Stream; 1] {
    let mut streams = [stream()];
    let mut list = HeaderList::new();
    request_of(&streams[0], POST);
    assert_eq!(streams[0].open(&mut p.client, &mut list, "http"), Ok(true));
    streams[0].send(&mut p.client, p.now).expect("sent");
    p.server_reads();
    streams
}

/// The server's frames taken in; whether stream 1 broke.
fn client_reads_reset(p: &mut Pair, streams: &mut [Stream]) -> bool {
    p.server.take_output(&mut p.to_client);
    let mut broke = false;
    loop {
        let (used, event) = p
            .client
            .next_event(&p.to_client, p.now)
            .expect("well-formed frames");
        let more = event.is_some() || used > 0;
        if let Some(event) = event {
            broke |= on_event(event, streams).is_some();
        }
        p.to_client.drain(..used);
        if !more {
            return broke;
        }
    }
}

/// What the exchange would send elsewhere, if anything.
fn replayed(s: &Stream) -> Option<Vec<u8>> {
    let mut buf = BufferPool::new(BUFFER_SIZE, 1).get();
    let io = s.io.borrow();
    io.replay
        .copy_into(&io.answer, &mut buf)
        .then(|| buf.data().to_vec())
}

#[test]
fn a_post_refused_before_any_answer_is_kept_whole() {
    let mut p = Pair::new();
    let mut streams = posted(&mut p);
    p.server.send_reset(1, ErrorCode::REFUSED_STREAM);
    assert!(client_reads_reset(&mut p, &mut streams));
    assert!(streams[0].io.borrow().replay.refused());
    assert_eq!(replayed(&streams[0]).as_deref(), Some(POST));
}

#[test]
fn a_post_reset_with_another_code_is_not_replayed() {
    let mut p = Pair::new();
    let mut streams = posted(&mut p);
    p.server.send_reset(1, ErrorCode::INTERNAL_ERROR);
    assert!(client_reads_reset(&mut p, &mut streams));
    assert!(!streams[0].io.borrow().replay.refused());
    assert_eq!(replayed(&streams[0]), None);
}

#[test]
fn a_post_refused_after_its_answer_began_is_not_replayed() {
    let mut p = Pair::new();
    let mut streams = posted(&mut p);
    let head: [(&[u8], &[u8]); 1] = [(b":status", b"200")];
    p.server.send_headers(1, head, false).expect("head");
    p.server.send_reset(1, ErrorCode::REFUSED_STREAM);
    assert!(client_reads_reset(&mut p, &mut streams));
    assert_eq!(replayed(&streams[0]), None);
}

#[test]
fn a_request_longer_than_a_buffer_is_not_kept() {
    let mut p = Pair::new();
    let s = stream();
    let mut list = HeaderList::new();
    let body = vec![b'x'; BUFFER_SIZE];
    let head = format!(
        "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request_of(&s, head.as_bytes());
    request_of(&s, &body);
    let mut streams = [s];
    assert_eq!(streams[0].open(&mut p.client, &mut list, "http"), Ok(true));
    // The first window (64 KiB less one byte) takes the whole body: what went out is
    // more than a buffer, and was not kept.
    for _ in 0..8 {
        streams[0].send(&mut p.client, p.now).expect("sent");
        p.server_reads();
    }
    assert!(streams[0].io.borrow().answer.is_empty());
    p.server.send_reset(1, ErrorCode::REFUSED_STREAM);
    assert!(client_reads_reset(&mut p, &mut streams));
    assert!(streams[0].io.borrow().replay.refused());
    assert_eq!(replayed(&streams[0]), None);
}
