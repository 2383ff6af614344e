//! `--access-log[=PATH]`: one line per HTTP request, whoever answered it (a backend, a
//! fan-out copy, or lb itself with 400, 408, 413, 503...), and one per TCP session.
//!
//! It is its own stream, not a level of the diagnostic log: `-q` does not hide it. As
//! nginx's and Envoy's container images do, it goes to stdout (diagnostics go to stderr),
//! or is appended to a file. Lines are gathered during a turn of the event loop and
//! written together at its end, one write per turn instead of one per request.
//!
//! With the log off, a request keeps no copy of its request line: `RequestLog` then holds
//! only the status and the byte count, which the metrics use too.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::config::{AccessLogTo, LogFormat};
use crate::http::head::RequestId;
use crate::logging::{Json, Timestamp};

/// Lines past this are written at once rather than at the end of the turn.
const FLUSH_AT: usize = 64 * 1024;
/// The longest request line logged; longer ones are cut (a target may be 8 KiB).
const MAX_REQUEST: usize = 1024;

/// What one request's line says besides client, duration and id.
#[derive(Default)]
pub struct RequestLog {
    /// Method and target as the client sent them; `None` while the log is off.
    request: Option<Box<[u8]>>,
    /// The status of the final response head that reached the client.
    pub status: Option<u16>,
    /// Response bytes received from the backend, head and body.
    pub bytes: u64,
    /// The route that took the request.
    route: Option<usize>,
}

impl RequestLog {
    pub fn start(enabled: bool, request_line: &[u8], route: Option<usize>) -> Self {
        RequestLog {
            request: enabled.then(|| request_line.into()),
            status: None,
            bytes: 0,
            route,
        }
    }

    /// What the line says: the backend's status if one reached the client, else `ours`.
    pub fn answered<'a>(&'a self, ours: Option<u16>, id: &'a RequestId) -> Answered<'a> {
        Answered {
            request: self.request.as_deref().unwrap_or_default(),
            status: self.status.or(ours),
            bytes: self.bytes,
            id: Some(id),
            route: self.route,
        }
    }
}

/// A request's final answer, as the access log and the client-side counters see it.
pub struct Answered<'a> {
    /// Method and target (see `request_line`); empty while the log is off.
    pub request: &'a [u8],
    /// `None` if the client left before any answer.
    pub status: Option<u16>,
    pub bytes: u64,
    pub id: Option<&'a RequestId>,
    /// The route that took the request, if one did.
    pub route: Option<usize>,
}

impl<'a> Answered<'a> {
    /// Taken by route `route`.
    pub fn by(self, route: Option<usize>) -> Self {
        Answered { route, ..self }
    }

    /// An answer of lb's own to the request whose head starts `head`.
    pub fn ours(head: &'a [u8], status: u16, id: Option<&'a RequestId>) -> Self {
        Answered {
            request: request_line(head),
            status: Some(status),
            bytes: 0,
            id,
            route: None,
        }
    }
}

/// The method and target at the start of a request head (ours or the client's), without
/// the version: what a line shows of a request, even one refused as malformed.
pub fn request_line(head: &[u8]) -> &[u8] {
    let end = head
        .iter()
        .take(MAX_REQUEST)
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len().min(MAX_REQUEST));
    let line = &head[..end];
    match line.strip_suffix(b" HTTP/1.1".as_slice()) {
        Some(l) => l,
        None => line.strip_suffix(b" HTTP/1.0".as_slice()).unwrap_or(line),
    }
}

/// One line's worth.
pub enum Entry<'a> {
    Http {
        request: &'a [u8],
        backend: Option<&'a str>,
        /// `None` if the client left before any answer.
        status: Option<u16>,
        bytes: u64,
        id: Option<&'a RequestId>,
        /// With a config file: the route and the pool (`None` each when there was none);
        /// `None` with the flags, whose lines stay as they were.
        routed: Option<(Option<&'a str>, Option<&'a str>)>,
    },
    Tcp {
        backend: Option<&'a str>,
        /// Bytes from the client to the backend, and back.
        sent: u64,
        received: u64,
        /// How the session ended.
        end: &'static str,
    },
}

enum Sink {
    Stdout,
    File(std::fs::File),
}

