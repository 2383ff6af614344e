//! Handshake counters for /metrics. Process-wide atomics rather than loop-owned integers:
//! sessions count where rustls reports, below the event loop, and every worker adds to the
//! same ones, so /metrics reads them once rather than summing workers.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a client's handshake failed, as the `reason` label of
/// `lb_tls_handshake_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Plain HTTP sent to the TLS port (answered with a plaintext 400).
    PlaintextHttp = 0,
    /// No protocol version, cipher suite, group or ALPN protocol in common.
    NoCommonParameters = 1,
    /// Not TLS, or TLS that breaks the protocol.
    BadMessage = 2,
    /// The client refused us with an alert (e.g. it does not trust our certificate).
    AlertReceived = 3,
    /// The client closed the connection halfway through.
    Closed = 4,
    /// Still unfinished when lb closed it: --client-timeout, or stopping.
    Unfinished = 5,
    Other = 6,
}

pub const FAILURE_REASONS: [&str; 7] = [
    "plaintext_http",
    "no_common_parameters",
    "bad_message",
    "alert_received",
    "closed",
    "unfinished",
    "other",
];

impl HandshakeFailure {
    pub fn of(e: &rustls::Error) -> Self {
        use rustls::Error as E;
        match e {
            E::PeerIncompatible(_) | E::NoCertificatesPresented | E::UnsupportedNameType => {
                HandshakeFailure::NoCommonParameters
            }
            E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::PeerMisbehaved(_)
            | E::DecryptError => HandshakeFailure::BadMessage,
            E::AlertReceived(_) => HandshakeFailure::AlertReceived,
            _ => HandshakeFailure::Other,
        }
    }
}

pub struct Snapshot {
    pub completed: u64,
    pub resumed: u64,
    pub failures: [u64; FAILURE_REASONS.len()],
}

static COMPLETED: AtomicU64 = AtomicU64::new(0);
static RESUMED: AtomicU64 = AtomicU64::new(0);
static FAILURES: [AtomicU64; FAILURE_REASONS.len()] = [const { AtomicU64::new(0) }; 7];

pub fn completed(resumed: bool) {
    COMPLETED.fetch_add(1, Ordering::Relaxed);
    if resumed {
        RESUMED.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn failed(why: HandshakeFailure) {
    FAILURES[why as usize].fetch_add(1, Ordering::Relaxed);
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        completed: COMPLETED.load(Ordering::Relaxed),
        resumed: RESUMED.load(Ordering::Relaxed),
        failures: std::array::from_fn(|i| FAILURES[i].load(Ordering::Relaxed)),
    }
}
