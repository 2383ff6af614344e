//! Flow-control windows (RFC 9113 §6.9) with checked arithmetic: a window may go negative
//! after a SETTINGS_INITIAL_WINDOW_SIZE change (§6.9.2) but never past 2^31-1.

use super::error::ErrorCode;
use super::frame::MAX_STREAM_ID;

const MAX_WINDOW: i64 = MAX_STREAM_ID as i64;

/// A window: the bytes the other side may still send (or that we may send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(i64);

impl Window {
    pub fn new(size: u32) -> Self {
        Self(i64::from(size.min(MAX_STREAM_ID)))
    }

    /// The window as it stands; negative after a shrinking SETTINGS change.
    pub fn get(self) -> i64 {
        self.0
    }

    /// What may be sent now: the window, or 0 when it is not positive.
    pub fn sendable(self) -> u32 {
        u32::try_from(self.0.max(0)).unwrap_or(MAX_STREAM_ID)
    }

    /// A WINDOW_UPDATE's increment; past 2^31-1 is a FLOW_CONTROL_ERROR (§6.9.1), for the
    /// connection or the stream as the caller decides.
    pub fn grow(&mut self, increment: u32) -> Result<(), ErrorCode> {
        self.adjust(i64::from(increment))
    }

    /// A SETTINGS_INITIAL_WINDOW_SIZE change applied to an open stream's window (§6.9.2).
    pub fn adjust(&mut self, delta: i64) -> Result<(), ErrorCode> {
        match self.0.checked_add(delta) {
            Some(next) if next <= MAX_WINDOW => {
                self.0 = next;
                Ok(())
            }
            _ => Err(ErrorCode::FLOW_CONTROL_ERROR),
        }
    }

    /// Takes `n` bytes out of the window: received DATA, or DATA about to be sent. More than
    /// the window holds is a FLOW_CONTROL_ERROR (§6.9.1).
    pub fn take(&mut self, n: u32) -> Result<(), ErrorCode> {
        match i64::from(n) <= self.0 {
            true => {
                self.0 -= i64::from(n);
                Ok(())
            }
            false => Err(ErrorCode::FLOW_CONTROL_ERROR),
        }
    }
}

/// A receive window and the credit not yet given back: bytes the receiver has passed on
/// are returned in WINDOW_UPDATEs of at least half the window, so that a stream of small
/// reads does not cost one frame each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvWindow {
    window: Window,
    size: u32,
    unannounced: u32,
}

impl RecvWindow {
    pub fn new(size: u32) -> Self {
        Self {
            window: Window::new(size),
            size,
            unannounced: 0,
        }
    }

    /// Received DATA of `n` flow-controlled bytes; more than was advertised is a
    /// FLOW_CONTROL_ERROR.
    pub fn receive(&mut self, n: u32) -> Result<(), ErrorCode> {
        self.window.take(n)
    }

    /// `n` received bytes are no longer held; the increment to announce, if one is due.
    pub fn release(&mut self, n: u32) -> Option<u32> {
        self.unannounced = self.unannounced.saturating_add(n);
        if self.unannounced < self.size / 2 {
            return None;
        }
        let increment = std::mem::take(&mut self.unannounced);
        // Never past the advertised size: what was released was received first.
        self.window.grow(increment).ok()?;
        Some(increment)
    }

    pub fn available(self) -> i64 {
        self.window.get()
    }
}
