//! The PROXY protocol (HAProxy's, versions 1 and 2): the header an L4 balancer puts
//! before a connection's first byte to say whom the connection is really from, and the
//! one lb puts before its own connections to backends. Plain values in and out.

use std::net::{IpAddr, SocketAddr};

/// Version 2 headers start with these 12 bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, CRLF included.
const V1_MAX: usize = 107;
/// The most of a header lb reads: a v2 header with room for a few TLVs (which it skips).
pub const MAX_HEADER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// As `--send-proxy` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// The addresses a header carries: `None` for `UNKNOWN` (v1) or `LOCAL` (v2), a
/// connection the sender made for itself, such as a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole header of `len` bytes.
    Header {
        len: usize,
        addresses: Option<Addresses>,
    },
}

/// Parses the header at the start of `buf`. Strict: anything that is not a well-formed
/// header is an error, since the connection cannot be trusted to say whom it is from.
pub fn parse(buf: &[u8]) -> Result<Parsed, &'static str> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(Parsed::Partial)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 {
            Ok(Parsed::Partial)
        } else {
            parse_v1(buf)
        };
    }
    Err("no PROXY protocol header")
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, &'static str> {
    let Some(end) = buf.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err("PROXY v1 line too long")
        } else {
            Ok(Parsed::Partial)
        };
    };
    let line = buf[..end]
        .strip_suffix(b"\r")
        .ok_or("PROXY v1 line without CRLF")?;
    let line = std::str::from_utf8(line).map_err(|_| "PROXY v1 line is not ASCII")?;
    let mut fields = line.split(' ');
    let (Some("PROXY"), Some(family)) = (fields.next(), fields.next()) else {
        return Err("malformed PROXY v1 line");
    };
    let len = end + 1;
    if family == "UNKNOWN" {
        return Ok(Parsed::Header {
            len,
            addresses: None,
        });
    }
    let parts: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = parts[..] else {
        return Err("malformed PROXY v1 line");
    };
    let ip = |s: &str| -> Result<IpAddr, &'static str> {
        let ip: IpAddr = s.parse().map_err(|_| "bad address in PROXY v1 line")?;
        match (family, ip) {
            ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
            _ => Err("address does not match the PROXY v1 family"),
        }
    };
    let port = |s: &str| -> Result<u16, &'static str> {
        let ok = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        let leading_zero = s.len() > 1 && s.starts_with('0');
        if !ok || leading_zero {
            return Err("bad port in PROXY v1 line");
        }
        s.parse().map_err(|_| "bad port in PROXY v1 line")
    };
    Ok(Parsed::Header {
        len,
        addresses: Some(Addresses {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            destination: SocketAddr::new(ip(dst)?, port(dport)?),
        }),
    })
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, &'static str> {
    if buf.len() < 16 {
        return Ok(Parsed::Partial);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err("PROXY v2 header with a bad version");
    }
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body;
    if len > MAX_HEADER {
        return Err("PROXY v2 header too long");
    }
    if buf.len() < len {
        return Ok(Parsed::Partial);
    }
    let body = &buf[16..len];
    match command {
        // LOCAL: the sender's own connection; whatever the address block says is ignored.
        0 => Ok(Parsed::Header {
            len,
            addresses: None,
        }),
        1 => {
            let addresses = match buf[13] {
                // TCP over IPv4, over IPv6.
                0x11 if body.len() >= 12 => {
                    let ip = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
                    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
                    Some(Addresses {
                        source: SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                        destination: SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
                    })
                }
                0x21 if body.len() >= 36 => {
                    let ip = |b: &[u8]| {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&b[..16]);
                        IpAddr::from(a)
                    };
                    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
                    Some(Addresses {
                        source: SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                        destination: SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
                    })
                }
                // UNSPEC: the sender does not know; the connection's own address stands.
                0x00 => None,
                0x11 | 0x21 => return Err("PROXY v2 address block too short"),
                _ => return Err("PROXY v2 header for a protocol other than TCP"),
            };
            Ok(Parsed::Header { len, addresses })
        }
        _ => Err("PROXY v2 header with an unknown command"),
    }
}

/// Appends the header for a connection from `source` to `destination`; `None` says the
/// connection is lb's own (v1 `UNKNOWN`, v2 `LOCAL`).
pub fn write(version: Version, addresses: Option<Addresses>, out: &mut Vec<u8>) {
    // Both of one family: an IPv4 client of an IPv6 listener is written as IPv6.
    let pair = addresses.map(|a| {
        let (s, d) = (a.source, a.destination);
        match (s.ip(), d.ip()) {
            (IpAddr::V4(v4), IpAddr::V6(_)) => {
                (SocketAddr::new(v4.to_ipv6_mapped().into(), s.port()), d)
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => {
                (s, SocketAddr::new(v4.to_ipv6_mapped().into(), d.port()))
            }
            _ => (s, d),
        }
    });
    match version {
        Version::V1 => match pair {
            Some((s, d)) => {
                let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                let line = format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                );
                out.extend_from_slice(line.as_bytes());
            }
            None => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
        },
        Version::V2 => {
            out.extend_from_slice(V2_SIGNATURE);
            match pair {
                None => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
                Some((s, d)) => {
                    let (family, len): (u8, u16) =
                        if s.is_ipv4() { (0x11, 12) } else { (0x21, 36) };
                    out.extend_from_slice(&[0x21, family]);
                    out.extend_from_slice(&len.to_be_bytes());
                    for ip in [s.ip(), d.ip()] {
                        match ip {
                            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
                        }
                    }
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
            }
        }
    }
}

/// An address range of `--accept-proxy-from`: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("'{s}' is not an address or a range such as 10.0.0.0/8");
        let (ip, prefix) = match s.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
