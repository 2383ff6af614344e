//! The bounds the HTTP/2 codec holds a client to, and the counters that enforce the ones
//! no single frame reveals: floods of work-only frames (PING, SETTINGS, WINDOW_UPDATE,
//! PRIORITY, empty DATA, ...) and rapid reset (CVE-2023-44487).

use std::time::{Duration, Instant};

use super::error::ErrorCode;
use super::frame::MAX_STREAM_ID;
use super::hpack::{HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS, advertised and enforced: what RFC 9113 §5.1.2
    /// recommends as the least, and what nginx, HAProxy and Envoy advertise.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (§6.5.2 counting): what lb takes in an HTTP/1.1 head,
    /// with the 32-octet overhead of its fields (`hpack::MAX_HEADER_LIST_SIZE`).
    pub max_header_list_size: u32,
    /// The HPACK dynamic table we let the client use: the RFC default, so nothing changes
    /// when our SETTINGS are acknowledged.
    pub header_table_size: u32,
    /// The connection's receive window: bounds what a client can make lb hold across all
    /// its streams (each stream is held to the RFC default of 65,535 bytes).
    pub connection_window: u32,
    /// Frames in one header block (HEADERS + CONTINUATIONs): a real block of
    /// `max_header_list_size` needs 2 frames of 16 KiB; 16 leaves room for peers that
    /// split small, and ends a CONTINUATION flood early.
    pub max_header_block_frames: u32,
    /// Encoded bytes in one header block: HPACK never makes a field larger than its list
    /// size counts it, so a larger block cannot decode within the list size.
    pub max_header_block_bytes: u32,
    /// Streams reset by the client before lb answered them, before the ratio is looked at.
    /// Envoy's default of 500 counts all streams; 100 premature resets is past what a
    /// browser cancels on a busy page.
    pub premature_resets_min: u32,
    /// The percentage of the connection's streams reset prematurely that ends it with
    /// ENHANCE_YOUR_CALM once `premature_resets_min` is reached (Envoy: 50%).
    pub premature_reset_percent: u32,
    /// Frames that cost work but carry no request (PING, SETTINGS, WINDOW_UPDATE,
    /// PRIORITY, empty DATA, refused or ignored streams...) allowed per `flood_period`
    /// whatever else happens: a healthy client sends a handful.
    pub flood_allowance: u32,
    /// And as many more per useful frame (a new request, non-empty DATA received, DATA
    /// sent): a download earns its WINDOW_UPDATEs, as in Envoy's per-DATA allowance.
    pub flood_per_useful: u32,
    /// The period after which the counts start again, so a long-lived connection's keepalive
    /// PINGs never add up to a flood.
    pub flood_period: Duration,
    /// Control frames (acks, RST_STREAM, WINDOW_UPDATE) queued and not yet taken by the
    /// caller: a client that sends PINGs and never reads the acks grows this.
    pub max_queued_control_frames: u32,
    /// A new stream id at or above this starts a graceful GOAWAY: the client must open a new
    /// connection soon anyway (§5.1.1), and the streams below it still finish.
    pub stream_id_high_water: u32,
    /// A window that small is not worth sending into: a stream (or the connection) that has
    /// data to send stays "stalled since" until the peer's window reaches this much (or all
    /// that is pending), so 1-byte WINDOW_UPDATE drips do not reset the caller's deadline.
    pub useful_window: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            max_header_list_size: MAX_HEADER_LIST_SIZE,
            header_table_size: HEADER_TABLE_SIZE,
            connection_window: 1 << 20,
            max_header_block_frames: 16,
            max_header_block_bytes: MAX_HEADER_LIST_SIZE,
            premature_resets_min: 100,
            premature_reset_percent: 50,
            flood_allowance: 100,
            flood_per_useful: 4,
            flood_period: Duration::from_secs(10),
            max_queued_control_frames: 256,
            stream_id_high_water: MAX_STREAM_ID - 2 * 1024,
            useful_window: 16 * 1024,
        }
    }
}

/// The count of work-only frames against useful ones in the current period.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    since: Instant,
    idle: u32,
    useful: u32,
}

impl Flood {
    pub fn new(now: Instant) -> Self {
        Self {
            since: now,
            idle: 0,
            useful: 0,
        }
    }

    pub fn useful(&mut self) {
        self.useful = self.useful.saturating_add(1);
    }

    /// One more work-only frame; past the allowance, ENHANCE_YOUR_CALM.
    pub fn idle(&mut self, now: Instant, limits: &Limits) -> Result<(), ErrorCode> {
        if now.saturating_duration_since(self.since) >= limits.flood_period {
            *self = Self::new(now);
        }
        self.idle = self.idle.saturating_add(1);
        let allowed = limits
            .flood_allowance
            .saturating_add(self.useful.saturating_mul(limits.flood_per_useful));
        match self.idle > allowed {
            true => Err(ErrorCode::ENHANCE_YOUR_CALM),
            false => Ok(()),
        }
    }
}

/// Streams opened, and those the client reset before they were answered (Envoy's
/// premature-reset ratio).
#[derive(Clone, Copy, Debug, Default)]
pub struct Resets {
    streams: u32,
    premature: u32,
}

impl Resets {
    pub fn opened(&mut self) {
        self.streams = self.streams.saturating_add(1);
    }

    /// The client reset a stream lb had not answered; past the ratio, ENHANCE_YOUR_CALM.
    pub fn premature(&mut self, limits: &Limits) -> Result<(), ErrorCode> {
        self.premature = self.premature.saturating_add(1);
        let share = u64::from(self.premature) * 100;
        let limit = u64::from(self.streams) * u64::from(limits.premature_reset_percent);
        match self.premature >= limits.premature_resets_min && share >= limit {
            true => Err(ErrorCode::ENHANCE_YOUR_CALM),
            false => Ok(()),
        }
    }
}
