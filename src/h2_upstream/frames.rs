//! The server's frames taken into the streams: a response head, body bytes and trailers
//! written for the exchange to read; a reset or a malformed response breaks its stream.

use log::debug;
use slab::Slab;

use super::stream::{Broken, Stream};
use super::{H2Upstream, h2_mut, wake_upstream};
use crate::event_loop::{Conn, Core};
use crate::h2::client::ClientEvent;
use crate::h2::error::ErrorCode;

/// Reads frames until no whole one is left; false once the connection failed.
pub(super) fn take_frames(conns: &mut Slab<Conn>, core: &mut Core, key: usize) -> bool {
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return false;
        };
        let H2Upstream {
            io, codec, streams, ..
        } = h;
        let (used, event) = match codec.next_event(io.input_data(), core.now) {
            Ok(got) => got,
            Err(goaway) => {
                debug!(
                    "HTTP/2 backend {}: connection error {:?}",
                    h.addr, goaway.code
                );
                return false;
            }
        };
        let Some(event) = event else {
            if let Some(input) = io.input.as_mut() {
                input.consume(used);
            }
            return true;
        };
        let broken = on_event(event, streams);
        if let Some(input) = io.input.as_mut() {
            input.consume(used);
        }
        if let Some((at, why)) = broken {
            let s = streams.swap_remove(at);
            debug!("HTTP/2 backend {}: stream: {}", h.addr, why.0);
            if let Some(id) = s.id {
                // A no-op for a stream the server reset.
                codec.send_reset(id, ErrorCode::PROTOCOL_ERROR);
            }
            s.break_off();
            wake_upstream(conns, core, &s);
        }
    }
}

/// Takes in one event; a stream that broke is returned with why.
pub(super) fn on_event(event: ClientEvent, streams: &mut [Stream]) -> Option<(usize, Broken)> {
    let find = |streams: &[Stream], id: u32| streams.iter().position(|s| s.id == Some(id));
    let (at, result) = match event {
        ClientEvent::Interim {
            stream, headers, ..
        }
        | ClientEvent::Response {
            stream,
            headers,
            end_stream: false,
            ..
        } => {
            let at = find(streams, stream)?;
            (at, streams.get_mut(at)?.response(headers, false))
        }
        ClientEvent::Response {
            stream, headers, ..
        } => {
            let at = find(streams, stream)?;
            (at, streams.get_mut(at)?.response(headers, true))
        }
        ClientEvent::Data {
            stream,
            data,
            end_stream,
        } => {
            let at = find(streams, stream)?;
            streams.get_mut(at)?.data(data, end_stream);
            (at, Ok(()))
        }
        ClientEvent::Trailers { stream, headers } => {
            let at = find(streams, stream)?;
            (at, streams.get_mut(at)?.trailers(headers))
        }
        ClientEvent::Reset { stream, code } => {
            let at = find(streams, stream)?;
            return streams.get_mut(at)?.reset(code).map(|why| (at, why));
        }
        ClientEvent::WindowOpened { .. } | ClientEvent::GoAway { .. } => return None,
        ClientEvent::SettingsChanged => return None,
    };
    result.err().map(|why| (at, why))
}
