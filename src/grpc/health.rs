//! One `grpc.health.v1.Health/Check` call over HTTP/2 with prior knowledge, sans IO, on
//! the client codec (`h2::client`): the caller writes what `take_output` gives and feeds
//! what the backend sends to `receive` until it has a verdict. The check passes only on
//! HTTP 200, grpc-status 0, and a HealthCheckResponse that says SERVING.

use std::time::Instant;

use super::message::{self, MAX_RESPONSE, PREFIX, ServingStatus};
use crate::h2::client::{ClientConnection, ClientEvent};
use crate::h2::hpack::HeaderList;
use crate::h2::limits::Limits;

pub const PATH: &str = "/grpc.health.v1.Health/Check";

/// How a call ended: `Err` says why the check failed.
pub type Verdict = Result<(), String>;

pub struct HealthCall {
    conn: ClientConnection,
    stream: u32,
    /// The framed response message as it arrives, at most `PREFIX + MAX_RESPONSE` bytes.
    message: Vec<u8>,
}

impl HealthCall {
    /// A call asking about `service` ("": the whole server) of the backend at
    /// `authority`; the connection preface, the request's HEADERS and its one DATA frame
    /// are queued.
    pub fn new(authority: &str, service: &str, now: Instant) -> Result<Self, String> {
        let mut conn = ClientConnection::new(Limits::default(), now);
        let mut headers = HeaderList::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", PATH),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "lb-health-check"),
        ] {
            headers.push(name.as_bytes(), value.as_bytes());
        }
        let stream = conn
            .open_stream(&headers, false)
            .map_err(|e| format!("cannot open the check's stream: {e:?}"))?;
        let mut request = Vec::new();
        message::encode_request(service, &mut request);
        // Within the protocol's initial windows: a fresh stream takes it whole.
        match conn.send_data(stream, &request, true, now) {
            Ok(n) if n == request.len() => {}
            _ => return Err("cannot send the check's request".to_string()),
        }
        Ok(HealthCall {
            conn,
            stream,
            message: Vec::new(),
        })
    }

    /// Frames to write, appended to `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        self.conn.take_output(out);
    }

    pub fn has_output(&self) -> bool {
        self.conn.has_output()
    }

    /// Reads what the backend sent: the bytes used (drop them from the input) and the
    /// verdict once there is one. Frames the codec queues in answer (SETTINGS and PING
    /// acks, window updates) wait in `take_output`.
    pub fn receive(&mut self, input: &[u8], now: Instant) -> (usize, Option<Verdict>) {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let (n, event) = match self.conn.next_event(rest, now) {
                Ok(got) => got,
                Err(goaway) => {
                    let why = format!("HTTP/2 connection error {}", goaway.code);
                    return (used, Some(Err(why)));
                }
            };
            used += n;
            let Some(event) = event else {
                return (used, None);
            };
            let (verdict, consumed) = judge(self.stream, &mut self.message, event);
            if verdict.is_some() {
                return (used, verdict);
            }
            if consumed > 0 {
                self.conn.consumed(self.stream, consumed);
            }
        }
    }
}

/// What one event says of the call on `stream`: a verdict, or nothing yet and the body
/// bytes it took.
fn judge(stream: u32, message: &mut Vec<u8>, event: ClientEvent) -> (Option<Verdict>, usize) {
    match event {
        ClientEvent::Response {
            stream: s,
            status,
            headers,
            end_stream,
        } if s == stream => {
            if status != 200 {
                return (Some(Err(format!("HTTP status {status}"))), 0);
            }
            // Trailers-only: the status is in the headers, and there is no message.
            let verdict = end_stream.then(|| match grpc_status(headers) {
                Ok(()) => Err("no HealthCheckResponse".to_string()),
                Err(why) => Err(why),
            });
            (verdict, 0)
        }
        ClientEvent::Data {
            stream: s,
            data,
            end_stream,
        } if s == stream => {
            let room = (PREFIX + MAX_RESPONSE).saturating_sub(message.len());
            message.extend_from_slice(data.get(..room).unwrap_or(data));
            let verdict = match message::announced_len(message) {
                Err(e) => Some(Err(e.to_string())),
                Ok(Some(len)) if message.len() > PREFIX + len => {
                    Some(Err(message::MessageError::Trailing.to_string()))
                }
                _ if data.len() > room => Some(Err(message::MessageError::TooLarge.to_string())),
                _ if end_stream => Some(Err("the response ended without grpc-status".into())),
                _ => None,
            };
            (verdict, data.len())
        }
        ClientEvent::Trailers { stream: s, headers } if s == stream => {
            let verdict = grpc_status(headers).and_then(|()| {
                match message::decode_response(message).map_err(|e| e.to_string())? {
                    ServingStatus::Serving => Ok(()),
                    other => Err(format!("health status {other}")),
                }
            });
            (Some(verdict), 0)
        }
        ClientEvent::Reset { stream: s, code } if s == stream => {
            (Some(Err(format!("stream reset ({code})"))), 0)
        }
        _ => (None, 0),
    }
}

/// `Ok` when `headers` carry grpc-status 0; otherwise why not, with any grpc-message.
fn grpc_status(headers: &HeaderList) -> Result<(), String> {
    let field = |name: &[u8]| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let status = field(b"grpc-status").ok_or("no grpc-status")?;
    if status == b"0" {
        return Ok(());
    }
    let shown = |v: &[u8]| String::from_utf8_lossy(v.get(..100).unwrap_or(v)).into_owned();
    Err(match field(b"grpc-message") {
        Some(text) => format!("grpc-status {}: {}", shown(status), shown(text)),
        None => format!("grpc-status {}", shown(status)),
    })
}
