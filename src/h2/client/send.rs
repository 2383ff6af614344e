//! What the caller sends: requests on new streams, their bodies within the server's
//! windows, trailers, resets, GOAWAY; and the response credit it gives back.

use std::time::Instant;

use super::stream::{Local, Remote, Stream};
use super::{ClientConnection, STREAM_WINDOW, State};
use crate::h2::connection::SendError;
use crate::h2::error::ErrorCode;
use crate::h2::flow::{RecvWindow, Window};
use crate::h2::frame;
use crate::h2::hpack::HeaderList;
use crate::h2::stream::BodyLength;

/// Why a stream was not opened; nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// As many streams are open as the server allows: wait for one to end (or use
    /// another connection).
    Busy,
    /// The connection takes no new stream (GOAWAY, stream ids used up, closed): open a
    /// new one.
    Closed,
    /// The header list is larger than the server's SETTINGS_MAX_HEADER_LIST_SIZE.
    TooLarge,
}

impl ClientConnection {
    /// Frames to write, appended to `out` (call it when the socket can take them).
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.output);
        self.output.clear();
        self.provoked = 0;
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Opens the next stream with a request's header list (pseudo-header fields first:
    /// see `message::request_list`), as HEADERS and CONTINUATIONs within the server's
    /// frame size; `end_stream` when the request has no body. Returns the stream's id.
    pub fn open_stream(
        &mut self,
        headers: &HeaderList,
        end_stream: bool,
    ) -> Result<u32, OpenError> {
        if self.can_open() == 0 {
            return Err(match self.state {
                State::AwaitingSettings | State::Open => OpenError::Busy,
                State::Draining { .. } | State::Closed => OpenError::Closed,
            });
        }
        if u32::try_from(headers.size()).map_or(true, |size| size > self.peer.max_header_list_size)
        {
            return Err(OpenError::TooLarge);
        }
        let id = self.next_stream;
        self.scratch.clear();
        self.encoder.encode(headers.iter(), &mut self.scratch);
        frame::encode_headers(
            &mut self.output,
            id,
            &self.scratch,
            end_stream,
            self.peer.max_frame_size,
        );
        let head_request = headers
            .iter()
            .any(|(name, value)| name == b":method" && value == b"HEAD");
        self.streams.insert(Stream {
            id,
            local: if end_stream {
                Local::Ended
            } else {
                Local::Open
            },
            remote: Remote::AwaitingResponse,
            send: Window::new(self.peer.initial_window_size),
            recv: RecvWindow::new(STREAM_WINDOW),
            body: BodyLength::default(),
            head_request,
            held: 0,
            pending: 0,
            stalled_since: None,
        });
        self.last_opened = id;
        self.next_stream = id.saturating_add(2);
        // A request earns the server its share of control frames, as in the server's
        // count.
        self.flood.useful();
        // §5.1.1: ids cannot be reused; near the end the connection drains and the caller
        // opens a new one.
        if self.next_stream >= self.limits.stream_id_high_water {
            self.go_away();
        }
        Ok(id)
    }

    /// A request's trailer section, which ends our side of the stream.
    pub fn send_trailers(&mut self, id: u32, headers: &HeaderList) -> Result<(), SendError> {
        let stream = self.streams.get_mut(id).ok_or(SendError::Closed)?;
        if stream.local == Local::Ended {
            return Err(SendError::Ended);
        }
        stream.local = Local::Ended;
        let stream = *stream;
        self.scratch.clear();
        self.encoder.encode(headers.iter(), &mut self.scratch);
        frame::encode_headers(
            &mut self.output,
            id,
            &self.scratch,
            true,
            self.peer.max_frame_size,
        );
        self.store(stream);
        Ok(())
    }

    /// Sends what it can of `data` in one DATA frame, within the stream's and the
    /// connection's windows and the server's frame size; returns how much. `end_stream` is
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
        if stream.local == Local::Ended {
            return Err(SendError::Ended);
        }
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
        let taken = u32::try_from(n).unwrap_or(u32::MAX);
        // Cannot fail: n is within both windows.
        let _ = stream.send.take(taken);
        let _ = self.send_window.take(taken);
        if end_stream {
            stream.local = Local::Ended;
        }
        let stream = *stream;
        frame::encode_data(
            &mut self.output,
            id,
            data.get(..n).unwrap_or_default(),
            end_stream,
        );
        self.store(stream);
        Ok(n)
    }

    /// Resets a stream the caller gives up on (its client left, a timeout).
    pub fn send_reset(&mut self, id: u32, code: ErrorCode) {
        if self.close_stream(id).is_some() {
            frame::encode_rst_stream(&mut self.output, id, code);
            self.streams.note_reset(id);
        }
    }

    /// The caller passed on `n` response body bytes of `stream`: their credit goes back to
    /// the server, so what lb holds stays within the windows it advertised.
    pub fn consumed(&mut self, id: u32, n: usize) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(stream.held);
        stream.held -= n;
        // Only a stream the server may still send on needs its window back.
        let increment = stream
            .recv
            .release(n)
            .filter(|_| stream.remote != Remote::Ended);
        if let Some(increment) = increment {
            frame::encode_window_update(&mut self.output, id, increment);
        }
        self.release_connection(n);
    }

    /// GOAWAY (§6.8: 0, since the server opened no stream): no new stream from us; those
    /// open finish, and the connection closes after the last.
    pub fn go_away(&mut self) {
        if !matches!(self.state, State::AwaitingSettings | State::Open) {
            return;
        }
        frame::encode_goaway(&mut self.output, 0, ErrorCode::NO_ERROR, &[]);
        self.state = match self.streams.is_empty() {
            true => State::Closed,
            false => State::Draining {
                last_stream: self.last_opened,
            },
        };
    }

    /// Since when our SETTINGS have gone unacknowledged (§6.5.3: past the caller's
    /// deadline, `abort(ErrorCode::SETTINGS_TIMEOUT)`).
    pub fn settings_unacked_since(&self) -> Option<Instant> {
        self.settings_sent_at
    }

    /// Since when `stream` (0: the connection) has had data to send and too small a window
    /// from the server to send it; WINDOW_UPDATEs that leave the window below
    /// `Limits::useful_window` do not reset it.
    pub fn stalled_since(&self, stream: u32) -> Option<Instant> {
        match stream {
            0 => self.stalled_since,
            _ => self.streams.get(stream).and_then(|s| s.stalled_since),
        }
    }

    /// The longest stall, connection (0) or stream, for the caller's one timer.
    pub fn oldest_stall(&self) -> Option<(u32, Instant)> {
        let streams = self
            .streams
            .iter()
            .filter_map(|s| s.stalled_since.map(|at| (s.id, at)));
        self.stalled_since
            .map(|at| (0, at))
            .into_iter()
            .chain(streams)
            .min_by_key(|&(_, at)| at)
    }

    /// Ends the connection with an error of the caller's finding: SETTINGS_TIMEOUT when
    /// `settings_unacked_since` is too old, ENHANCE_YOUR_CALM for a stalled connection.
    pub fn abort(&mut self, code: ErrorCode) {
        if self.state != State::Closed {
            self.fail(code);
        }
    }
}