pub struct AccessLog {
    sink: Option<Sink>,
    format: LogFormat,
    pending: Vec<u8>,
    /// A write failed and said so; the next failure stays quiet until one succeeds.
    failing: bool,
}

impl AccessLog {
    pub fn open(to: &AccessLogTo, format: LogFormat) -> Result<Self, String> {
        let sink = match to {
            AccessLogTo::Off => None,
            AccessLogTo::Stdout => Some(Sink::Stdout),
            AccessLogTo::File(path) => Some(Sink::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open --access-log {}: {e}", path.display()))?,
            )),
        };
        Ok(AccessLog {
            sink,
            format,
            pending: Vec::new(),
            failing: false,
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    pub fn write(&mut self, client: SocketAddr, took: Duration, entry: &Entry) {
        if self.sink.is_none() {
            return;
        }
        let mut line = String::with_capacity(200);
        format_line(
            &mut line,
            self.format,
            SystemTime::now(),
            client,
            took,
            entry,
        );
        self.pending.extend_from_slice(line.as_bytes());
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes the lines gathered so far.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = match &mut self.sink {
            Some(Sink::Stdout) => io::stdout().lock().write_all(&self.pending),
            Some(Sink::File(f)) => f.write_all(&self.pending),
            None => Ok(()),
        };
        self.pending.clear();
        match result {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                log::error!("cannot write the access log: {e}; lines are being lost");
            }
            Err(_) => {}
        }
    }
}

/// Request bytes as printable ASCII, anything else `\xHH`, so that a client cannot end the
/// line; with `quoted`, quote and backslash are escaped too, so that it cannot end the
/// field either (JSON escapes them itself).
struct RequestText<'a> {
    bytes: &'a [u8],
    quoted: bool,
}

