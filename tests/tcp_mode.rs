//! TCP mode (`-m tcp`) over real sockets: lb in front of small backends written here with
//! std threads, all on loopback ports chosen by the kernel.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// lb in TCP mode; active checks off unless `extra` turns them on, so that every backend
/// connection a test sees is a client's.
fn lb_tcp(backends: &[SocketAddr], extra: &[&str]) -> Proc {
    let addrs: Vec<String> = backends.iter().map(SocketAddr::to_string).collect();
    let mut args = vec!["-m", "tcp", "--health-interval", "0"];
    args.extend_from_slice(extra);
    lb_addrs(&addrs.iter().map(String::as_str).collect::<Vec<_>>(), &args)
}

/// A backend that runs `serve` on a thread for every connection it accepts.
fn serve(serve: impl Fn(TcpStream) + Send + Clone + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend");
    let addr = listener.local_addr().expect("backend address");
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
            conn.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
            let serve = serve.clone();
            thread::spawn(move || serve(conn));
        }
    });
    addr
}

/// Writes back everything it reads; passes the client's EOF on once all is written.
fn echo_backend() -> SocketAddr {
    serve(|mut conn| {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = conn.shutdown(Shutdown::Write);
    })
}

/// Says its name on every connection, then waits for the client to close.
fn named_backend(name: &'static str) -> SocketAddr {
    serve(move |mut conn| {
        let _ = conn.write_all(format!("{name}\n").as_bytes());
        let _ = conn.read_to_end(&mut Vec::new());
    })
}

/// The first line the server sends on a new connection through `lb`.
fn greeting(lb: SocketAddr) -> String {
    let mut s = connect(lb);
    read_line(&mut s)
}

fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).expect("read a line") == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Makes the next close of `s` a reset.
fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid descriptor and a `linger` of the length given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

/// Deterministic bytes of every value, no two runs of them alike.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// True when a read on `s` ends with EOF or a reset within `within`, not with a timeout.
fn sees_close(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn http_request_passes_untouched_through_tcp_mode() {
    let b = backend("plain", &[]);
    let lb = lb_tcp(&[b.addr], &[]);
    // HTTP mode would drop the hop-by-hop header and add X-Forwarded-For and X-Request-Id.
    let r = request(
        lb.addr,
        b"GET /headers HTTP/1.1\r\nHost: example\r\nConnection: close, X-Private\r\n\
          X-Private: 1\r\nX-Custom:  as is \r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = r.text();
    assert!(seen.contains("X-Private: 1\r\n"), "{seen}");
    assert!(seen.contains("Connection: close, X-Private\r\n"), "{seen}");
    assert!(seen.contains("X-Custom:  as is \r\n"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("x-forwarded-for"),
        "{seen}"
    );
    assert!(r.header("x-request-id").is_none());

    // Keep-alive is the endpoints' business: later requests ride the same backend
    // connection (the backend counts connections accepted: this is its second).
    let mut c = Client::new(lb.addr);
    for _ in 0..3 {
        assert_eq!(c.get("/conns").text().trim(), "2");
    }
}

#[test]
fn binary_protocol_passes_untouched_both_ways_at_once() {
    let lb = lb_tcp(&[echo_backend()], &[]);
    let mut s = connect(lb.addr);
    let mut sent = pattern(3 << 20, 7);
    // Things a parser would trip on: NULs, CRLFs, a lone LF and a fake HTTP head.
    let tricky = b"\0\0\r\n\r\n\nGET / HTTP/1.1\r\n";
    sent[..tricky.len()].copy_from_slice(tricky);
    let mut writer = s.try_clone().expect("clone");
    let to_send = sent.clone();
    let w = thread::spawn(move || {
        for chunk in to_send.chunks(7919) {
            writer.write_all(chunk).expect("send");
        }
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read the echo");
    w.join().expect("writer");
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the bytes changed on the way");
}

#[test]
fn client_half_close_reaches_backend_and_the_answer_still_arrives() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut conn| {
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read to EOF");
        // Answers only after the EOF, so the answer can only arrive if the pipe stayed open.
        thread::sleep(Duration::from_millis(200));
        conn.write_all(&pattern(200_000, 3)).expect("answer");
        let _ = tx.send(got);
    });
    let lb = lb_tcp(&[addr], &[]);
    let mut s = connect(lb.addr);
    s.write_all(b"QUERY everything\n").expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read the answer");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("backend saw EOF"),
        b"QUERY everything\n"
    );
    assert!(answer == pattern(200_000, 3), "answer cut or changed");
}

#[test]
fn backend_half_close_reaches_client_and_the_client_can_still_send() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut conn| {
        conn.write_all(b"BANNER then silence\n").expect("banner");
        conn.shutdown(Shutdown::Write).expect("half-close");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read to EOF");
        let _ = tx.send(got);
    });
    let lb = lb_tcp(&[addr], &[]);
    let mut s = connect(lb.addr);
    let mut banner = Vec::new();
    s.read_to_end(&mut banner).expect("banner, then EOF");
    assert_eq!(banner, b"BANNER then silence\n");
    let late = pattern(300_000, 5);
    s.write_all(&late).expect("send after EOF");
    s.shutdown(Shutdown::Write).expect("half-close");
    let got = rx.recv_timeout(IO_TIMEOUT).expect("backend saw EOF");
    assert!(got == late, "late bytes cut or changed");
    assert!(sees_close(&mut s, Duration::from_secs(3)));
}

