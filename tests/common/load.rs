//! Steady load from test threads: keep-alive clients, clients that open a connection per
//! request, and POST writers, each counting answers and every error it meets (refused,
//! reset, closed without an answer, a status that is not the expected one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Client, served_by};

/// What the load threads saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub errors: Vec<String>,
    /// Answers by the demo backend's name (GETs).
    pub by_backend: HashMap<String, u64>,
    /// Users whose POST /register got 201.
    pub written: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors.extend(other.errors);
        for (k, v) in other.by_backend {
            *self.by_backend.entry(k).or_insert(0) += v;
        }
        self.written.extend(other.written);
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    /// Answers so far, across threads, to wait for progress.
    pub answered: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Tally>>,
}

#[derive(Clone, Copy)]
enum Kind {
    KeepAlive,
    Fresh,
    Post,
}

/// Starts `keep_alive` keep-alive GET clients, `fresh` clients that connect for every
/// GET, and `posts` clients that register a new user per request.
pub fn start(addr: SocketAddr, keep_alive: usize, fresh: usize, posts: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let kinds = std::iter::repeat_n(Kind::KeepAlive, keep_alive)
        .chain(std::iter::repeat_n(Kind::Fresh, fresh))
        .chain(std::iter::repeat_n(Kind::Post, posts));
    let threads = kinds
        .enumerate()
        .map(|(n, kind)| {
            let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
            std::thread::spawn(move || run(addr, kind, n, &stop, &answered))
        })
        .collect();
    Load {
        stop,
        answered,
        threads,
    }
}

impl Load {
    /// Waits until `more` answers arrived after now (or 20 s passed).
    pub fn progress(&self, more: u64) {
        let target = self.answered.load(Ordering::Relaxed) + more;
        super::eventually(Duration::from_secs(20), || {
            self.answered.load(Ordering::Relaxed) >= target
        });
    }

    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for t in self.threads {
            if let Ok(tally) = t.join() {
                all.merge(tally);
            }
        }
        all
    }
}

fn run(addr: SocketAddr, kind: Kind, n: usize, stop: &AtomicBool, answered: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Client> = None;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let user = format!("w{n}x{i}");
        let raw = match kind {
            Kind::KeepAlive => "GET / HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
            Kind::Fresh => "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string(),
            Kind::Post => format!(
                "POST /register?username={user}&password=p HTTP/1.1\r\nHost: t\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        };
        let c = match conn.take() {
            Some(c) => c,
            None => match std::net::TcpStream::connect(addr) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(super::IO_TIMEOUT));
                    Client::from_stream(s)
                }
                Err(e) => {
                    tally.errors.push(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        let mut c = c;
        if let Err(e) = std::io::Write::write_all(&mut c.stream, raw.as_bytes()) {
            tally.errors.push(format!("send: {e}"));
            continue;
        }
        let expected = if matches!(kind, Kind::Post) { 201 } else { 200 };
        match c.read_response(false) {
            Ok(Some(r)) if r.status == expected => {
                tally.ok += 1;
                answered.fetch_add(1, Ordering::Relaxed);
                match kind {
                    Kind::Post => tally.written.push(user),
                    _ => *tally.by_backend.entry(served_by(&r)).or_insert(0) += 1,
                }
                let closing = r
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                if matches!(kind, Kind::KeepAlive) && !closing {
                    conn = Some(c);
                }
            }
            Ok(Some(r)) => tally
                .errors
                .push(format!("status {}: {}", r.status, r.text())),
            Ok(None) => tally.errors.push("closed without an answer".into()),
            Err(e) => tally.errors.push(format!("read: {e}")),
        }
    }
    tally
}
