//! Cost of the per-request work on the hot path: parsing a request head and writing the
//! head we forward, making a request id, walking a chunked body, and parsing a backend's
//! response head.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lb::buffer::BufferPool;
use lb::http::body::Framing;
use lb::http::head::{
    ClientSide, ForwardInfo, MAX_REQUEST_LINE, Method, RequestId, Routing, parse_request,
    parse_response,
};
use lb::route::RouteTable;

/// What a browser sends: eight header fields, long values.
const BROWSER_GET: &[u8] = b"GET /products/42?ref=home&utm_source=newsletter HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://shop.example.com/\r\n\
Cookie: session=3f2a9c1e8b7d4a6f; theme=dark; cart=17\r\n\
Connection: keep-alive\r\n\
\r\n";

/// What wrk sends by default.
const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A small form POST, Content-Length framed.
const POST: &[u8] = b"POST /register HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 31\r\n\
\r\n\
username=jack&password=secret12";

/// A demo backend's answer to `GET /`.
const RESPONSE_200: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
X-Request-Id: 00000000000000a1\r\n\
\r\n\
Hello from server1\r\n";

/// A chunked body: 16 chunks of 1 KiB, one with an extension, then a trailer.
fn chunked_body() -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..16 {
        if i == 5 {
            body.extend_from_slice(b"400;name=value\r\n");
        } else {
            body.extend_from_slice(b"400\r\n");
        }
        body.extend(std::iter::repeat_n(b'a' + i as u8, 1024));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\nX-Checksum: 1234\r\n\r\n");
    body
}

fn info() -> ForwardInfo<'static> {
    ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        fresh_id: RequestId::uuid(1),
        default_host: "h",
        tls: false,
    }
}

fn requests(c: &mut Criterion) {
    let info = info();
    let mut pool = BufferPool::new(32 * 1024, 4);
    let mut out = pool.get();
    // What the flags mean: one route, for every request.
    let table = RouteTable::everything_to("default");
    let mut scratch = vec![0; 2 * (MAX_REQUEST_LINE + 2)];
    let mut group = c.benchmark_group("parse_request");
    for (name, input) in [
        ("browser GET, 8 headers", BROWSER_GET),
        ("wrk GET", WRK_GET),
        ("POST, Content-Length", POST),
    ] {
        // Check once that the input is a complete, accepted head.
        let head = parse_request(
            input,
            &info,
            &mut out,
            Routing {
                table: &table,
                scratch: &mut scratch,
            },
        )
        .expect("accepted")
        .expect("complete");
        if input == POST {
            assert_eq!(head.method, Method::Post);
            assert_eq!(head.framing, Framing::Length(31));
        }
        out.clear();
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let head = parse_request(
                    black_box(input),
                    &info,
                    &mut out,
                    Routing {
                        table: &table,
                        scratch: &mut scratch,
                    },
                );
                black_box(&head);
                out.clear();
            })
        });
    }
    group.finish();
}

/// Every request read gets a fresh id (used if the client sent none): 16 bytes from the
/// thread's CSPRNG, written out as a UUID.
fn request_ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_id");
    group.bench_function("random UUIDv4", |b| {
        b.iter(|| black_box(RequestId::random()))
    });
    group.finish();
}

fn chunked(c: &mut Criterion) {
    let body = chunked_body();
    let mut check = Framing::chunked();
    let mut payload = 0;
    assert_eq!(check.walk(&body, |d| payload += d.len()), Ok(body.len()));
    assert_eq!(payload, 16 * 1024);
    assert!(check.is_done());

    let mut group = c.benchmark_group("body");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked walk, 16 x 1 KiB", |b| {
        b.iter(|| {
            let mut framing = Framing::chunked();
            let mut sum = 0usize;
            let used = framing.walk(black_box(&body), |d| sum += d.len());
            black_box((used, sum))
        })
    });
    group.finish();
}

fn responses(c: &mut Criterion) {
    let id = RequestId::uuid(0xa1);
    let client = ClientSide {
        method: Method::Get,
        version: 1,
        keep_alive: true,
        upgrade: false,
    };
    let mut pool = BufferPool::new(32 * 1024, 4);
    let mut out = pool.get();
    let head = parse_response(RESPONSE_200, client, b"", (&id, None), &mut out)
        .expect("accepted")
        .expect("complete");
    assert_eq!(head.status, 200);
    assert_eq!(head.framing, Framing::Length(20));
    out.clear();

    let mut group = c.benchmark_group("parse_response");
    group.throughput(Throughput::Bytes(RESPONSE_200.len() as u64));
    group.bench_function("200, Content-Length", |b| {
        b.iter(|| {
            let head = parse_response(black_box(RESPONSE_200), client, b"", (&id, None), &mut out);
            black_box(&head);
            out.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, requests, request_ids, chunked, responses);
criterion_main!(benches);
