//! A hand-driven backend for tests that need bytes no real server would send: it
//! answers every request head with a fixed reply and records all it received.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Accepts connections for at most `LIFETIME`; each one is read until the peer closes
/// or goes quiet for a second, and answered once per request head seen.
pub struct RawBackend {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
}

const LIFETIME: Duration = Duration::from_secs(60);

impl RawBackend {
    pub fn start(reply: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw backend");
        let addr = listener.local_addr().expect("raw backend address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        let reply = reply.to_vec();
        std::thread::spawn(move || {
            let end = Instant::now() + LIFETIME;
            while Instant::now() < end {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (sink, reply) = (Arc::clone(&sink), reply.clone());
                        std::thread::spawn(move || serve(sock, &sink, &reply));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RawBackend { addr, received }
    }

    /// Everything every connection has sent so far, in arrival order.
    pub fn received(&self) -> String {
        let bytes = self.received.lock().map(|r| r.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn serve(mut sock: TcpStream, sink: &Mutex<Vec<u8>>, reply: &[u8]) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.read(&mut buf) {
        if n == 0 {
            return;
        }
        if let Ok(mut r) = sink.lock() {
            r.extend_from_slice(&buf[..n]);
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if sock.write_all(reply).is_err() {
                return;
            }
        }
    }
}

/// Sends `raw` on a fresh connection and returns every byte that comes back until the
/// peer closes (or `within` passes), and whether it closed.
pub fn exchange_raw(addr: SocketAddr, raw: &[u8], within: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + within;
    let mut closed = false;
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), closed)
}
