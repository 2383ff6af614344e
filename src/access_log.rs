//! `--access-log`: one info line per request, written when its exchange ends:
//! client address, method and target, backend, status, response bytes, duration, request id.
//!
//! The per-request state lives behind an `Option<Box<_>>` that is `None` unless the log is
//! on, so that with the log off a request allocates nothing and carries one null pointer.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::http::head::RequestId;

/// Log target, so that the lines can be told from the rest of the log.
pub const TARGET: &str = "access";

#[derive(Default)]
pub struct AccessLog(Option<Box<Entry>>);

struct Entry {
    /// Method and target as the client sent them.
    request: String,
    /// The backend's status, once its final response head went to the client.
    status: Option<u16>,
    /// Response bytes received from the backend, head and body.
    bytes: u64,
}

impl AccessLog {
    /// `request_line` runs from the method to the end of the target.
    pub fn start(enabled: bool, request_line: &[u8]) -> Self {
        AccessLog(enabled.then(|| {
            Box::new(Entry {
                request: String::from_utf8_lossy(request_line).into_owned(),
                status: None,
                bytes: 0,
            })
        }))
    }

    pub fn response_head(&mut self, status: u16) {
        if let Some(e) = self.0.as_deref_mut() {
            e.status = Some(status);
        }
    }

    pub fn response_bytes(&mut self, n: usize) {
        if let Some(e) = self.0.as_deref_mut() {
            e.bytes += n as u64;
        }
    }

    /// Writes the line. `ours` is the status lb answered with itself; the client saw it
    /// only if no backend response head reached it first. No status at all is logged as `-`.
    pub fn finish(
        self,
        client: SocketAddr,
        backend: Option<&str>,
        ours: Option<u16>,
        id: &RequestId,
        took: Duration,
    ) {
        if let Some(e) = self.0 {
            log::info!(target: TARGET, "{}", line(&e, client, backend, ours, id, took));
        }
    }
}

fn line(
    e: &Entry,
    client: SocketAddr,
    backend: Option<&str>,
    ours: Option<u16>,
    id: &RequestId,
    took: Duration,
) -> String {
    let mut s = String::with_capacity(128);
    // Quoted and escaped: a target may hold quotes.
    let _ = write!(s, "{client} {:?} {} ", e.request, backend.unwrap_or("-"));
    match e.status.or(ours) {
        Some(status) => {
            let _ = write!(s, "{status}");
        }
        None => s.push('-'),
    }
    let _ = write!(
        s,
        " {} {:.3}ms {}",
        e.bytes,
        took.as_secs_f64() * 1000.0,
        id.as_str()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &AccessLog) -> &Entry {
        log.0.as_deref().unwrap()
    }

    #[test]
    fn off_means_nothing_is_kept() {
        let mut log = AccessLog::start(false, b"GET /");
        log.response_head(200);
        log.response_bytes(10);
        assert!(log.0.is_none());
    }

    #[test]
    fn a_line_has_every_field() {
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let id = RequestId::generate(0xabc);
        let mut log = AccessLog::start(true, b"GET /a?b=\"c\"");
        let took = Duration::from_micros(1500);
        assert_eq!(
            line(entry(&log), client, None, Some(503), &id, took),
            "127.0.0.1:5000 \"GET /a?b=\\\"c\\\"\" - 503 0 1.500ms 0000000000000abc"
        );
        log.response_head(200);
        log.response_bytes(120);
        log.response_bytes(80);
        assert_eq!(
            line(
                entry(&log),
                client,
                Some("10.0.0.1:80"),
                Some(502),
                &id,
                took
            ),
            "127.0.0.1:5000 \"GET /a?b=\\\"c\\\"\" 10.0.0.1:80 200 200 1.500ms 0000000000000abc",
            "the backend's status reached the client first"
        );
        let log = AccessLog::start(true, b"PUT /x");
        assert!(line(entry(&log), client, None, None, &id, took).contains(" - - 0 "));
    }
}
