//! Memory under a slowloris crowd (issue 16, item 11): a partial request head holds
//! a small buffer, not a full-size one. Bounded with a wide margin; the figures
//! themselves come from scripts/compare.sh.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{backend, get, lb};

#[test]
fn partial_request_heads_hold_small_buffers() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &["--client-timeout", "30s"]);
    for _ in 0..4 {
        assert_eq!(get(lb.addr, "/").status, 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = lb.rss_kib();
    let crowd: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(lb.addr).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: slow")
                .expect("send half a head");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    let after = lb.rss_kib();
    // A full-size 32 KiB buffer each would be over 30 MiB.
    assert!(
        after < before + 8 * 1024,
        "1000 partial heads grew lb from {before} KiB to {after} KiB"
    );
    drop(crowd);
}
