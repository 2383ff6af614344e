//! The event loop with 100 000 POST copies waiting for a retry: a GET round trip through
//! lb should cost the same as with none. Each POST goes to a live backend (which answers
//! 201) and to a dead address (whose copy then waits on the timer wheel for a retry far in
//! the future), so after N POSTs exactly N retries are pending.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

const PENDING: usize = 100_000;

struct Running(Child, SocketAddr);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &str, args: &[&str]) -> Running {
    let mut child = Command::new(bin)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start binary");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("a log line").expect("readable");
        if let Some(a) = line.split("listening on ").nth(1) {
            break a
                .split_whitespace()
                .next()
                .expect("address")
                .parse()
                .expect("an address");
        }
    };
    // Keep draining the log so that the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running(child, addr)
}

fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Reads one Content-Length-framed response from `s`, returning its status.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return head[9..12].parse().unwrap_or(0);
            }
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "lb closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `n` POSTs in pipelined batches and waits for every 201.
fn post_many(addr: SocketAddr, n: usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut buf = Vec::new();
    let batch = 100;
    for start in (0..n).step_by(batch) {
        let mut req = Vec::new();
        for i in start..(start + batch).min(n) {
            let line = format!(
                "POST /register?username=u{i}&password=p HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n"
            );
            req.extend_from_slice(line.as_bytes());
        }
        s.write_all(&req).expect("send");
        for _ in start..(start + batch).min(n) {
            assert_eq!(read_response(&mut s, &mut buf), 201);
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let backend = start(
        env!("CARGO_BIN_EXE_backend"),
        &["--listen", "127.0.0.1:0", "--name", "live"],
    );
    let dead = dead_address();
    let live = backend.1.to_string();
    let lb_args = [
        "-l",
        "127.0.0.1:0",
        "--admin",
        "off",
        "-b",
        &live,
        "-b",
        &dead,
        "-s",
        "n-to-1",
        "--health-interval",
        "0",
        "--retry-base",
        "10m",
        "--retry-max",
        "10m",
        "--max-pending",
        "200000",
        "--pool-size",
        "8",
    ];
    let mut group = c.benchmark_group("loop_with_pending_retries");
    group.measurement_time(Duration::from_secs(5));
    for pending in [0, PENDING] {
        let lb = start(env!("CARGO_BIN_EXE_lb"), &lb_args);
        let before = rss_kib(lb.0.id());
        post_many(lb.1, pending);
        let after = rss_kib(lb.0.id());
        eprintln!(
            "{pending} pending retries: lb resident {before} KiB -> {after} KiB ({} bytes per pending write)",
            (after.saturating_sub(before) * 1024)
                .checked_div(pending as u64)
                .unwrap_or(0)
        );
        let mut s = TcpStream::connect(lb.1).expect("connect");
        let mut buf = Vec::new();
        group.bench_function(format!("get_round_trip/{pending}_pending"), |b| {
            b.iter(|| {
                s.write_all(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
                    .expect("send");
                // n-to-1 sends every GET to the live backend; only POSTs reach the dead one.
                read_response(&mut s, &mut buf)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
