//! Upgrade tunnels: WebSockets (tungstenite on both ends) through lb over plain and TLS
//! listeners, and what happens to upgrade requests that do not become tunnels.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::tls::*;
use common::*;
use tungstenite::{Error, Message};

/// A WebSocket server that echoes every message; "close please" makes it close first.
/// It reports how each connection ended.
fn ws_server() -> (SocketAddr, mpsc::Receiver<&'static str>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let tx = tx.clone();
            thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(conn) else {
                    let _ = tx.send("handshake failed");
                    return;
                };
                loop {
                    match ws.read() {
                        Ok(Message::Text(t)) if t.as_str() == "close please" => {
                            let _ = ws.close(None);
                        }
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                            ws.send(m).unwrap();
                        }
                        Ok(Message::Close(_)) => {
                            let _ = tx.send("closed by the client");
                        }
                        Ok(_) => {}
                        Err(Error::ConnectionClosed) => {
                            let _ = tx.send("ended");
                            return;
                        }
                        Err(_) => {
                            let _ = tx.send("broken");
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Talks both ways over `ws`, then closes from the client or, with `server_closes`,
/// has the server close; checks that the other side sees it.
fn exchange_and_close<S: Read + Write>(
    mut ws: tungstenite::WebSocket<S>,
    events: &mpsc::Receiver<&'static str>,
    server_closes: bool,
) {
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    let blob = vec![7u8; 200_000];
    ws.send(Message::binary(blob.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(blob));
    if server_closes {
        ws.send(Message::text("close please")).unwrap();
        assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    } else {
        ws.close(None).unwrap();
        let within = Duration::from_secs(5);
        assert_eq!(events.recv_timeout(within), Ok("closed by the client"));
    }
    loop {
        match ws.read() {
            Err(Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => panic!("the close did not complete: {e}"),
        }
    }
    let mut last = events.recv_timeout(Duration::from_secs(5));
    if server_closes {
        // The server sees the client's reply to its close first.
        assert_eq!(last, Ok("closed by the client"));
        last = events.recv_timeout(Duration::from_secs(5));
    }
    assert_eq!(last, Ok("ended"));
}

#[test]
fn websockets_through_a_plain_listener_both_ways_and_closed_from_either_side() {
    let (server, events) = ws_server();
    let lb = lb_addrs(
        &[&server.to_string()],
        &["--health-interval", "0", "--admin", "127.0.0.1:0"],
    );
    let url = format!("ws://{}/chat", lb.addr);
    for server_closes in [false, true] {
        let (ws, resp) = tungstenite::client(url.as_str(), connect(lb.addr)).unwrap();
        assert_eq!(resp.status(), 101);
        assert!(resp.headers().contains_key("x-request-id"));
        if !server_closes {
            assert_metric(&lb, "lb_tunnels_open 1");
        }
        exchange_and_close(ws, &events, server_closes);
    }
    let admin = admin_addr(&lb);
    assert!(eventually(Duration::from_secs(5), || {
        let m = get(admin, "/metrics").text();
        m.contains("lb_tunnels_open 0\n") && m.contains("lb_upgrades_total 2\n")
    }));
}

#[test]
fn websockets_through_tls_termination() {
    let (server, events) = ws_server();
    let site = Site::new();
    let lb = site.lb(&[server], &["--health-interval", "0"]);
    let addr = tls_addr(&lb);
    let config = site.ca.client_config();
    for server_closes in [false, true] {
        let stream = tls_connect(&config, addr, "localhost");
        let url = format!("wss://localhost:{}/chat", addr.port());
        let (ws, resp) = tungstenite::client(url.as_str(), stream).unwrap();
        assert_eq!(resp.status(), 101);
        exchange_and_close(ws, &events, server_closes);
    }
}

#[test]
fn an_idle_tunnel_is_closed_by_the_idle_timeout() {
    let (server, _events) = ws_server();
    let lb = lb_addrs(
        &[&server.to_string()],
        &["--health-interval", "0", "--idle-timeout", "300ms"],
    );
    let url = format!("ws://{}/", lb.addr);
    let (mut ws, _) = tungstenite::client(url.as_str(), connect(lb.addr)).unwrap();
    match ws.read() {
        Err(Error::Io(_) | Error::ConnectionClosed | Error::Protocol(_)) => {}
        other => panic!("the tunnel stayed open: {other:?}"),
    }
}

const UPGRADE: &str = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[test]
fn an_upgrade_answered_with_200_goes_on_as_plain_http() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(format!("GET /headers HTTP/1.1\r\nHost: t\r\n{UPGRADE}\r\n").as_bytes());
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 200);
    let seen = r.text();
    assert!(seen.contains("Upgrade: websocket\r\n"), "{seen}");
    assert!(seen.contains("Connection: upgrade\r\n"), "{seen}");
    // The same connection serves the next request.
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn h2c_upgrades_are_stripped() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &[]);
    let r = request(
        lb.addr,
        b"GET /headers HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = r.text().to_ascii_lowercase();
    assert!(
        !seen.contains("upgrade") && !seen.contains("http2-settings"),
        "{seen}"
    );
}

#[test]
fn requests_pipelined_behind_an_upgrade_get_400() {
    let (server, _events) = ws_server();
    let lb = lb_addrs(&[&server.to_string()], &["--health-interval", "0"]);
    let mut c = Client::new(lb.addr);
    c.send(
        format!("GET /chat HTTP/1.1\r\nHost: t\r\n{UPGRADE}\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .as_bytes(),
    );
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn a_101_to_a_request_that_asked_for_no_upgrade_is_502() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        );
        let _ = s.read(&mut buf);
    });
    let lb = lb_addrs(&[&addr.to_string()], &["--health-interval", "0"]);
    assert_eq!(get(lb.addr, "/").status, 502);
}

#[test]
fn h2c_is_taken_out_of_an_upgrade_list_and_the_rest_goes_on() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &[]);
    for (offer, forwarded) in [("websocket, h2c", "websocket"), ("h2c, foo", "foo")] {
        let raw = format!(
            "GET /headers HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: {offer}\r\n\r\n"
        );
        let r = request(lb.addr, raw.as_bytes());
        assert_eq!(r.status, 200);
        let seen = r.text();
        assert!(
            seen.contains(&format!("\r\nUpgrade: {forwarded}\r\n")),
            "{seen}"
        );
        assert!(!seen.to_ascii_lowercase().contains("h2c"), "{seen}");
    }
}

#[test]
fn a_101_to_a_protocol_the_client_did_not_offer_is_502_and_no_tunnel() {
    let b = RawBackend::start(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n\
          FOO PROTOCOL BYTES",
    );
    let lb = lb_addrs(&[&b.addr.to_string()], &["--health-interval", "0"]);
    let mut c = Client::new(lb.addr);
    c.send(format!("GET /chat HTTP/1.1\r\nHost: t\r\n{UPGRADE}\r\n").as_bytes());
    let r = c
        .read_response(false)
        .expect("an HTTP answer")
        .expect("an answer, not a 101 and the bytes of a tunnel");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("FOO"), "{}", r.text());
    // The connection still speaks HTTP: the next answer is a framed one, not the bytes
    // of a protocol no one asked for.
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
}