#[test]
fn a_backend_reset_reaches_the_client_as_a_reset() {
    let addr = serve(|mut conn| {
        let mut b = [0u8; 5];
        conn.read_exact(&mut b).expect("hello");
        reset_on_close(&conn);
    });
    let lb = lb_tcp(&[addr], &[]);
    let mut s = connect(lb.addr);
    s.write_all(b"hello").expect("send");
    let mut b = [0u8; 16];
    let err = s.read(&mut b).expect_err("a reset, not data or EOF");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn a_client_reset_reaches_the_backend_as_a_reset() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut conn| {
        let mut b = [0u8; 16];
        let _ = tx.send(conn.read(&mut b).map(|_| ()).map_err(|e| e.kind()));
        let _ = tx.send(conn.read(&mut b).map(|_| ()).map_err(|e| e.kind()));
    });
    let lb = lb_tcp(&[addr], &[]);
    let mut s = connect(lb.addr);
    s.write_all(b"x").expect("send");
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).expect("first read"), Ok(()));
    reset_on_close(&s);
    drop(s);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("second read"),
        Err(ErrorKind::ConnectionReset)
    );
}

#[test]
fn hundred_megabytes_to_a_slow_reader_keep_memory_flat() {
    const TOTAL: usize = 100 << 20;
    let block = pattern(1 << 20, 11);
    // Sends as many MiB as the client's first byte says.
    let source = serve(move |mut conn| {
        let mut mib = [0u8; 1];
        let _ = conn.read_exact(&mut mib);
        for _ in 0..mib[0] {
            if conn.write_all(&block).is_err() {
                return;
            }
        }
    });
    let lb = lb_tcp(&[source], &[]);
    // Warm up: a first pipe allocates the buffers and the loop's own structures.
    let mut warm = connect(lb.addr);
    warm.write_all(&[1]).expect("ask for 1 MiB");
    let mut sink = Vec::new();
    warm.read_to_end(&mut sink).expect("warm-up transfer");
    assert_eq!(sink.len(), 1 << 20);
    drop(warm);
    thread::sleep(Duration::from_millis(200));
    let before = lb.rss_kib();

    let mut s = connect(lb.addr);
    s.write_all(&[(TOTAL >> 20) as u8])
        .expect("ask for 100 MiB");
    let expected = pattern(1 << 20, 11);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut peak) = (0usize, before);
    let started = Instant::now();
    while got < TOTAL {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "EOF after {got} bytes");
        let at = got % expected.len();
        let upto = n.min(expected.len() - at);
        assert!(
            buf[..upto] == expected[at..at + upto],
            "bytes changed at {got}"
        );
        got += n;
        // Slow: the source could send far faster, so lb must hold it back, not queue it.
        thread::sleep(Duration::from_millis(1));
        if got % (4 << 20) < n {
            peak = peak.max(lb.rss_kib());
        }
    }
    assert!(sees_close(&mut s, Duration::from_secs(5)));
    let after = lb.rss_kib();
    let growth = peak.max(after).saturating_sub(before);
    eprintln!(
        "100 MiB in {:?}; lb RSS {before} KiB before, peak {peak} KiB, {after} KiB after",
        started.elapsed()
    );
    assert!(growth < 8 * 1024, "lb grew by {growth} KiB");
}

