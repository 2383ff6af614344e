//! The routes and the state behind them: users, answered request ids, π, counters.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use rand::RngExt;
use rand::rngs::ThreadRng;

use crate::form::{form_value, percent_decode};
use crate::http::{Framing, Method, Reply, push_hex};
use crate::pi;
use crate::stream::Stream;

/// How many answered write ids are remembered for idempotent replays.
const MAX_ANSWERED: usize = 100_000;
/// Longest stream a request may ask for (1 TiB): the length must fit a Content-Length.
const MAX_STREAM: u64 = 1 << 40;

pub enum Route {
    Hello,
    Ping,
    Login,
    Pi(usize),
    Conns,
    /// Carries a copy of the raw request head, filled in by the connection.
    Headers(Vec<u8>),
    Bytes(u64),
    Chunked(u64),
    Eof(u64),
    Echo,
    Sink,
    /// The query string; form fields may also come from the body.
    Register(String),
    ChangePassword(String),
    User(String),
    /// GET /status/N: answers status N, an error status.
    Status(u16),
    /// Known to fail before the body is read.
    Error {
        status: u16,
        message: &'static str,
        allow: Option<&'static str>,
    },
}

type MakeStream = fn(u64) -> Route;

#[derive(Clone, Copy)]
enum Allow {
    Get,
    /// GET and HEAD, and POST (whose body is read and dropped): a large answer to a write.
    GetPost,
    Post,
    PostPut,
}

impl Route {
    pub fn parse(method: Method, target: &str) -> Route {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (route, allow) = match path {
            "/" => (Route::Hello, Allow::Get),
            "/ping" => (Route::Ping, Allow::Get),
            "/login" => (Route::Login, Allow::Get),
            "/conns" => (Route::Conns, Allow::Get),
            "/headers" => (Route::Headers(Vec::new()), Allow::Get),
            "/echo" => (Route::Echo, Allow::PostPut),
            "/sink" => (Route::Sink, Allow::PostPut),
            "/register" => (Route::Register(query.to_owned()), Allow::Post),
            "/changePassword" => (Route::ChangePassword(query.to_owned()), Allow::Post),
            _ => match Self::parse_param(path) {
                Some(route @ Route::Bytes(_)) => (route, Allow::GetPost),
                Some(route) => (route, Allow::Get),
                None => return Route::error(404, "not found\n"),
            },
        };
        let permitted = match allow {
            Allow::Get => matches!(method, Method::Get | Method::Head),
            Allow::GetPost => matches!(method, Method::Get | Method::Head | Method::Post),
            Allow::Post => method == Method::Post,
            Allow::PostPut => matches!(method, Method::Post | Method::Put),
        };
        if permitted {
            return route;
        }
        Route::Error {
            status: 405,
            message: "method not allowed\n",
            allow: Some(match allow {
                Allow::Get => "GET, HEAD",
                Allow::GetPost => "GET, HEAD, POST",
                Allow::Post => "POST",
                Allow::PostPut => "POST, PUT",
            }),
        }
    }

    /// The GET routes with a parameter in the path: /N, /users/NAME, /bytes/N, ...
    fn parse_param(path: &str) -> Option<Route> {
        if let Some(name) = path.strip_prefix("/users/") {
            let name =
                String::from_utf8_lossy(&percent_decode(name.as_bytes(), false)).into_owned();
            return Some(Route::User(name));
        }
        if let Some(n) = path.strip_prefix("/status/") {
            return Some(match n.parse() {
                Ok(status @ 400..=599) => Route::Status(status),
                _ => Route::error(400, "the status must be 400 to 599\n"),
            });
        }
        let (make, len): (MakeStream, _) = if let Some(n) = path.strip_prefix("/bytes/") {
            (Route::Bytes, n)
        } else if let Some(n) = path.strip_prefix("/chunked/") {
            (Route::Chunked, n)
        } else if let Some(n) = path.strip_prefix("/eof/") {
            (Route::Eof, n)
        } else {
            return Self::parse_pi(path);
        };
        Some(match parse_count(len) {
            Some(n) if n <= MAX_STREAM => make(n),
            _ => Route::error(400, "length must be a number up to 2^40\n"),
        })
    }

    fn parse_pi(path: &str) -> Option<Route> {
        let digits = path.strip_prefix('/')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(
            match parse_count(digits).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n <= pi::MAX_DIGITS => Route::Pi(n),
                _ => Route::error(400, "at most 10000 digits\n"),
            },
        )
    }

    pub fn error(status: u16, message: &'static str) -> Route {
        Route::Error {
            status,
            message,
            allow: None,
        }
    }

    /// Whether the handler needs the request body (otherwise it is only counted).
    pub fn keeps_body(&self) -> bool {
        matches!(
            self,
            Route::Echo | Route::Register(_) | Route::ChangePassword(_)
        )
    }
}

