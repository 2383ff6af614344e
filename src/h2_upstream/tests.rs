//! A stream's mapping without sockets: lb's client codec talks to lb's own server codec,
//! the request going in as the HTTP/1 code writes it and the response coming out as the
//! HTTP/1 code reads it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::frames::on_event;
use super::stream::Stream;
use crate::conn::StreamIo;
use crate::h2::client::ClientConnection;
use crate::h2::connection::{Connection, Event};
use crate::h2::hpack::HeaderList;
use crate::h2::limits::Limits;

struct Pair {
    client: ClientConnection,
    server: Connection,
    /// Bytes on their way to the client, and to the server.
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    now: Instant,
}

/// What the server codec made of the client's frames.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Request(Vec<(String, String)>, bool),
    Data(Vec<u8>, bool),
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        let mut pair = Pair {
            client: ClientConnection::new(Limits::default(), now),
            server: Connection::new(Limits::default(), now),
            to_client: Vec::new(),
            to_server: Vec::new(),
            now,
        };
        pair.server_reads();
        pair.client_reads(&mut []);
        pair
    }

    /// The server codec takes what the client sent; returns its requests and body bytes.
    fn server_reads(&mut self) -> Vec<Seen> {
        self.client.take_output(&mut self.to_server);
        let mut seen = Vec::new();
        loop {
            let (used, event) = self
                .server
                .next_event(&self.to_server, self.now)
                .expect("well-formed frames");
            let more = event.is_some() || used > 0;
            match event {
                Some(Event::Request {
                    headers,
                    end_stream,
                    ..
                }) => {
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    let list = headers.iter().map(|(n, v)| (text(n), text(v))).collect();
                    seen.push(Seen::Request(list, end_stream));
                }
                Some(Event::Data {
                    data, end_stream, ..
                }) => seen.push(Seen::Data(data.to_vec(), end_stream)),
                _ => {}
            }
            self.to_server.drain(..used);
            if !more {
                break;
            }
        }
        self.server.take_output(&mut self.to_client);
        seen
    }

    /// The client codec takes what the server sent, into `streams`.
    fn client_reads(&mut self, streams: &mut [Stream]) {
        loop {
            let (used, event) = self
                .client
                .next_event(&self.to_client, self.now)
                .expect("well-formed frames");
            let more = event.is_some() || used > 0;
            if let Some(event) = event {
                assert!(on_event(event, streams).is_none(), "a stream broke");
            }
            self.to_client.drain(..used);
            if !more {
                break;
            }
        }
    }
}

fn stream() -> Stream {
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
    let io = StreamIo::new((0, 0), Rc::default(), (addr, addr));
    Stream::new((0, 0), Rc::new(RefCell::new(io)))
}

fn request_of(s: &Stream, bytes: &[u8]) {
    s.io.borrow_mut().answer.extend_from_slice(bytes);
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_chunked_post_goes_out_as_headers_and_data_with_te_trailers() {
    let mut p = Pair::new();
    let mut s = stream();
    let mut list = HeaderList::new();
    request_of(
        &s,
        b"POST /up?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n",
    );
    assert_eq!(s.open(&mut p.client, &mut list, "http"), Ok(false));
    request_of(&s, b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(s.open(&mut p.client, &mut list, "http"), Ok(true));
    s.send(&mut p.client, p.now).expect("sent");
    let head = pairs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "example.com"),
        (":path", "/up?x=1"),
        ("te", "trailers"),
    ]);
    assert_eq!(
        p.server_reads(),
        [
            Seen::Request(head, false),
            Seen::Data(b"hello".to_vec(), false)
        ]
    );
    request_of(&s, b"0\r\n\r\n");
    s.send(&mut p.client, p.now).expect("sent");
    assert_eq!(p.server_reads(), [Seen::Data(Vec::new(), true)]);
    assert!(s.io.borrow().answer.is_empty());
}

#[test]
fn a_response_without_a_length_comes_back_chunked_with_its_trailers() {
    let mut p = Pair::new();
    let mut streams = [stream()];
    let mut list = HeaderList::new();
    request_of(&streams[0], b"GET /grpc HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(streams[0].open(&mut p.client, &mut list, "http"), Ok(true));
    p.server_reads();
    let status: [(&[u8], &[u8]); 2] = [(b":status", b"200"), (b"content-type", b"x")];
    p.server.send_headers(1, status, false).expect("head");
    p.server.send_data(1, b"abc", false, p.now).expect("data");
    let trailers: [(&[u8], &[u8]); 1] = [(b"grpc-status", b"0")];
    p.server.send_headers(1, trailers, true).expect("trailers");
    p.server.take_output(&mut p.to_client);
    p.client_reads(&mut streams);
    let io = streams[0].io.borrow();
    assert_eq!(
        String::from_utf8_lossy(&io.request),
        "HTTP/1.1 200 OK\r\ncontent-type: x\r\ntransfer-encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n"
    );
    // Only the body counts toward the window given back as the exchange reads.
    assert_eq!(io.body_unread, 3);
    drop(io);
    assert!(streams[0].complete());
}

#[test]
fn a_response_with_a_length_keeps_it_and_its_body_is_passed_as_it_came() {
    let mut p = Pair::new();
    let mut streams = [stream()];
    let mut list = HeaderList::new();
    request_of(&streams[0], b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(streams[0].open(&mut p.client, &mut list, "http"), Ok(true));
    p.server_reads();
    let head: [(&[u8], &[u8]); 2] = [(b":status", b"404"), (b"content-length", b"4")];
    p.server.send_headers(1, head, false).expect("head");
    p.server.send_data(1, b"gone", true, p.now).expect("data");
    p.server.take_output(&mut p.to_client);
    p.client_reads(&mut streams);
    assert_eq!(
        String::from_utf8_lossy(&streams[0].io.borrow().request),
        "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\ngone"
    );
}

mod refused;
