//! What the caller sends: answers and their bodies within the client's windows, resets,
//! GOAWAY; and the body credit it gives back.

use std::time::Instant;

use super::{Connection, State};
use crate::h2::error::ErrorCode;
use crate::h2::frame;
use crate::h2::stream::{State as StreamState, Step};

/// Why something could not be sent on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The stream is gone (reset, or finished): the exchange is over.
    Closed,
    /// Our side of it already ended: a caller's mistake.
    Ended,
}

impl Connection {
    /// Frames to write, appended to `out` (call it when the socket can take them).
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.output);
        self.output.clear();
        self.provoked = 0;
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Bytes of frames queued and not yet taken.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// An answer's header section (or a trailer section, with `end_stream`).
    pub fn send_headers<'h>(
        &mut self,
        id: u32,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        end_stream: bool,
    ) -> Result<(), SendError> {
        let stream = self.streams.get_mut(id).ok_or(SendError::Closed)?;
        let next = stream
            .state
            .sent(Step::Headers { end_stream })
            .map_err(|_| SendError::Ended)?;
        stream.state = next;
        stream.answered = true;
        self.scratch.clear();
        self.encoder.encode(headers, &mut self.scratch);
        frame::encode_headers(
            &mut self.output,
            id,
            &self.scratch,
            end_stream,
            self.peer.max_frame_size,
        );
        self.after_sending(id, next);
        Ok(())
    }

    /// Sends what it can of `data` in one DATA frame, within the stream's and the
    /// connection's windows and the client's frame size; returns how much. `end_stream` is
    /// sent only with the last byte. When the windows hold it back, the stream (or the
    /// connection) is stalled since `now` until a `WindowOpened` event.
    pub fn send_data(
        &mut self,
        id: u32,
        data: &[u8],
        end_stream: bool,
        now: Instant,
    ) -> Result<usize, SendError> {
        let useful = usize::try_from(self.limits.useful_window).unwrap_or(usize::MAX);
        let max_frame = usize::try_from(self.peer.max_frame_size).unwrap_or(usize::MAX);
        let connection_room = self.send_window.sendable() as usize;
        let stream = self.streams.get_mut(id).ok_or(SendError::Closed)?;
        stream
            .state
            .sent(Step::Data { end_stream: false })
            .map_err(|_| SendError::Ended)?;
        let stream_room = stream.send.sendable() as usize;
        let n = data
            .len()
            .min(stream_room)
            .min(connection_room)
            .min(max_frame);
        let wanted = data.len().min(useful);
        stream.pending = data.len() - n;
        stream.stalled_since = match stream_room >= wanted {
            true => None,
            false => stream.stalled_since.or(Some(now)),
        };
        self.pending = data.len() - n;
        self.stalled_since = match connection_room >= wanted {
            true => None,
            false => self.stalled_since.or(Some(now)),
        };
        if n == 0 && !data.is_empty() {
            return Ok(0);
        }
        let end_stream = end_stream && n == data.len();
        let next = stream
            .state
            .sent(Step::Data { end_stream })
            .map_err(|_| SendError::Ended)?;
        let taken = u32::try_from(n).unwrap_or(u32::MAX);
        // Cannot fail: n is within both windows.
        let _ = stream.send.take(taken);
        let _ = self.send_window.take(taken);
        stream.state = next;
        frame::encode_data(
            &mut self.output,
            id,
            data.get(..n).unwrap_or_default(),
            end_stream,
        );
        self.flood.useful();
        self.after_sending(id, next);
        Ok(n)
    }

    /// Our side ended: a stream that is done leaves the table, and one whose request is not
    /// finished is reset with NO_ERROR (§8.1: the rest of the request is not needed).
    fn after_sending(&mut self, id: u32, next: StreamState) {
        match next {
            StreamState::Closed => {
                self.close_stream(id);
            }
            StreamState::HalfClosedLocal => {
                frame::encode_rst_stream(&mut self.output, id, ErrorCode::NO_ERROR);
                self.streams.note_reset(id);
                self.close_stream(id);
            }
            StreamState::Idle | StreamState::Open | StreamState::HalfClosedRemote => {}
        }
    }

    /// Resets a stream the caller gives up on (a timeout, a backend's failure).
    pub fn send_reset(&mut self, id: u32, code: ErrorCode) {
        if self.close_stream(id).is_some() {
            frame::encode_rst_stream(&mut self.output, id, code);
            self.streams.note_reset(id);
        }
    }

    /// The caller passed on `n` body bytes of `stream`: their credit goes back to the
    /// client, so what lb holds stays within the windows it advertised.
    pub fn consumed(&mut self, id: u32, n: usize) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(stream.held);
        stream.held -= n;
        // Only a stream the client may still send on needs its window back.
        let increment = stream.recv.release(n).filter(|_| {
            matches!(
                stream.state,
                StreamState::Open | StreamState::HalfClosedLocal
            )
        });
        if let Some(increment) = increment {
            frame::encode_window_update(&mut self.output, id, increment);
        }
        self.release_connection(n);
    }

    /// GOAWAY with the last stream the client opened (§6.8). Graceful: those streams
    /// finish and the connection closes after the last; otherwise it closes now.
    pub fn go_away(&mut self, graceful: bool) {
        match self.state {
            State::Closed => return,
            State::GoingAway { .. } if graceful => return,
            _ => {}
        }
        let last_stream = self.last_peer_stream;
        frame::encode_goaway(&mut self.output, last_stream, ErrorCode::NO_ERROR, &[]);
        if graceful && !self.streams.is_empty() {
            self.state = State::GoingAway { last_stream };
        } else {
            self.streams.clear();
            self.state = State::Closed;
        }
    }

    /// Ends the connection with an error of the caller's finding: SETTINGS_TIMEOUT when
    /// `settings_unacked_since` is too old, ENHANCE_YOUR_CALM for a stalled connection.
    pub fn abort(&mut self, code: ErrorCode) {
        if self.state != State::Closed {
            self.fail(code);
        }
    }
}
