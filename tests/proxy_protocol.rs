//! The PROXY protocol: lb's `--accept-proxy` and `--send-proxy` against headers written
//! by hand, and against a real HAProxy on both sides when one is installed.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tls::TempDir;
use common::*;
use lb::proxy_protocol::{self, Addresses, Parsed, Version};

fn header(version: Version, source: &str, destination: SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    let addresses = Addresses {
        source: source.parse().unwrap(),
        destination,
    };
    proxy_protocol::write(version, Some(addresses), &mut out);
    out
}

/// The last X-Forwarded-For line of a /headers answer.
fn forwarded_for(r: &Response) -> String {
    // HAProxy writes header names in lower case.
    r.text()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, value)| value.to_string())
        .next_back()
        .unwrap_or_default()
}

#[test]
fn the_carried_address_is_the_client_for_xff_and_the_access_log() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--accept-proxy", "--access-log"]);
    for (version, source) in [
        (Version::V1, "203.0.113.9:5555"),
        (Version::V2, "[2001:db8::7]:1"),
    ] {
        let mut c = Client::new(lb.addr);
        c.send(&header(version, source, lb.addr));
        c.send(b"GET /headers HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(false).unwrap().unwrap();
        let ip = source.parse::<SocketAddr>().unwrap().ip().to_string();
        assert_eq!(forwarded_for(&r), ip);
        assert!(
            lb.wait_log(
                &format!("{source} \"GET /headers\""),
                Duration::from_secs(5)
            ),
            "{}",
            lb.log_text()
        );
        // Keep-alive goes on without a second header.
        assert_eq!(c.get("/").status, 200);
    }
}

#[test]
fn hash_source_hashes_the_carried_address() {
    let (b1, b2, b3) = (backend("a", &[]), backend("b", &[]), backend("c", &[]));
    let lb = lb(&[&b1, &b2, &b3], &["--accept-proxy", "-s", "hash-source"]);
    for n in 1..=8u8 {
        let carried = format!("198.51.100.{n}:4000");
        let served: Vec<String> = [2u8, 3]
            .iter()
            .map(|&via| {
                let mut c =
                    Client::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, via), lb.addr));
                c.send(&header(Version::V1, &carried, lb.addr));
                served_by(&c.get("/"))
            })
            .collect();
        assert_eq!(served[0], served[1], "{carried} went to two backends");
    }
}

#[test]
fn a_missing_malformed_or_untrusted_header_closes_the_connection() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--accept-proxy", "--admin", "127.0.0.1:0"]);
    for first in [
        &b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let mut c = Client::new(lb.addr);
        c.send(first);
        // Closed unanswered (a reset, with the request unread, or an end of file).
        assert!(
            c.read_response(false).map_or(true, |r| r.is_none()),
            "answered without a header"
        );
    }
    assert_metric(&lb, "lb_proxy_headers_refused_total 2");

    let only_from_elsewhere = lb_addrs(
        &[&b.addr.to_string()],
        &["--accept-proxy-from", "10.0.0.0/8,192.168.1.1"],
    );
    let mut c = Client::new(only_from_elsewhere.addr);
    let mut first = header(Version::V1, "203.0.113.9:1", only_from_elsewhere.addr);
    first.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    // lb may close as soon as it has read the header, so the write itself may fail
    // (a broken pipe or a reset): either way the request must go unanswered.
    if c.stream.write_all(&first).is_ok() {
        assert!(c.read_response(false).map_or(true, |r| r.is_none()));
    }
}

/// A backend that reads a PROXY header, then answers every request on the connection
/// (keep-alive) with what that header said.
fn header_echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut got = Vec::new();
                let mut byte = [0u8; 1];
                let said = loop {
                    if s.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    got.push(byte[0]);
                    match proxy_protocol::parse(&got) {
                        Ok(Parsed::Partial) => continue,
                        Ok(Parsed::Header { addresses, .. }) => break format!("{addresses:?}"),
                        Err(e) => break e.to_string(),
                    }
                };
                loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        if s.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{said}",
                        said.len()
                    );
                    if s.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// lb in MODE with `--send-proxy VERSION` in front of `backend`.
