//! What each received frame does to the connection and its streams.

use std::ops::Range;
use std::time::Instant;

use super::streams::Stream;
use super::{Block, Connection, Emit, State};
use crate::h2::error::{Error, ErrorCode};
use crate::h2::flow::{RecvWindow, Window};
use crate::h2::frame;
use crate::h2::hpack::DecodeError;
use crate::h2::settings::DEFAULT_WINDOW;
use crate::h2::stream::{BodyLength, State as StreamState, Step};

type Handled = Result<Option<Emit>, ErrorCode>;

impl Connection {
    /// §5.4.2: RST_STREAM for a stream error, and the caller told if it knew the stream.
    /// An idle stream cannot be reset (§6.4), so its error ends the connection.
    pub(super) fn stream_error(&mut self, id: u32, code: ErrorCode) -> Handled {
        if id > self.last_peer_stream {
            return Err(code);
        }
        self.provoke()?;
        frame::encode_rst_stream(&mut self.output, id, code);
        self.streams.note_reset(id);
        Ok(self
            .close_stream(id)
            .map(|_| Emit::Reset { stream: id, code }))
    }

    /// Drops a stream from the table; the body bytes the caller still held no longer count
    /// against the connection's window. A draining connection closes with its last stream.
    pub(super) fn close_stream(&mut self, id: u32) -> Option<Stream> {
        let stream = self.streams.remove(id)?;
        self.release_connection(stream.held);
        if matches!(self.state, State::GoingAway { .. }) && self.streams.is_empty() {
            self.state = State::Closed;
        }
        Some(stream)
    }

    pub(super) fn release_connection(&mut self, n: u32) {
        if let Some(increment) = self.recv_window.release(n) {
            frame::encode_window_update(&mut self.output, 0, increment);
        }
    }

    pub(super) fn on_headers(
        &mut self,
        block: Block,
        end_headers: bool,
        fragment: &[u8],
        now: Instant,
    ) -> Handled {
        // §5.1.1: clients open odd-numbered streams.
        if block.stream.is_multiple_of(2) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        self.check_block_size(fragment.len())?;
        if end_headers {
            return self.finish_block(block, fragment, now);
        }
        self.block.clear();
        self.block.extend_from_slice(fragment);
        self.open_block = Some(block);
        Ok(None)
    }

    pub(super) fn on_continuation(
        &mut self,
        stream: u32,
        end_headers: bool,
        fragment: &[u8],
        now: Instant,
    ) -> Handled {
        let mut block = match self.open_block.take() {
            Some(block) if block.stream == stream => block,
            // §6.10: CONTINUATION only continues a block, on the same stream.
            _ => return Err(ErrorCode::PROTOCOL_ERROR),
        };
        block.frames = block.frames.saturating_add(1);
        if block.frames > self.limits.max_header_block_frames {
            return Err(ErrorCode::ENHANCE_YOUR_CALM);
        }
        self.check_block_size(self.block.len().saturating_add(fragment.len()))?;
        self.block.extend_from_slice(fragment);
        if !end_headers {
            self.open_block = Some(block);
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.block);
        let handled = self.finish_block(block, &bytes, now);
        self.block = bytes;
        handled
    }

    fn check_block_size(&self, len: usize) -> Result<(), ErrorCode> {
        match u32::try_from(len).map_or(true, |len| len > self.limits.max_header_block_bytes) {
            true => Err(ErrorCode::ENHANCE_YOUR_CALM),
            false => Ok(()),
        }
    }

