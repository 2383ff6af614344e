//! The backend side of an HTTP exchange: a connection and its states.

use std::time::Instant;

use crate::backend::BackendId;
use crate::conn::Socket;
use crate::timer::TimerId;

pub struct UpstreamConn {
    pub io: Socket,
    pub backend: BackendId,
    pub serial: u32,
    pub state: UpstreamState,
    pub timer: Option<TimerId>,
    /// When the server timeout was last pushed back.
    pub armed_at: Instant,
    /// It has served a request before: a failure before any answer may just mean the
    /// backend closed it while it sat in the pool.
    pub reused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Non-blocking connect under way for client `client`.
    Connecting { client: usize },
    /// Carrying an exchange for client `client`.
    Busy { client: usize },
    /// In its backend's keep-alive pool.
    Idle,
}
