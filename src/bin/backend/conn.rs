//! One client connection: reads requests, answers them in order, writes with back-pressure.
//!
//! Readiness is edge-triggered, so the connection remembers whether its socket may still be
//! readable or writable and keeps going until the kernel says `WouldBlock`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use log::debug;
use mio::event::Event;
use mio::net::TcpStream;

use crate::http::{self, BodyReader, DateCache, Head, Reject, Reply};
use crate::routes::{App, Request, Route};
use crate::stream::Stream;

/// Input buffer size; twice the head size limit, so any acceptable head fits.
const IN_BUF: usize = 32 * 1024;
const OUT_BUF: usize = 16 * 1024;
/// Largest body kept in memory for the routes that read it (echo, forms).
const MAX_KEPT_BODY: usize = 1 << 20;
/// Unsent output beyond this pauses the answering of further pipelined requests.
const OUT_HIGH: usize = 64 * 1024;
/// How much of a generated body is queued at a time.
const STREAM_PIECE: usize = 64 * 1024;
/// After its last answer a closing connection discards input this long, so that unread
/// request bytes do not make the kernel reset the connection before the client reads.
const LINGER: Duration = Duration::from_secs(2);
/// Idle buffers kept for reuse, of each kind.
const POOL_MAX: usize = 256;

/// What every connection shares: the routes' state and the loop's timers and slot.
pub struct Ctx {
    pub app: App,
    pub date: DateCache,
    pub delay: Option<Duration>,
    /// `Some` with --one-at-a-time.
    pub slot: Option<Slot>,
    /// Deadlines of delayed answers and lingering closes, by connection key. An entry may be
    /// stale (the connection moved on); the connection checks its own deadline.
    pub timers: BinaryHeap<Reverse<(Instant, usize)>>,
    pub pool: Pool,
}

/// The one request in service across all connections, and the connections waiting for it.
#[derive(Default)]
pub struct Slot {
    pub busy: bool,
    pub waiting: VecDeque<usize>,
}

/// Buffers of idle connections, so that an idle keep-alive connection holds none.
#[derive(Default)]
pub struct Pool {
    inputs: Vec<Vec<u8>>,
    outputs: Vec<Vec<u8>>,
}

impl Pool {
    fn take_input(&mut self) -> Vec<u8> {
        self.inputs.pop().unwrap_or_else(|| vec![0; IN_BUF])
    }

    fn take_output(&mut self) -> Vec<u8> {
        self.outputs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(OUT_BUF))
    }

    fn put(&mut self, input: Vec<u8>, mut output: Vec<u8>) {
        if input.len() == IN_BUF && self.inputs.len() < POOL_MAX {
            self.inputs.push(input);
        }
        // A buffer grown by a large echo goes back to the allocator.
        if output.capacity() >= OUT_BUF
            && output.capacity() <= 2 * STREAM_PIECE
            && self.outputs.len() < POOL_MAX
        {
            output.clear();
            self.outputs.push(output);
        }
    }
}

#[derive(PartialEq, Eq)]
pub enum Step {
    Keep,
    Close,
}

enum State {
    /// Waiting for (more of) a request head.
    Head,
    Body(Request, BodyReader),
    /// Complete, waiting for the --one-at-a-time slot.
    Queued(Request),
    /// Complete, waiting for its --delay to pass.
    Delayed(Request, Instant),
    Streaming(Stream),
    /// Write side shut after the last answer; discarding input until the client closes.
    Lingering(Instant),
}

pub struct Conn {
    sock: TcpStream,
    key: usize,
    /// `input[start..end]` is unread; `input` is empty while the connection is idle.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// `out[out_pos..]` is unsent.
    out: Vec<u8>,
    out_pos: usize,
    state: State,
    readable: bool,
    writable: bool,
    /// The peer shut its side: read to the end even after a short read.
    read_closed: bool,
    peer_eof: bool,
    /// Answer no more requests; close once the output is sent.
    close_after: bool,
    /// The last `process` stopped for lack of input.
    need_input: bool,
    holds_slot: bool,
}

