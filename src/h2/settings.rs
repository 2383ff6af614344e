//! SETTINGS parameters (RFC 9113 §6.5): the values one side declared, read and validated
//! from a SETTINGS payload per §6.5.2.

use super::error::ErrorCode;
use super::frame::{DEFAULT_MAX_FRAME_SIZE, MAX_STREAM_ID};

pub mod id {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// The largest SETTINGS_MAX_FRAME_SIZE allowed (§6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// SETTINGS_INITIAL_WINDOW_SIZE's initial value (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// One side's settings; `Default` holds the initial values of §6.5.2 ("unlimited" as
/// `u32::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub header_table_size: u32,
    pub enable_push: bool,
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    pub max_header_list_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
        }
    }
}

impl Settings {
    /// Applies a SETTINGS payload (whole 6-byte parameters, as `frame::decode` checked), in
    /// order as §6.5.3 requires. A bad value is a connection error with the returned code;
    /// unknown identifiers are ignored (§6.5.2).
    pub fn apply(&mut self, params: &[u8]) -> Result<(), ErrorCode> {
        for param in params.chunks_exact(6) {
            let (ident, value) = param.split_at(2);
            let ident = u16::from_be_bytes(ident.try_into().unwrap_or_default());
            let value = u32::from_be_bytes(value.try_into().unwrap_or_default());
            match ident {
                id::HEADER_TABLE_SIZE => self.header_table_size = value,
                id::ENABLE_PUSH => {
                    self.enable_push = match value {
                        0 => false,
                        1 => true,
                        _ => return Err(ErrorCode::PROTOCOL_ERROR),
                    }
                }
                id::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = value,
                id::INITIAL_WINDOW_SIZE if value > MAX_STREAM_ID => {
                    return Err(ErrorCode::FLOW_CONTROL_ERROR);
                }
                id::INITIAL_WINDOW_SIZE => self.initial_window_size = value,
                id::MAX_FRAME_SIZE
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) =>
                {
                    return Err(ErrorCode::PROTOCOL_ERROR);
                }
                id::MAX_FRAME_SIZE => self.max_frame_size = value,
                id::MAX_HEADER_LIST_SIZE => self.max_header_list_size = value,
                _ => {}
            }
        }
        Ok(())
    }

    /// The parameters that differ from the initial values, to announce them.
    pub fn changed(&self) -> impl Iterator<Item = (u16, u32)> + use<> {
        let initial = Self::default();
        [
            (
                id::HEADER_TABLE_SIZE,
                self.header_table_size,
                initial.header_table_size,
            ),
            (id::ENABLE_PUSH, u32::from(self.enable_push), 1),
            (
                id::MAX_CONCURRENT_STREAMS,
                self.max_concurrent_streams,
                initial.max_concurrent_streams,
            ),
            (
                id::INITIAL_WINDOW_SIZE,
                self.initial_window_size,
                initial.initial_window_size,
            ),
            (
                id::MAX_FRAME_SIZE,
                self.max_frame_size,
                initial.max_frame_size,
            ),
            (
                id::MAX_HEADER_LIST_SIZE,
                self.max_header_list_size,
                initial.max_header_list_size,
            ),
        ]
        .into_iter()
        .filter(|(_, value, initial)| value != initial)
        .map(|(id, value, _)| (id, value))
    }
}
