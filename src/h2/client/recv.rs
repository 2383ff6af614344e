//! What each frame a server sends does to the connection and its streams.

use std::ops::Range;
use std::time::Instant;

use super::stream::{Received, Remote, Stream};
use super::{Block, ClientConnection, Emit, State};
use crate::h2::error::ErrorCode;
use crate::h2::frame;
use crate::h2::hpack::DecodeError;
use crate::h2::message::{check_response, check_trailers};
use crate::h2::settings::id;
use crate::h2::stream::BodyLength;

type Handled = Result<Option<Emit>, ErrorCode>;

impl ClientConnection {
    /// §5.4.2: RST_STREAM for a stream error, and the caller told if it knew the stream.
    /// An idle stream cannot be reset (§6.4), so its error ends the connection.
    pub(super) fn stream_error(&mut self, id: u32, code: ErrorCode) -> Handled {
        if self.is_idle(id) {
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
        if matches!(self.state, State::Draining { .. }) && self.streams.is_empty() {
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
        // §5.1: a HEADERS on a stream we did not open (push is off: §8.4).
        if self.is_idle(block.stream) {
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
    /// that the HPACK table stays in step with the server's.
    fn finish_block(&mut self, block: Block, bytes: &[u8], now: Instant) -> Handled {
        let too_large = match self.decoder.decode(bytes, &mut self.headers) {
            Ok(()) => false,
            Err(DecodeError::ListTooLarge) => true,
            Err(DecodeError::Compression) => return Err(ErrorCode::COMPRESSION_ERROR),
        };
        let id = block.stream;
        let Some(stream) = self.streams.get(id).copied() else {
            // §5.1 closed: what was in flight when we reset it is ignored.
            self.flood.idle(now, &self.limits)?;
            if self.streams.was_reset(id) {
                return Ok(None);
            }
            return self.stream_error(id, ErrorCode::STREAM_CLOSED);
        };
        // §5.3.1: a stream cannot depend on itself.
        if block.self_dependent {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR);
        }
        // Larger than the SETTINGS_MAX_HEADER_LIST_SIZE we advertised: the caller cannot
        // relay it whole, so the stream ends here (§10.5.1).
        if too_large {
            return self.stream_error(id, ErrorCode::ENHANCE_YOUR_CALM);
        }
        match stream.remote {
            Remote::AwaitingResponse => self.on_response(stream, block.end_stream, now),
            Remote::Body | Remote::Ended => self.on_trailers(stream, block.end_stream),
        }
    }

    /// A response's header section, interim or final (§8.1, §8.3.2).
    fn on_response(&mut self, mut stream: Stream, end_stream: bool, now: Instant) -> Handled {
        let id = stream.id;
        let Ok(response) = check_response(&self.headers) else {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR);
        };
        let interim = (100..200).contains(&response.status);
        let received = Received::Headers {
            interim,
            end_stream,
        };
        stream.remote = match stream.remote.received(received) {
            Ok(next) => next,
            Err(code) => return self.stream_error(id, code),
        };
        if interim {
            // A 1xx costs a decode and carries nothing: a stream of them is a flood.
            self.flood.idle(now, &self.limits)?;
            return Ok(Some(Emit::Interim {
                stream: id,
                status: response.status,
            }));
        }
        // §8.1.1: a response that cannot have content may still say what its length
        // would be; any other's DATA must add up to it.
        let exempt = stream.head_request || matches!(response.status, 204 | 304);
        let declared = self
            .headers
            .iter()
            .filter(|(name, _)| !exempt && *name == b"content-length")
            .map(|(_, value)| value);
        let body = BodyLength::new(declared).and_then(|mut body| {
            body.data(0, end_stream)?;
            Ok(body)
        });
        stream.body = match body {
            Ok(body) => body,
            Err(code) => return self.stream_error(id, code),
        };
        self.flood.useful();
        self.store(stream);
        Ok(Some(Emit::Response {
            stream: id,
            status: response.status,
            end_stream,
        }))
    }

    /// A second header section: trailers, which end the stream (§8.1).
    fn on_trailers(&mut self, mut stream: Stream, end_stream: bool) -> Handled {
        let id = stream.id;
        let received = Received::Headers {
            interim: false,
            end_stream,
        };
        stream.remote = match stream.remote.received(received) {
            Ok(next) => next,
            Err(code) => return self.stream_error(id, code),
        };
        let checked = check_trailers(&self.headers)
            .map_err(|_| ErrorCode::PROTOCOL_ERROR)
            .and_then(|()| stream.body.data(0, true));
        if let Err(code) = checked {
            return self.stream_error(id, code);
        }
        self.flood.useful();
        self.store(stream);
        Ok(Some(Emit::Trailers { stream: id }))
    }

    /// Puts back a stream a frame changed, or drops it once both halves ended.
    pub(super) fn store(&mut self, stream: Stream) {
        if stream.is_closed() {
            self.close_stream(stream.id);
        } else if let Some(slot) = self.streams.get_mut(stream.id) {
            *slot = stream;
        }
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
        if self.is_idle(id) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        let Some(mut stream) = self.streams.get(id).copied() else {
            self.release_connection(flow_len);
            self.flood.idle(now, &self.limits)?;
            if self.streams.was_reset(id) {
                return Ok(None);
            }
            // §6.1: a stream neither open nor half-closed (local).
            return self.stream_error(id, ErrorCode::STREAM_CLOSED);
        };
        let checked = stream
            .remote
            .received(Received::Data { end_stream })
            .and_then(|next| stream.recv.receive(flow_len).map(|()| next))
            .and_then(|next| stream.body.data(at.len(), end_stream).map(|()| next));
        stream.remote = match checked {
            Ok(next) => next,
            Err(code) => {
                self.release_connection(flow_len);
                return self.stream_error(id, code);
            }
        };
        stream.held = stream.held.saturating_add(len);
        // Padding is never passed on: its credit goes back at once.
        let padding = flow_len.saturating_sub(len);
        if let Some(increment) = stream
            .recv
            .release(padding)
            .filter(|_| stream.remote != Remote::Ended)
        {
            frame::encode_window_update(&mut self.output, id, increment);
        }
        self.release_connection(padding);
        if len == 0 && !end_stream {
            self.flood.idle(now, &self.limits)?;
        } else {
            self.flood.useful();
        }
        self.store(stream);
        Ok(Some(Emit::Data {
            stream: id,
            at,
            end_stream,
        }))
    }

    pub(super) fn on_reset(&mut self, id: u32, code: ErrorCode, now: Instant) -> Handled {
        // §6.4: RST_STREAM on an idle stream is a connection error.
        if self.is_idle(id) {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        match self.close_stream(id) {
            Some(_) => Ok(Some(Emit::Reset { stream: id, code })),
            None => {
                self.flood.idle(now, &self.limits)?;
                Ok(None)
            }
        }
    }

    pub(super) fn on_settings(&mut self, ack: bool, params: &[u8], now: Instant) -> Handled {
        self.flood.idle(now, &self.limits)?;
        if ack {
            self.settings_sent_at = None;
            return Ok(None);
        }
        // §6.5.2: a server must not enable push.
        let enables_push = params.chunks_exact(6).any(|p| {
            p.get(..2) == Some(&id::ENABLE_PUSH.to_be_bytes()[..]) && p.get(2..) != Some(&[0; 4])
        });
        if enables_push {
            return Err(ErrorCode::PROTOCOL_ERROR);
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
        for stream in self.streams.iter_mut() {
            stream.send.adjust(delta)?;
        }
        let changed =
            delta > 0 || self.peer.max_concurrent_streams != before.max_concurrent_streams;
        Ok(changed.then_some(Emit::SettingsChanged))
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
        if self.is_idle(id) {
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

    /// The server's GOAWAY (§6.8): no new stream; those above `last_stream` were not
    /// processed, and `next_event` reports them refused one by one.
    pub(super) fn on_goaway(&mut self, last_stream: u32, code: ErrorCode, now: Instant) -> Handled {
        self.flood.idle(now, &self.limits)?;
        let last_stream = match self.state {
            State::Draining {
                last_stream: before,
            } => before.min(last_stream),
            _ => last_stream,
        };
        self.state = match self.streams.is_empty() {
            true => State::Closed,
            false => State::Draining { last_stream },
        };
        Ok(Some(Emit::GoAway { last_stream, code }))
    }
}
