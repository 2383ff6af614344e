//! What the kernel holds for TCP sockets on 127.0.0.1, from /proc/net/tcp: a limit test
//! subtracts it from the bytes a peer got lb to take, and what is left lb holds itself.

use std::net::{Ipv4Addr, SocketAddr};

/// Bytes queued in the kernel for the sockets whose (local, remote) addresses `which`
/// picks: written and not yet acknowledged (sent or not), plus received and not yet read.
/// Listening sockets are left out (their queue is of connections).
pub fn queued(which: impl Fn(SocketAddr, SocketAddr) -> bool) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(parse_line)
        .filter(|s| s.state != LISTEN && which(s.local, s.remote))
        .map(|s| s.tx_queue + s.rx_queue)
        .sum()
}

const LISTEN: u8 = 0x0A;

struct Line {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    tx_queue: u64,
    rx_queue: u64,
}

/// `sl local rem st tx_queue:rx_queue ...`, addresses as `HEXIP:HEXPORT`, numbers in hex.
fn parse_line(line: &str) -> Option<Line> {
    let mut fields = line.split_whitespace().skip(1);
    let local = parse_addr(fields.next()?)?;
    let remote = parse_addr(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let (tx, rx) = fields.next()?.split_once(':')?;
    Some(Line {
        local,
        remote,
        state,
        tx_queue: u64::from_str_radix(tx, 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
    })
}

/// The kernel prints the address as the u32 that its network-order bytes make in the
/// host's order: the host's order gives the bytes back.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((Ipv4Addr::from(ip.to_ne_bytes()), port)))
}