impl std::fmt::Display for RequestText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for &b in self.bytes {
            match b {
                b'"' if self.quoted => f.write_str("\\\"")?,
                b'\\' if self.quoted => f.write_str("\\\\")?,
                0x20..=0x7e => f.write_char(char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `ts client "METHOD target" backend status bytes 1.234ms id` (HTTP) or
/// `ts client TCP backend sent received 1.234ms end` (TCP); `-` where there is nothing.
fn format_line(
    out: &mut String,
    format: LogFormat,
    at: SystemTime,
    client: SocketAddr,
    took: Duration,
    entry: &Entry,
) {
    let ts = Timestamp(at);
    let ms = millis(took);
    let _ = match entry {
        Entry::Http {
            request,
            backend,
            status,
            bytes,
            id,
            routed,
        } => {
            let quoted = format == LogFormat::Text;
            let text = RequestText {
                bytes: request,
                quoted,
            };
            if quoted {
                let status = status.map_or("-".to_string(), |s| s.to_string());
                let routed = routed.map_or(String::new(), |(route, pool)| {
                    format!(" {} {}", route.unwrap_or("-"), pool.unwrap_or("-"))
                });
                writeln!(
                    out,
                    "{ts} {client} \"{text}\" {} {status} {bytes} {ms:.3}ms {}{routed}",
                    backend.unwrap_or("-"),
                    id.map_or("-", RequestId::as_str)
                )
            } else {
                let text = text.to_string();
                let (method, target) = text.split_once(' ').unwrap_or((&text, ""));
                let routed = routed.map_or(String::new(), |(route, pool)| {
                    format!(
                        ",\"route\":{},\"pool\":{}",
                        json_or_null(route),
                        json_or_null(pool)
                    )
                });
                writeln!(
                    out,
                    "{{\"time\":\"{ts}\",\"client\":\"{client}\",\"method\":\"{}\",\
                     \"target\":\"{}\",\"backend\":{},\"status\":{},\"bytes\":{bytes},\
                     \"duration_ms\":{ms:.3},\"request_id\":{}{routed}}}",
                    Json(method),
                    Json(target),
                    json_or_null(*backend),
                    status.map_or("null".to_string(), |s| s.to_string()),
                    json_or_null(id.map(RequestId::as_str)),
                )
            }
        }
        Entry::Tcp {
            backend,
            sent,
            received,
            end,
        } => match format {
            LogFormat::Text => writeln!(
                out,
                "{ts} {client} TCP {} {sent} {received} {ms:.3}ms {end}",
                backend.unwrap_or("-")
            ),
            LogFormat::Json => writeln!(
                out,
                "{{\"time\":\"{ts}\",\"client\":\"{client}\",\"mode\":\"tcp\",\"backend\":{},\
                 \"sent\":{sent},\"received\":{received},\"duration_ms\":{ms:.3},\"end\":\"{end}\"}}",
                json_or_null(*backend),
            ),
        },
    };
}

fn json_or_null(s: Option<&str>) -> String {
    s.map_or("null".to_string(), |s| format!("\"{}\"", Json(s)))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn line(format: LogFormat, entry: &Entry) -> String {
        let mut out = String::new();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        format_line(
            &mut out,
            format,
            UNIX_EPOCH,
            client,
            Duration::from_micros(1500),
            entry,
        );
        out
    }

    #[test]
    fn off_keeps_no_request_line() {
        let id = RequestId::uuid(1);
        let mut log = RequestLog::start(false, b"GET /", None);
        assert!(log.request.is_none());
        assert_eq!(log.answered(None, &id).request, b"");
        log.status = Some(200);
        assert_eq!(
            log.answered(Some(502), &id).status,
            Some(200),
            "the backend's came first"
        );
        let log = RequestLog::start(true, b"GET /", None);
        assert_eq!(log.answered(Some(502), &id).request, b"GET /");
        assert_eq!(log.answered(Some(502), &id).status, Some(502));
    }

    #[test]
    fn request_lines_lose_their_version_and_stay_short() {
        assert_eq!(request_line(b"GET /a HTTP/1.1\r\nHost: x\r\n"), b"GET /a");
        assert_eq!(request_line(b"GET /a HTTP/1.0\n"), b"GET /a");
        assert_eq!(request_line(b"GARBAGE"), b"GARBAGE");
        assert_eq!(request_line(&[b'a'; 5000]).len(), MAX_REQUEST);
    }

    #[test]
    fn http_lines_have_every_field_and_no_forged_ones() {
        let id = RequestId::uuid(0xabc);
        let entry = Entry::Http {
            request: b"GET /a?b=\"c\" \x01\xff",
            backend: Some("10.0.0.1:80"),
            status: Some(200),
            bytes: 120,
            id: Some(&id),
            routed: None,
        };
        assert_eq!(
            line(LogFormat::Text, &entry),
            "1970-01-01T00:00:00.000Z 127.0.0.1:5000 \"GET /a?b=\\\"c\\\" \\x01\\xff\" \
             10.0.0.1:80 200 120 1.500ms 00000000-0000-4000-8000-000000000abc\n"
        );
        assert_eq!(
            line(LogFormat::Json, &entry),
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"client\":\"127.0.0.1:5000\",\
             \"method\":\"GET\",\"target\":\"/a?b=\\\"c\\\" \\\\x01\\\\xff\",\
             \"backend\":\"10.0.0.1:80\",\"status\":200,\"bytes\":120,\"duration_ms\":1.500,\
             \"request_id\":\"00000000-0000-4000-8000-000000000abc\"}\n"
        );
        let nothing = Entry::Http {
            request: b"PUT /x",
            backend: None,
            status: None,
            bytes: 0,
            id: None,
            routed: None,
        };
        assert!(line(LogFormat::Text, &nothing).ends_with(" \"PUT /x\" - - 0 1.500ms -\n"));
        assert!(line(LogFormat::Json, &nothing).contains(
            "\"backend\":null,\"status\":null,\"bytes\":0,\"duration_ms\":1.500,\"request_id\":null}"
        ));
    }

    #[test]
    fn tcp_lines_say_bytes_each_way_and_how_it_ended() {
        let entry = Entry::Tcp {
            backend: Some("10.0.0.1:5432"),
            sent: 10,
            received: 20,
            end: "closed",
        };
        assert_eq!(
            line(LogFormat::Text, &entry),
            "1970-01-01T00:00:00.000Z 127.0.0.1:5000 TCP 10.0.0.1:5432 10 20 1.500ms closed\n"
        );
        assert!(line(LogFormat::Json, &entry).contains(
            "\"mode\":\"tcp\",\"backend\":\"10.0.0.1:5432\",\"sent\":10,\"received\":20,"
        ));
    }
}
