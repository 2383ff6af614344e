//! One direction of a pipe: bytes read from one socket wait in that socket's input
//! buffer until the other socket takes them.

use crate::buffer::BufferPool;
use crate::conn::{Filled, Socket};

/// One direction of a pipe: client to backend (up) or back (down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The source may send more.
    Streaming,
    /// The source closed its side; what it sent before still waits to be written.
    Draining,
    /// All written and the destination shut down for writing: it has seen the EOF.
    Finished,
}

/// Which end of one direction failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Broken {
    Source,
    Destination,
}

/// Moves bytes from `src` to `dst` through `src`'s input buffer until neither reading nor
/// writing can go on, or `budget` bytes were written; passes the EOF on once everything
/// before it is written. Without `send`, only reads. Says how many bytes were written.
pub fn relay(
    src: &mut Socket,
    dst: &mut Socket,
    flow: &mut Flow,
    pool: &mut BufferPool,
    budget: u64,
    send: bool,
) -> Result<u64, Broken> {
    let mut written = 0;
    while written < budget {
        let mut progress = false;
        if *flow == Flow::Streaming {
            match src.fill(pool) {
                Filled::Got => progress = true,
                Filled::Failed => return Err(Broken::Source),
                Filled::Eof | Filled::Nothing => {}
            }
            // Also covers an EOF met while the backend was still connecting.
            if src.read_closed {
                *flow = Flow::Draining;
            }
        }
        if send {
            match src.input.as_mut() {
                Some(buf) => {
                    let pending = buf.len();
                    progress |= dst.send_from(buf).map_err(|_| Broken::Destination)?;
                    written += (pending - buf.len()) as u64;
                }
                // Ciphertext a TLS destination could not send before goes now.
                None => {
                    dst.flush(pool).map_err(|_| Broken::Destination)?;
                }
            }
        }
        pool.release_if_empty(&mut src.input);
        if *flow == Flow::Draining && src.input_len() == 0 && dst.output_len() == 0 {
            // A peer that is already gone shows up at the next read or write, not here.
            dst.shutdown_write();
            *flow = Flow::Finished;
        }
        if !progress {
            return Ok(written);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::net::TcpListener;
    use std::time::Duration;

    use mio::net::TcpStream;

    use super::*;
    use crate::event_loop::BUFFER_SIZE;

    /// A connected pair: lb's non-blocking end, and a blocking std end for the peer.
    fn pair() -> (Socket, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Socket::new(TcpStream::from_std(ours)), peer)
    }

    /// Relays as an event would after both sockets reported readiness, until `done` holds.
    fn relay_until(
        src: &mut Socket,
        dst: &mut Socket,
        flow: &mut Flow,
        pool: &mut BufferPool,
        dst_ready: bool,
        done: impl Fn(&Socket, Flow) -> bool,
    ) -> u64 {
        let mut written = 0;
        for _ in 0..500 {
            src.readable = true;
            dst.writable = dst_ready;
            written += relay(src, dst, flow, pool, u64::MAX, true).unwrap();
            if done(src, *flow) {
                return written;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("relay did not get there; flow {flow:?}, {written} bytes written");
    }

    #[test]
    fn a_blocked_destination_holds_reading_at_one_buffer_then_all_flows_with_the_eof() {
        let mut pool = BufferPool::new(BUFFER_SIZE, 4);
        let (mut src, mut client) = pair();
        let (mut dst, mut server) = pair();
        let total = 4 * BUFFER_SIZE;
        let writer = std::thread::spawn(move || {
            client.write_all(&vec![7u8; total]).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        let mut flow = Flow::Streaming;

        let written = relay_until(&mut src, &mut dst, &mut flow, &mut pool, false, |s, _| {
            s.input_len() == BUFFER_SIZE
        });
        assert_eq!(written, 0);
        // Full: not read further, but still marked readable so that reading resumes.
        assert_eq!(
            relay(&mut src, &mut dst, &mut flow, &mut pool, u64::MAX, true),
            Ok(0)
        );
        assert_eq!(src.input_len(), BUFFER_SIZE);
        assert!(src.readable);
        assert_eq!(flow, Flow::Streaming);

        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            got
        });
        let written = relay_until(&mut src, &mut dst, &mut flow, &mut pool, true, |_, f| {
            f == Flow::Finished
        });
        assert_eq!(written, total as u64);
        assert!(src.input.is_none(), "an idle direction holds no buffer");
        assert_eq!(reader.join().unwrap(), vec![7u8; total]);
        drop(writer.join().unwrap());
    }

    #[test]
    fn one_turn_stops_at_its_budget_and_the_rest_follows() {
        let mut pool = BufferPool::new(BUFFER_SIZE, 4);
        let (mut src, mut client) = pair();
        let (mut dst, mut server) = pair();
        let total = 16 * BUFFER_SIZE;
        let budget = 2 * BUFFER_SIZE as u64;
        client.write_all(&vec![3u8; total]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            got.len()
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut flow = Flow::Streaming;
        src.readable = true;
        dst.writable = true;
        let first = relay(&mut src, &mut dst, &mut flow, &mut pool, budget, true).unwrap();
        assert!(
            first >= budget && first < budget + BUFFER_SIZE as u64,
            "{first}"
        );
        assert_eq!(
            flow,
            Flow::Streaming,
            "stopped by the budget, not by the end"
        );
        let rest = relay_until(&mut src, &mut dst, &mut flow, &mut pool, true, |_, f| {
            f == Flow::Finished
        });
        assert_eq!(first + rest, total as u64);
        assert_eq!(reader.join().unwrap(), total);
    }
}
