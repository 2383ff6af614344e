//! A backend server: where it is, how much it weighs, whether it is up, and what it is doing now.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;

use crate::config::MAX_RETRIES;

/// Index of a backend in the pool; stable for the life of the process.
pub type BackendId = usize;

#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// The address as the operator wrote it, for logs and the status page.
    pub label: String,
    pub weight: u32,
    /// `https://`: the name its certificate must show, also sent as SNI.
    pub tls: Option<ServerName<'static>>,
    /// False while the health checks hold it down.
    pub up: bool,
    /// Open connections (TCP mode) or requests in flight (HTTP mode) right now.
    pub active: u32,
    /// Moving average of response time in microseconds; `None` until the first sample.
    pub ewma_us: Option<f64>,
    /// Idle keep-alive connections to this backend, by slab token, most recent last.
    pub idle: Vec<usize>,
}

/// How much one new sample moves the response-time average.
const EWMA_ALPHA: f64 = 0.3;

impl Backend {
    pub fn new(addr: SocketAddr, label: String, weight: u32) -> Self {
        Backend {
            addr,
            label,
            weight,
            tls: None,
            up: true,
            active: 0,
            ewma_us: None,
            idle: Vec::new(),
        }
    }

    /// A request (HTTP) or a connection (TCP) is now in flight here.
    pub fn request_started(&mut self) {
        self.active += 1;
    }

    pub fn request_done(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    pub fn record_response_time(&mut self, micros: u64) {
        let sample = micros as f64;
        self.ewma_us = Some(match self.ewma_us {
            None => sample,
            Some(avg) => avg + EWMA_ALPHA * (sample - avg),
        });
    }
}

/// The backends one request (or TCP connection) has been sent to, so that a retry goes elsewhere.
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