fn sending_proxy(backend: SocketAddr, mode: &str, version: &str) -> Proc {
    let args = [
        "-m",
        mode,
        "--send-proxy",
        version,
        "--health-interval",
        "0",
    ];
    lb_addrs(&[&backend.to_string()], &args)
}

#[test]
fn a_backend_connection_with_a_proxy_header_serves_no_other_client() {
    let lb = sending_proxy(header_echo_backend(), "http", "v1");
    for n in [2u8, 3, 4] {
        let mut c = Client::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, n), lb.addr));
        for _ in 0..2 {
            let said = c.get("/").text();
            assert!(
                said.contains(&format!("source: 127.0.0.{n}:")),
                "client {n}: {said}"
            );
        }
    }
}

#[test]
fn send_proxy_puts_the_client_first_in_http_and_tcp_mode() {
    let backend = header_echo_backend();
    for mode in ["http", "tcp"] {
        for version in ["v1", "v2"] {
            let lb = sending_proxy(backend, mode, version);
            let mut c = Client::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 9), lb.addr));
            let r = c.get("/");
            let said = r.text();
            assert!(
                said.contains("source: 127.0.0.9:"),
                "{mode} {version}: {said}"
            );
            assert!(
                said.contains(&format!("destination: {}", lb.addr)),
                "{mode} {version}: {said}"
            );
        }
    }
}

/// HAProxy with `config`, on a port of its own; `None` (after saying why) when HAProxy is
/// not installed, except in CI, where .ci/run installs it.
fn haproxy(config: &str) -> Option<(Proc, TempDir)> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install haproxy (.ci/run)"
        );
        eprintln!("haproxy is not installed: skipping");
        return None;
    }
    let port = free_port();
    let dir = TempDir::new();
    let file = dir.write(
        "haproxy.cfg",
        &format!(
            "global\n    maxconn 100\ndefaults\n    timeout connect 2s\n    timeout client 10s\n    \
             timeout server 10s\n{}",
            config.replace("PORT", &port.to_string())
        ),
    );
    let child = Command::new("haproxy")
        .args(["-db", "-f", &file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proc = Proc {
        child,
        addr,
        log: Default::default(),
    };
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
            addr
        )
        .is_ok()),
        "haproxy did not start listening"
    );
    Some((proc, dir))
}

#[test]
fn haproxy_send_proxy_and_send_proxy_v2_in_front_of_accept_proxy() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--accept-proxy"]);
    for option in ["send-proxy", "send-proxy-v2"] {
        let Some((haproxy, _dir)) = haproxy(&format!(
            "frontend f\n    mode tcp\n    bind 127.0.0.1:PORT\n    default_backend b\n\
             backend b\n    mode tcp\n    server lb {} {option}\n",
            lb.addr
        )) else {
            return;
        };
        let mut c = Client::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 7), haproxy.addr));
        let r = c.get("/headers");
        assert_eq!(r.status, 200, "{option}");
        assert_eq!(forwarded_for(&r), "127.0.0.7", "{option}");
    }
}

#[test]
fn send_proxy_towards_haproxy_accept_proxy() {
    let b = backend("one", &[]);
    let Some((haproxy, _dir)) = haproxy(&format!(
        "frontend f\n    mode http\n    bind 127.0.0.1:PORT accept-proxy\n    option forwardfor\n    \
         default_backend b\nbackend b\n    mode http\n    server s {}\n",
        b.addr
    )) else {
        return;
    };
    for (mode, version) in [("tcp", "v1"), ("tcp", "v2"), ("http", "v2")] {
        let lb = sending_proxy(haproxy.addr, mode, version);
        let mut c = Client::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 8), lb.addr));
        let r = c.get("/headers");
        assert_eq!(r.status, 200, "{mode} {version}: {}", r.text());
        // HAProxy's own X-Forwarded-For, from the header lb sent.
        assert_eq!(
            forwarded_for(&r),
            "127.0.0.8",
            "{mode} {version}: {}",
            r.text()
        );
    }
}