    /// A complete header block: always decoded first, whatever becomes of its stream, so
    /// that the HPACK table stays in step with the client's.
    fn finish_block(&mut self, block: Block, bytes: &[u8], now: Instant) -> Handled {
        let too_large = match self.decoder.decode(bytes, &mut self.headers) {
            Ok(()) => false,
            Err(DecodeError::ListTooLarge) => true,
            Err(DecodeError::Compression) => return Err(ErrorCode::COMPRESSION_ERROR),
        };
        let id = block.stream;
        let end_stream = block.end_stream;
        if let Some(stream) = self.streams.get_mut(id) {
            let next = match stream.state.received(id, Step::Headers { end_stream }) {
                Ok(next) => next,
                Err(Error::Connection(code)) => return Err(code),
                Err(Error::Stream(_, code)) => return self.stream_error(id, code),
            };
            stream.state = next;
            let body = stream.body.data(0, true);
            if too_large {
                return self.stream_error(id, ErrorCode::ENHANCE_YOUR_CALM);
            }
            if let Err(code) = body {
                return self.stream_error(id, code);
            }
            self.flood.useful();
            if next == StreamState::Closed {
                self.close_stream(id);
            }
            return Ok(Some(Emit::Trailers { stream: id }));
        }
        if id <= self.last_peer_stream {
            // §5.1: trailers in flight when we reset the stream are ignored; otherwise the
            // id is being reused (§5.1.1).
            if !self.streams.was_reset(id) {
                return Err(ErrorCode::PROTOCOL_ERROR);
            }
            self.flood.idle(now, &self.limits)?;
            return Ok(None);
        }
        self.last_peer_stream = id;
        self.open_stream(block, too_large, now)
    }