#[test]
fn round_robin_pairs_each_connection_with_the_next_backend() {
    let addrs = [
        named_backend("one"),
        named_backend("two"),
        named_backend("three"),
    ];
    let lb = lb_tcp(&addrs, &[]);
    let names: Vec<String> = (0..6).map(|_| greeting(lb.addr)).collect();
    assert_eq!(names, ["one", "two", "three", "one", "two", "three"]);
}

#[test]
fn hash_source_keeps_a_client_address_on_one_backend() {
    let addrs = [
        named_backend("one"),
        named_backend("two"),
        named_backend("three"),
    ];
    let lb = lb_tcp(&addrs, &["-s", "hash-source"]);
    let first = greeting(lb.addr);
    for _ in 0..5 {
        assert_eq!(greeting(lb.addr), first);
    }
}

#[test]
fn least_connections_counts_open_pairs() {
    // "keeper" holds its connections open; "closer" ends each one at once.
    let keeper = named_backend("keeper");
    let closer = serve(|mut conn| {
        let _ = conn.write_all(b"closer\n");
    });
    let lb = lb_tcp(&[keeper, closer], &["-s", "least-connections"]);
    let mut held = Vec::new();
    let mut names = Vec::new();
    for _ in 0..6 {
        let mut s = connect(lb.addr);
        let name = read_line(&mut s);
        if name == "keeper" {
            held.push(s);
        } else {
            assert!(sees_close(&mut s, IO_TIMEOUT));
            drop(s);
            // Let lb see the close before the next pick.
            thread::sleep(Duration::from_millis(150));
        }
        names.push(name);
    }
    let kept = names.iter().filter(|n| *n == "keeper").count();
    assert_eq!(kept, 1, "{names:?}");
}

#[test]
fn a_dead_backend_is_skipped() {
    let dead = format!("127.0.0.1:{}", free_port());
    let live = named_backend("live");
    let lb = lb_addrs(
        &[&dead, &live.to_string()],
        &["-m", "tcp", "--health-interval", "0", "--retries", "1"],
    );
    for _ in 0..4 {
        assert_eq!(greeting(lb.addr), "live");
    }
}

#[test]
fn the_client_is_closed_when_every_backend_is_dead() {
    let dead1 = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dead2 = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let lb = lb_tcp(&[dead1, dead2], &["--retries", "1"]);
    let mut s = connect(lb.addr);
    assert!(sees_close(&mut s, Duration::from_secs(3)));
    assert!(
        lb.wait_log("no backend could take client", Duration::from_secs(3)),
        "{}",
        lb.log_text()
    );
}

#[test]
fn a_connect_timeout_moves_on_to_the_next_backend() {
    // A listener whose accept queue is full drops new SYNs: connects to it hang.
    let stuck = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: a valid listening socket; listen again only shrinks its queue.
    assert_eq!(unsafe { libc::listen(stuck.as_raw_fd(), 0) }, 0);
    let stuck_addr = stuck.local_addr().expect("address");
    // Connect until one hangs: from then on the queue is full.
    let mut fillers = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&stuck_addr, Duration::from_millis(200)) {
        fillers.push(s);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let live = named_backend("live");
    let lb = lb_tcp(&[stuck_addr, live], &["--connect-timeout", "300ms", "-v"]);
    let started = Instant::now();
    assert_eq!(greeting(lb.addr), "live");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(lb.wait_log("connect timed out", Duration::from_secs(3)));
}

#[test]
fn the_idle_timeout_closes_both_sides() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut conn| {
        let mut got = Vec::new();
        let _ = tx.send(
            conn.read_to_end(&mut got)
                .map(|_| got)
                .map_err(|e| e.kind()),
        );
    });
    let lb = lb_tcp(&[addr], &["--idle-timeout", "500ms"]);
    let mut s = connect(lb.addr);
    // Traffic keeps the pipe open well past the timeout.
    for _ in 0..8 {
        thread::sleep(Duration::from_millis(150));
        s.write_all(b"tick").expect("send while active");
    }
    let idle_from = Instant::now();
    assert!(sees_close(&mut s, Duration::from_secs(5)));
    let waited = idle_from.elapsed();
    assert!(
        waited >= Duration::from_millis(450),
        "closed after {waited:?}"
    );
    let seen = rx.recv_timeout(IO_TIMEOUT).expect("backend closed too");
    assert_eq!(seen, Ok(b"tick".repeat(8)));
}
