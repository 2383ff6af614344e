//! The least a user-space TCP relay can do: for `scripts/compare.sh`, not for use.
//!
//! Each client connection gets a blocking connect to the next backend (round-robin); after
//! that every readable event is one `recv` into a stack buffer and one `send` of the same
//! bytes to the other socket. No buffering, timeouts, health checks, metrics or logging;
//! a short write or an error closes both sockets. On a small-request load its CPU time per
//! request is the floor for any proxy built on `recv` and `send`, so lb's distance from it is
//! what lb's own work costs, and its lead over another proxy is the most that proxy leaves.
//!
//! Usage: tcp_relay_floor LISTEN_ADDR BACKEND_ADDR...

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::exit;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);

/// One socket of a pair; `peer` is the slab key of the other.
struct End {
    sock: TcpStream,
    peer: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addrs: Result<Vec<SocketAddr>, _> = args.iter().map(|a| a.parse()).collect();
    match addrs {
        Ok(addrs) if addrs.len() >= 2 => {
            if let Err(e) = run(addrs[0], &addrs[1..]) {
                eprintln!("tcp_relay_floor: {e}");
                exit(1);
            }
        }
        _ => {
            eprintln!("usage: tcp_relay_floor LISTEN_ADDR BACKEND_ADDR...");
            exit(2);
        }
    }
}

fn run(listen: SocketAddr, backends: &[SocketAddr]) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut ends: Slab<End> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 16 * 1024];
    let mut next = 0;
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((client, _)) = listener.accept() {
                    let backend = backends[next % backends.len()];
                    next += 1;
                    if let Ok(upstream) = StdStream::connect(backend) {
                        pair(&poll, &mut ends, client, upstream)?;
                    }
                }
                continue;
            }
            let key = event.token().0;
            // Edge-triggered: read until a short read says the socket is drained.
            while let Some(end) = ends.get_mut(key) {
                let n = match end.sock.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => 0,
                };
                let peer = end.peer;
                let sent = n > 0 && matches!(ends[peer].sock.write(&buf[..n]), Ok(m) if m == n);
                if !sent {
                    close(&poll, &mut ends, key);
                    break;
                }
                if n < buf.len() {
                    break;
                }
            }
        }
    }
}

/// Registers a client and its backend connection as two ends pointing at each other.
fn pair(
    poll: &Poll,
    ends: &mut Slab<End>,
    client: TcpStream,
    upstream: StdStream,
) -> io::Result<()> {
    upstream.set_nonblocking(true)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let a = ends.insert(End {
        sock: client,
        peer: 0,
    });
    let b = ends.insert(End {
        sock: TcpStream::from_std(upstream),
        peer: a,
    });
    ends[a].peer = b;
    for key in [a, b] {
        poll.registry()
            .register(&mut ends[key].sock, Token(key), Interest::READABLE)?;
    }
    Ok(())
}

fn close(poll: &Poll, ends: &mut Slab<End>, key: usize) {
    if let Some(mut end) = ends.try_remove(key) {
        let _ = poll.registry().deregister(&mut end.sock);
        if let Some(mut peer) = ends.try_remove(end.peer) {
            let _ = poll.registry().deregister(&mut peer.sock);
        }
    }
}