    /// A new stream from a decoded request header block.
    fn open_stream(&mut self, block: Block, too_large: bool, now: Instant) -> Handled {
        let id = block.stream;
        let refused = match self.state {
            State::GoingAway { last_stream } => id > last_stream,
            _ => false,
        };
        let at_limit = self.streams.len()
            >= usize::try_from(self.limits.max_concurrent_streams).unwrap_or(usize::MAX);
        if refused || at_limit {
            self.flood.idle(now, &self.limits)?;
            return self.stream_error(id, ErrorCode::REFUSED_STREAM);
        }
        // §5.3.1: a stream cannot depend on itself.
        if block.self_dependent {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR);
        }
        let body = match too_large {
            true => BodyLength::new(std::iter::empty()),
            false => BodyLength::new(
                self.headers
                    .iter()
                    .filter(|(name, _)| *name == b"content-length")
                    .map(|(_, value)| value),
            ),
        };
        let mut body = match body {
            Ok(body) => body,
            Err(code) => return self.stream_error(id, code),
        };
        if let Err(code) = body.data(0, block.end_stream) {
            return self.stream_error(id, code);
        }
        let state = match StreamState::Idle.received(
            id,
            Step::Headers {
                end_stream: block.end_stream,
            },
        ) {
            Ok(state) => state,
            Err(error) => return Err(error.code()),
        };
        self.streams.insert(Stream {
            id,
            state,
            send: Window::new(self.peer.initial_window_size),
            recv: RecvWindow::new(DEFAULT_WINDOW),
            body,
            answered: false,
            held: 0,
            pending: 0,
            stalled_since: None,
        });
        self.resets.opened();
        self.flood.useful();
        if id >= self.limits.stream_id_high_water && self.state == State::Open {
            self.go_away(true);
        }
        let end_stream = block.end_stream;
        Ok(Some(match too_large {
            true => Emit::RequestTooLarge {
                stream: id,
                end_stream,
            },
            false => Emit::Request {
                stream: id,
                end_stream,
            },
        }))
    }

    pub(super) fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        at: Range<usize>,
        flow_len: u32,
        now: Instant,
    ) -> Handled {
        // §6.9: DATA counts against the connection's window whatever its stream.
        self.recv_window.receive(flow_len)?;
        let len = u32::try_from(at.len()).unwrap_or(u32::MAX);
        let Some(stream) = self.streams.get_mut(id) else {
            // §5.1 idle: DATA is a connection error.
            if id > self.last_peer_stream {
                return Err(ErrorCode::PROTOCOL_ERROR);
            }
            self.release_connection(flow_len);
            self.flood.idle(now, &self.limits)?;
            if self.streams.was_reset(id) {
                return Ok(None);
            }
            // §6.1: a stream neither open nor half-closed (local).
            return self.stream_error(id, ErrorCode::STREAM_CLOSED);
        };
        let checked = stream
            .state
            .received(id, Step::Data { end_stream })
            .map_err(Error::code)
            .and_then(|next| stream.recv.receive(flow_len).map(|()| next))
            .and_then(|next| stream.body.data(at.len(), end_stream).map(|()| next));
        let next = match checked {
            Ok(next) => next,
            Err(code) => {
                self.release_connection(flow_len);
                return self.stream_error(id, code);
            }
        };
        stream.state = next;
        stream.held = stream.held.saturating_add(len);
        // Padding is never passed on: its credit goes back at once.
        let padding = flow_len.saturating_sub(len);
        if let Some(increment) = stream
            .recv
            .release(padding)
            .filter(|_| next == StreamState::Open)
        {
            frame::encode_window_update(&mut self.output, id, increment);
        }
        self.release_connection(padding);
        if len == 0 && !end_stream {
            self.flood.idle(now, &self.limits)?;
        } else {
            self.flood.useful();
        }
        if next == StreamState::Closed {
            self.close_stream(id);
        }
        Ok(Some(Emit::Data {
            stream: id,
            at,
            end_stream,
        }))
    }

    pub(super) fn on_reset(&mut self, id: u32, code: ErrorCode, now: Instant) -> Handled {
        // §6.4: RST_STREAM on an idle stream is a connection error.
        if id > self.last_peer_stream {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        let Some(stream) = self.close_stream(id) else {
            self.flood.idle(now, &self.limits)?;
            return Ok(None);
        };
        if !stream.answered {
            self.resets.premature(&self.limits)?;
        }
        Ok(Some(Emit::Reset { stream: id, code }))
    }

    pub(super) fn on_settings(&mut self, ack: bool, params: &[u8], now: Instant) -> Handled {
        self.flood.idle(now, &self.limits)?;
        if ack {
            self.settings_sent_at = None;
            return Ok(None);
        }
        let before = self.peer;
        self.peer.apply(params)?;
        self.provoke()?;
        frame::encode_settings_ack(&mut self.output);
        if self.state == State::AwaitingSettings {
            self.state = State::Open;
        }
        if self.peer.header_table_size != before.header_table_size {
            self.encoder.set_max_table_size(self.peer.header_table_size);
        }
        // §6.9.2: the change applies to every stream's window, possibly making it negative.
        let delta =
            i64::from(self.peer.initial_window_size) - i64::from(before.initial_window_size);
        if delta == 0 {
            return Ok(None);
        }
        for stream in self.streams.iter_mut() {
            stream.send.adjust(delta)?;
        }
        Ok((delta > 0).then_some(Emit::WindowOpened { stream: 0 }))
    }

    pub(super) fn on_window_update(&mut self, id: u32, increment: u32, now: Instant) -> Handled {
        self.flood.idle(now, &self.limits)?;
        let useful = self.limits.useful_window;
        if id == 0 {
            self.send_window.grow(increment)?;
            if self.pending == 0 || self.send_window.sendable() == 0 {
                return Ok(None);
            }
            if self.send_window.sendable() as usize >= self.pending.min(useful as usize) {
                self.stalled_since = None;
            }
            return Ok(Some(Emit::WindowOpened { stream: 0 }));
        }
        // §5.1 idle: only HEADERS and PRIORITY.
        if id > self.last_peer_stream {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return Ok(None);
        };
        if stream.send.grow(increment).is_err() {
            return self.stream_error(id, ErrorCode::FLOW_CONTROL_ERROR);
        }
        let sendable = stream.send.sendable() as usize;
        if stream.pending == 0 || sendable == 0 {
            return Ok(None);
        }
        if sendable >= stream.pending.min(useful as usize) {
            stream.stalled_since = None;
        }
        Ok(Some(Emit::WindowOpened { stream: id }))
    }
}