fn parse_count(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A request whose head and body have been read.
pub struct Request {
    pub route: Route,
    pub request_id: Option<Vec<u8>>,
    /// A hash of the method and target, for telling a repeat from a reused request id.
    pub request_line: u64,
    pub chunked: bool,
    pub form: bool,
    /// The body, for routes that keep it.
    pub body: Vec<u8>,
    /// Body bytes received, kept or not.
    pub received: u64,
    pub keep_alive: bool,
    pub http10: bool,
    /// A HEAD request: answer as for GET, without the body.
    pub head_only: bool,
}

struct Answered {
    fingerprint: u64,
    status: u16,
    body: String,
}

/// The method and target of a request, hashed.
pub fn request_line_hash(method: Method, target: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (method as u8).hash(&mut h);
    target.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct User {
    password: String,
    registered: u64,
    changed: u64,
}

pub struct App {
    name: String,
    hello: String,
    login: String,
    only_user: Option<String>,
    fail_rate: f64,
    /// Writes still to be answered 500 (--fail-first).
    fail_first: u64,
    rng: ThreadRng,
    users: HashMap<String, User>,
    /// Answers to writes by X-Request-Id, with the fingerprint of the request they
    /// answered; oldest first in `answered_order`.
    answered: HashMap<Vec<u8>, Answered>,
    answered_order: VecDeque<Vec<u8>>,
    /// Digits of π, computed on first use.
    pi: Option<String>,
    /// TCP connections accepted since start.
    pub accepted: u64,
}

impl App {
    pub fn new(name: &str, only_user: Option<String>, fail_rate: f64, fail_first: u64) -> App {
        App {
            name: name.to_owned(),
            hello: format!("Hello from {name}\n"),
            login: format!("login page of {name}\n"),
            only_user,
            fail_rate,
            fail_first,
            rng: rand::rng(),
            users: HashMap::new(),
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
            pi: None,
            accepted: 0,
        }
    }

    /// Writes the answer to `req`; a returned stream supplies the rest of the body.
    pub fn handle(&mut self, req: &Request, reply: &mut Reply) -> Option<Stream> {
        if self.fail_rate > 0.0 && self.rng.random::<f64>() < self.fail_rate {
            reply.send(500, &[], &[b"simulated failure\n"]);
            return None;
        }
        let (framing, stream) = match req.route {
            Route::Bytes(n) => (Framing::Length(n), Stream::plain(n)),
            Route::Chunked(n) => (Framing::Chunked, Stream::chunked(n)),
            Route::Eof(n) => (Framing::UntilClose, Stream::plain(n)),
            _ => {
                self.answer(req, reply);
                return None;
            }
        };
        reply.head(200, &[], framing);
        (!reply.head_only).then_some(stream)
    }

    /// The routes whose whole answer is written at once.
    fn answer(&mut self, req: &Request, reply: &mut Reply) {
        match req.route {
            Route::Hello => reply.send(200, &[], &[self.hello.as_bytes()]),
            Route::Ping => reply.send(200, &[], &[b"pong\n"]),
            Route::Login => reply.send(200, &[], &[self.login.as_bytes()]),
            Route::Pi(n) => {
                let digits = self.pi.get_or_insert_with(pi::digits);
                // "3" alone for zero places, not "3.".
                let end = if n == 0 { 1 } else { 2 + n };
                reply.send(200, &[], &[&digits.as_bytes()[..end], b"\n"]);
            }
            Route::Conns => reply.send(200, &[], &[format!("{}\n", self.accepted).as_bytes()]),
            Route::Headers(ref raw) => reply.send(200, &[], &[raw]),
            Route::Sink => reply.send(200, &[], &[format!("{}\n", req.received).as_bytes()]),
            Route::Echo if req.chunked => {
                reply.head(200, &[], Framing::Chunked);
                if !reply.head_only {
                    if !req.body.is_empty() {
                        push_hex(reply.out, req.body.len());
                        reply.out.extend_from_slice(b"\r\n");
                        reply.out.extend_from_slice(&req.body);
                        reply.out.extend_from_slice(b"\r\n");
                    }
                    reply.out.extend_from_slice(b"0\r\n\r\n");
                }
            }
            Route::Echo => reply.send(200, &[], &[&req.body]),
            Route::Register(ref query) => self.write(req, query, true, reply),
            Route::ChangePassword(ref query) => self.write(req, query, false, reply),
            Route::User(ref name) => self.show_user(name, reply),
            Route::Status(status) => {
                reply.send(status, &[], &[format!("status {status}\n").as_bytes()])
            }
            Route::Error {
                status,
                message,
                allow,
            } => {
                let extra = allow.map(|methods| ("Allow", methods));
                reply.send(status, extra.as_slice(), &[message.as_bytes()]);
            }
            // Streams are started by `handle`.
            Route::Bytes(_) | Route::Chunked(_) | Route::Eof(_) => {}
        }
    }

    /// POST /register and /changePassword, applied once per X-Request-Id. A repeat (the
    /// same id, method, target and body) gets the first answer again; the same id with a
    /// different request gets 409 and is not applied.
    fn write(&mut self, req: &Request, query: &str, register: bool, reply: &mut Reply) {
        if self.fail_first > 0 {
            self.fail_first -= 1;
            reply.send(500, &[], &[b"simulated failure (--fail-first)\n"]);
            return;
        }
        let mut h = DefaultHasher::new();
        req.request_line.hash(&mut h);
        req.body.hash(&mut h);
        let fingerprint = h.finish();
        if let Some(id) = &req.request_id
            && let Some(seen) = self.answered.get(id)
        {
            if seen.fingerprint != fingerprint {
                let text = b"this X-Request-Id was used for a different request\n";
                reply.send(409, &[], &[text]);
                return;
            }
            let replay = [("X-Idempotent-Replay", "true")];
            reply.send(seen.status, &replay, &[seen.body.as_bytes()]);
            return;
        }
        let (status, body) = self.apply(req, query, register);
        reply.send(status, &[], &[body.as_bytes()]);
        if let Some(id) = &req.request_id {
            if self.answered_order.len() >= MAX_ANSWERED
                && let Some(oldest) = self.answered_order.pop_front()
            {
                self.answered.remove(&oldest);
            }
            self.answered_order.push_back(id.clone());
            let seen = Answered {
                fingerprint,
                status,
                body,
            };
            self.answered.insert(id.clone(), seen);
        }
    }

    fn apply(&mut self, req: &Request, query: &str, register: bool) -> (u16, String) {
        // A form body wins over the query string.
        let field = |key: &str| {
            req.form
                .then(|| form_value(&req.body, key))
                .flatten()
                .or_else(|| form_value(query.as_bytes(), key))
        };
        let Some(user) = field("username").filter(|u| !u.is_empty()) else {
            return (400, "missing username\n".to_owned());
        };
        let name = &self.name;
        if self.only_user.as_ref().is_some_and(|only| *only != user) {
            return (404, format!("user {user} is not served by {name}\n"));
        }
        let password = field("password").unwrap_or_default();
        if register {
            let record = self.users.entry(user.clone()).or_default();
            record.password = password;
            record.registered += 1;
            return (201, format!("registered {user} on {name}\n"));
        }
        match self.users.get_mut(&user) {
            Some(record) => {
                record.password = password;
                record.changed += 1;
                (201, format!("changed password of {user} on {name}\n"))
            }
            None => (404, format!("no user {user} on {name}\n")),
        }
    }

    fn show_user(&self, name: &str, reply: &mut Reply) {
        match self.users.get(name) {
            Some(u) => {
                let body = format!(
                    "{name} registered {} changed {} password {}\n",
                    u.registered, u.changed, u.password
                );
                reply.send(200, &[], &[body.as_bytes()]);
            }
            None => reply.send(404, &[], &[format!("no user {name}\n").as_bytes()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            Route::parse(Method::Get, "/123?x"),
            Route::Pi(123)
        ));
        assert!(matches!(
            Route::parse(Method::Get, "/10001"),
            Route::Error { status: 400, .. }
        ));
        assert!(matches!(
            Route::parse(Method::Post, "/"),
            Route::Error { status: 405, .. }
        ));
        assert!(matches!(
            Route::parse(Method::Get, "/nope"),
            Route::Error { status: 404, .. }
        ));
        assert!(matches!(
            Route::parse(Method::Head, "/bytes/5"),
            Route::Bytes(5)
        ));
        assert!(matches!(
            Route::parse(Method::Post, "/bytes/5"),
            Route::Bytes(5)
        ));
        assert!(matches!(
            Route::parse(Method::Put, "/bytes/5"),
            Route::Error { status: 405, .. }
        ));
        assert!(
            matches!(Route::parse(Method::Get, "/users/a%20b"), Route::User(ref n) if n == "a b")
        );
        assert!(matches!(
            Route::parse(Method::Get, "/status/503"),
            Route::Status(503)
        ));
        assert!(matches!(
            Route::parse(Method::Get, "/status/200"),
            Route::Error { status: 400, .. }
        ));
    }
}