impl Conn {
    pub fn new(sock: TcpStream, key: usize) -> Conn {
        Conn {
            sock,
            key,
            input: Vec::new(),
            start: 0,
            end: 0,
            out: Vec::new(),
            out_pos: 0,
            state: State::Head,
            readable: false,
            // A new socket has room to write; the first event may not say so again.
            writable: true,
            read_closed: false,
            peer_eof: false,
            close_after: false,
            need_input: false,
            holds_slot: false,
        }
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn on_event(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_read_closed() {
            self.read_closed = true;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.writable = true;
        }
    }

    /// A timer for this connection's key is due; it may be stale.
    pub fn on_timer(&mut self, now: Instant, ctx: &mut Ctx) -> Step {
        match self.state {
            State::Delayed(_, deadline) if deadline <= now => {
                if let State::Delayed(req, _) = std::mem::replace(&mut self.state, State::Head) {
                    self.answer(req, ctx);
                }
            }
            State::Lingering(deadline) if deadline <= now => return Step::Close,
            _ => return Step::Keep,
        }
        self.drive(ctx)
    }

    /// Hands the free one-at-a-time slot to this connection if it is waiting for it.
    pub fn grant(&mut self, ctx: &mut Ctx) -> Option<Step> {
        let State::Queued(req) = std::mem::replace(&mut self.state, State::Head) else {
            return None;
        };
        if let Some(slot) = &mut ctx.slot {
            slot.busy = true;
        }
        self.holds_slot = true;
        self.begin(req, ctx);
        Some(self.drive(ctx))
    }

    /// Gives back what the connection holds in `ctx`; call once, when it is removed.
    pub fn release(&mut self, ctx: &mut Ctx) {
        self.release_slot(ctx);
        ctx.pool.put(
            std::mem::take(&mut self.input),
            std::mem::take(&mut self.out),
        );
    }

    /// Does all the work the socket's readiness allows.
    pub fn drive(&mut self, ctx: &mut Ctx) -> Step {
        match self.run(ctx) {
            Ok(step) => step,
            Err(e) => {
                debug!("connection {}: {e}", self.key);
                Step::Close
            }
        }
    }

    fn run(&mut self, ctx: &mut Ctx) -> io::Result<Step> {
        loop {
            let mut progress = false;
            if self.readable && self.wants_input() {
                progress |= self.read(ctx)?;
            }
            progress |= self.process(ctx);
            if self.writable {
                progress |= self.flush(ctx)?;
            }
            match self.finish(ctx)? {
                Some(Step::Close) => return Ok(Step::Close),
                Some(Step::Keep) => progress = true,
                None => {}
            }
            if !progress {
                break;
            }
        }
        // Idle buffers go back to the pool; the next request takes them again.
        if self.start == self.end && !self.input.is_empty() {
            self.start = 0;
            self.end = 0;
            ctx.pool.put(std::mem::take(&mut self.input), Vec::new());
        }
        if self.out_pos == self.out.len() && self.out.capacity() > 0 {
            self.out_pos = 0;
            ctx.pool.put(Vec::new(), std::mem::take(&mut self.out));
        }
        Ok(Step::Keep)
    }

    fn wants_input(&self) -> bool {
        !self.peer_eof
            && match self.state {
                State::Head => !self.close_after && self.unsent() <= OUT_HIGH,
                State::Body(..) | State::Lingering(_) => true,
                State::Queued(_) | State::Delayed(..) | State::Streaming(_) => false,
            }
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Reads once; true if anything changed.
    fn read(&mut self, ctx: &mut Ctx) -> io::Result<bool> {
        if self.input.is_empty() {
            self.input = ctx.pool.take_input();
        }
        if self.end == self.input.len() {
            if self.start == 0 {
                // Cannot happen while heads are capped below IN_BUF; wait for `process`.
                return Ok(false);
            }
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.input.len() - self.end;
        match self.sock.read(&mut self.input[self.end..]) {
            Ok(0) => {
                self.peer_eof = true;
                self.readable = false;
            }
            Ok(n) => {
                self.end += n;
                // A short read drained the socket: the next arrival brings a new edge.
                if n < room && !self.read_closed {
                    self.readable = false;
                }
                if let State::Lingering(_) = self.state {
                    self.start = self.end;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    /// Parses and answers buffered requests until input runs out or the state says wait.
    fn process(&mut self, ctx: &mut Ctx) -> bool {
        let mut progress = false;
        self.need_input = false;
        loop {
            match std::mem::replace(&mut self.state, State::Head) {
                State::Head => {
                    if self.close_after || self.unsent() > OUT_HIGH {
                        return progress;
                    }
                    if self.start == self.end {
                        self.need_input = true;
                        return progress;
                    }
                    let head = match http::parse_head(&self.input[self.start..self.end]) {
                        Ok(Some(head)) => head,
                        Ok(None) => {
                            self.need_input = true;
                            return progress;
                        }
                        Err(Reject(status)) => {
                            self.reject(status, ctx);
                            return true;
                        }
                    };
                    progress = true;
                    debug!("connection {}: {:?} {}", self.key, head.method, head.target);
                    let raw = &self.input[self.start..self.start + head.len];
                    self.start += head.len;
                    match new_request(head, raw) {
                        Ok((req, body, expect_continue)) => {
                            if expect_continue {
                                self.output(ctx)
                                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            }
                            self.state = State::Body(req, body);
                        }
                        Err(Reject(status)) => {
                            self.reject(status, ctx);
                            return true;
                        }
                    }
                }
                State::Body(mut req, mut body) => {
                    let keep = req.route.keeps_body();
                    let mut too_big = false;
                    let fed = body.feed(&self.input[self.start..self.end], |data| {
                        req.received += data.len() as u64;
                        if keep && req.body.len() + data.len() > MAX_KEPT_BODY {
                            too_big = true;
                        } else if keep {
                            req.body.extend_from_slice(data);
                        }
                    });
                    match fed {
                        Ok(n) => {
                            self.start += n;
                            progress |= n > 0;
                        }
                        Err(Reject(status)) => {
                            self.reject(status, ctx);
                            return true;
                        }
                    }
                    if too_big {
                        self.reject(413, ctx);
                        return true;
                    }
                    if !body.is_done() {
                        self.state = State::Body(req, body);
                        self.need_input = true;
                        return progress;
                    }
                    progress = true;
                    self.complete(req, ctx);
                }
                other => {
                    self.state = other;
                    return progress;
                }
            }
        }
    }

    /// Answers a request the server will not read, and closes after it.
    fn reject(&mut self, status: u16, ctx: &mut Ctx) {
        debug!("connection {}: rejected with {status}", self.key);
        self.start = self.end;
        self.state = State::Head;
        self.close_after = true;
        let reason = http::reason(status);
        let mut reply = Reply {
            out: self.output(ctx),
            date: ctx.date.get(),
            request_id: None,
            close: true,
            http10: false,
            head_only: false,
        };
        reply.send(
            status,
            &[],
            &[reason.to_ascii_lowercase().as_bytes(), b"\n"],
        );
    }

    /// The request is fully read: serve it now, or queue it for the one-at-a-time slot.
    fn complete(&mut self, req: Request, ctx: &mut Ctx) {
        if let Some(slot) = &mut ctx.slot {
            if slot.busy {
                slot.waiting.push_back(self.key);
                self.state = State::Queued(req);
                return;
            }
            slot.busy = true;
            self.holds_slot = true;
        }
        self.begin(req, ctx);
    }

    fn begin(&mut self, req: Request, ctx: &mut Ctx) {
        match ctx.delay {
            Some(delay) => {
                let deadline = Instant::now() + delay;
                ctx.timers.push(Reverse((deadline, self.key)));
                self.state = State::Delayed(req, deadline);
            }
            None => self.answer(req, ctx),
        }
    }

    fn answer(&mut self, req: Request, ctx: &mut Ctx) {
        self.output(ctx);
        let mut reply = Reply {
            out: &mut self.out,
            date: ctx.date.get(),
            request_id: req.request_id.as_deref(),
            close: !req.keep_alive || self.peer_eof,
            http10: req.http10,
            head_only: req.head_only,
        };
        let stream = ctx.app.handle(&req, &mut reply);
        self.close_after |= reply.close;
        match stream {
            Some(stream) => self.state = State::Streaming(stream),
            None => self.end_service(ctx),
        }
    }

    /// The current answer is fully queued: free the slot, look for the next request.
    fn end_service(&mut self, ctx: &mut Ctx) {
        self.state = State::Head;
        self.release_slot(ctx);
    }

    fn release_slot(&mut self, ctx: &mut Ctx) {
        if self.holds_slot {
            self.holds_slot = false;
            if let Some(slot) = &mut ctx.slot {
                slot.busy = false;
            }
        }
    }

    fn output(&mut self, ctx: &mut Ctx) -> &mut Vec<u8> {
        if self.out.capacity() == 0 {
            self.out = ctx.pool.take_output();
        }
        &mut self.out
    }

    /// Writes pending output, refilling it from a stream; true if anything was written.
    fn flush(&mut self, ctx: &mut Ctx) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if let State::Streaming(stream) = &mut self.state
                && self.out.len() - self.out_pos < STREAM_PIECE
            {
                if self.out.capacity() == 0 {
                    self.out = ctx.pool.take_output();
                }
                self.out.drain(..self.out_pos);
                self.out_pos = 0;
                if stream.fill(&mut self.out, STREAM_PIECE) {
                    self.end_service(ctx);
                    progress = true;
                }
            }
            if self.out_pos == self.out.len() {
                return Ok(progress);
            }
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    progress = true;
                    self.out_pos += n;
                    if self.out_pos == self.out.len() {
                        self.out.clear();
                        self.out_pos = 0;
                    } else {
                        // A short write filled the socket buffer; room brings a new edge.
                        self.writable = false;
                        return Ok(progress);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Decides whether the connection is done: `Some(Keep)` means it changed state.
    fn finish(&mut self, ctx: &mut Ctx) -> io::Result<Option<Step>> {
        let sent = self.out_pos == self.out.len();
        match self.state {
            State::Lingering(_) if self.peer_eof => Ok(Some(Step::Close)),
            State::Head if sent && self.close_after => {
                if self.peer_eof {
                    return Ok(Some(Step::Close));
                }
                self.sock.shutdown(Shutdown::Write)?;
                self.start = self.end;
                let deadline = Instant::now() + LINGER;
                ctx.timers.push(Reverse((deadline, self.key)));
                self.state = State::Lingering(deadline);
                Ok(Some(Step::Keep))
            }
            State::Head | State::Body(..) if sent && self.peer_eof && self.need_input => {
                Ok(Some(Step::Close))
            }
            _ => Ok(None),
        }
    }
}

/// The owned request for a parsed head, its body reader, and whether to send 100 Continue.
fn new_request(head: Head, raw: &[u8]) -> Result<(Request, BodyReader, bool), Reject> {
    let mut route = Route::parse(head.method, head.target);
    if let Route::Headers(copy) = &mut route {
        copy.extend_from_slice(raw);
    }
    if let BodyReader::Length(n) = head.body
        && route.keeps_body()
        && n > MAX_KEPT_BODY as u64
    {
        return Err(Reject(413));
    }
    let req = Request {
        route,
        request_id: head.request_id.map(<[u8]>::to_vec),
        request_line: crate::routes::request_line_hash(head.method, head.target),
        chunked: matches!(head.body, BodyReader::Chunked(_)),
        form: head.form,
        body: Vec::new(),
        received: 0,
        keep_alive: head.keep_alive,
        http10: head.http10,
        head_only: head.method == http::Method::Head,
    };
    Ok((req, head.body, head.expect_continue))
}
