//! The client side of an HTTP connection: its states and the exchange it may be in.

use std::net::SocketAddr;
use std::time::Instant;

use super::body::Framing;
use super::head::{ClientSide, RequestId};
use crate::access_log::AccessLog;
use crate::backend::BackendId;
use crate::config::MAX_RETRIES;
use crate::conn::Socket;
use crate::timer::TimerId;

pub struct ClientConn {
    pub io: Socket,
    pub peer: SocketAddr,
    pub serial: u32,
    pub state: ClientState,
    pub timer: Option<TimerId>,
}

#[allow(clippy::large_enum_variant)] // inline, so that a request allocates nothing
pub enum ClientState {
    /// Keep-alive, between requests: no buffers held.
    Idle,
    /// Part of a request head has arrived.
    ReadingHead,
    /// A request is being served by a backend connection.
    Proxying(Exchange),
    /// Sending a response of our own (an error); then close, or read the next request.
    Answering { close: bool },
    /// Answered and half-closed: reading what the client still sends until it closes,
    /// so that its unread bytes do not turn our close into a reset.
    Lingering,
}

/// One request and its response, from dispatch until the response is written.
pub struct Exchange {
    /// Slab key of the backend connection serving it.
    pub upstream: usize,
    pub backend: BackendId,
    pub client: ClientSide,
    pub request_id: RequestId,
    /// What is left of the request body to forward.
    pub request_body: Framing,
    /// Head length still at the front of the client's input: a bodiless request stays
    /// there until its response starts, so that it can be sent again on a new connection.
    pub replayable_head: Option<usize>,
    pub response: ResponsePhase,
    /// Any byte of a final response went to the client.
    pub responded: bool,
    pub started: Instant,
    pub tried: Tried,
    pub log: AccessLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsePhase {
    Head,
    Body {
        framing: Framing,
        dechunk: bool,
        reusable: bool,
        close_client: bool,
    },
    Done {
        reusable: bool,
        close_client: bool,
    },
}

/// The backends one request has been sent to, so that a retry goes elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried {
    ids: [BackendId; MAX_RETRIES as usize + 1],
    len: usize,
}

impl Tried {
    pub fn add(&mut self, id: BackendId) {
        if self.len < self.ids.len() {
            self.ids[self.len] = id;
            self.len += 1;
        }
    }

    pub fn contains(&self, id: BackendId) -> bool {
        self.ids[..self.len].contains(&id)
    }

    pub fn count(&self) -> usize {
        self.len
    }
}
