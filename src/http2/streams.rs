//! One HTTP/2 connection's streams, each with its HTTP/1.1 client side: a request's
//! header list written as the HTTP/1.1 head that side reads, its DATA as the body in the
//! framing the head names, and its answer framed back (`answer`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::answer::Answer;
use crate::conn::StreamIo;
use crate::h2::connection::Connection;
use crate::h2::error::ErrorCode;
use crate::h2::hpack::HeaderList;
use crate::h2::message::{
    BodyFraming, LAST_CHUNK, check_request, put_chunk_size, write_request_head, write_trailers,
};

/// A stream with its client side.
pub struct Stream {
    pub id: u32,
    /// The client side's slab key and serial.
    pub client: (usize, u32),
    pub io: Rc<RefCell<StreamIo>>,
    pub answer: Answer,
    /// A HEAD request: its answer has no body.
    head_only: bool,
    body: BodyFraming,
    /// The request has new bytes or its end for the client side since it last looked.
    news: bool,
}

/// What to do with a stream once its news is taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It goes on; its client side has something to read or room to write.
    Continues { wake_client: bool },
    /// Answered and its client side closed: it is over.
    Finished,
    /// Its client side closed before the answer ended or gave up on it, or the answer
    /// could not be relayed: the stream was reset, and the client side must be closed if
    /// it is not yet.
    Failed,
}

impl Stream {
    /// A new request: its head is written into `io` for the client side to read.
    /// `Err`: the request is malformed (§8.1.1), and the stream is to be reset.
    pub fn open(
        id: u32,
        list: &HeaderList,
        end_stream: bool,
        io: Rc<RefCell<StreamIo>>,
    ) -> Result<Self, &'static str> {
        let request = check_request(list, !end_stream, false)?;
        {
            let mut w = io.borrow_mut();
            write_request_head(&request, list, &mut w.request);
            w.request_ended = end_stream;
        }
        Ok(Stream {
            id,
            client: (usize::MAX, 0),
            io,
            answer: Answer::Head,
            head_only: request.method == b"HEAD",
            body: request.body,
            news: true,
        })
    }

    /// Body bytes for the request, `end` with the last.
    pub fn data(&mut self, data: &[u8], end: bool) {
        self.news = true;
        let mut io = self.io.borrow_mut();
        if !data.is_empty() {
            if self.body == BodyFraming::Chunked {
                put_chunk_size(&mut io.request, data.len());
            }
            io.request.extend_from_slice(data);
            if self.body == BodyFraming::Chunked {
                io.request.extend_from_slice(b"\r\n");
            }
            io.body_unread = io.body_unread.saturating_add(data.len());
        }
        if end {
            if self.body == BodyFraming::Chunked {
                io.request.extend_from_slice(LAST_CHUNK);
            }
            io.request_ended = true;
        }
    }

    /// The request's trailers: they end a chunked body; a body of known length has no
    /// place for them in HTTP/1.1, so they are dropped there. `Err`: malformed.
    pub fn trailers(&mut self, list: &HeaderList) -> Result<(), &'static str> {
        self.news = true;
        let mut io = self.io.borrow_mut();
        if self.body == BodyFraming::Chunked {
            write_trailers(list, &mut io.request)?;
        }
        io.request_ended = true;
        Ok(())
    }

    /// Takes in what the client side did: gives back the window for the body it read,
    /// frames its answer (if `may_send`: the connection's frames are not backed up), and
    /// notices its close.
    pub fn service(
        &mut self,
        codec: &mut Connection,
        list: &mut HeaderList,
        now: Instant,
        may_send: bool,
    ) -> Outcome {
        let mut io = self.io.borrow_mut();
        io.parent_woken = false;
        if io.cancelled && !self.answer.is_done() {
            codec.send_reset(self.id, ErrorCode::CANCEL);
            io.reset = true;
            return Outcome::Failed;
        }
        let credit = std::mem::take(&mut io.credit);
        if credit > 0 {
            codec.consumed(self.id, credit);
        }
        let room_before = io.answer.len();
        let pumped = match may_send {
            true => self
                .answer
                .pump(codec, (self.id, self.head_only), &mut io, list, now),
            false => Ok(()),
        };
        if pumped.is_err() {
            codec.send_reset(self.id, ErrorCode::INTERNAL_ERROR);
            io.reset = true;
            return Outcome::Failed;
        }
        if self.answer.is_done() && !io.request_ended {
            // Nothing more of the request is needed: the client side reads its end.
            io.request_ended = true;
            self.news = true;
        }
        if io.closed {
            if self.answer.is_done() {
                return Outcome::Finished;
            }
            // What the client side wrote before it closed still goes out as the
            // windows open; once nothing is left, the answer was cut short.
            if io.answer.is_empty() {
                codec.send_reset(self.id, ErrorCode::INTERNAL_ERROR);
                return Outcome::Failed;
            }
            return Outcome::Continues { wake_client: false };
        }
        let freed = io.answer.len() < room_before;
        Outcome::Continues {
            wake_client: std::mem::take(&mut self.news) || freed,
        }
    }

    /// The client reset the stream, or the connection is ending: the client side fails
    /// its next read or write.
    pub fn abandon(&self) {
        self.io.borrow_mut().reset = true;
    }
}
