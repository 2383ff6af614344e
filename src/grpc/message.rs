//! The messages of `grpc.health.v1.Health/Check` (health.proto), encoded and decoded by
//! hand, and gRPC's length-prefixed framing around them. Protobuf here is two fields:
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }`. What a backend sends is bounded
//! and checked, never trusted.

use std::fmt;

/// gRPC's message prefix: a compressed flag and a 4-byte big-endian length.
pub const PREFIX: usize = 5;

/// The largest HealthCheckResponse read: the real one is 2 bytes; this leaves room for
/// fields a newer health.proto may add, and no more.
pub const MAX_RESPONSE: usize = 256;

/// The longest service name a check asks about (gRPC names are dotted identifiers).
pub const MAX_SERVICE: usize = 200;

/// `HealthCheckResponse.ServingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingStatus {
    Unknown,
    Serving,
    NotServing,
    ServiceUnknown,
    /// A value this health.proto does not define.
    Other(u64),
}

impl ServingStatus {
    fn of(value: u64) -> Self {
        match value {
            0 => ServingStatus::Unknown,
            1 => ServingStatus::Serving,
            2 => ServingStatus::NotServing,
            3 => ServingStatus::ServiceUnknown,
            n => ServingStatus::Other(n),
        }
    }
}

impl fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ServingStatus::Unknown => f.write_str("UNKNOWN"),
            ServingStatus::Serving => f.write_str("SERVING"),
            ServingStatus::NotServing => f.write_str("NOT_SERVING"),
            ServingStatus::ServiceUnknown => f.write_str("SERVICE_UNKNOWN"),
            ServingStatus::Other(n) => write!(f, "status {n}"),
        }
    }
}

/// Why a response message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// Fewer bytes than the prefix or its length say.
    Short,
    /// More bytes than one message: a unary answer has exactly one.
    Trailing,
    /// The compressed flag: the check offers no compression, so none may be used.
    Compressed,
    /// A length above `MAX_RESPONSE`.
    TooLarge,
    /// Not a protobuf HealthCheckResponse.
    Malformed(&'static str),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MessageError::Short => f.write_str("response message cut short"),
            MessageError::Trailing => f.write_str("more than one response message"),
            MessageError::Compressed => f.write_str("compressed response message"),
            MessageError::TooLarge => {
                write!(f, "response message larger than {MAX_RESPONSE} bytes")
            }
            MessageError::Malformed(why) => write!(f, "malformed HealthCheckResponse: {why}"),
        }
    }
}

/// Appends a framed HealthCheckRequest asking about `service` ("": the server as a
/// whole). Proto3 leaves an empty string out.
pub fn encode_request(service: &str, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(service.len() + 11);
    if !service.is_empty() {
        body.push(1 << 3 | 2);
        put_varint(&mut body, service.len() as u64);
        body.extend_from_slice(service.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&body);
}

/// The message length a prefix announces, once the prefix is whole: lets a reader refuse
/// an oversized message before holding it.
pub fn announced_len(framed: &[u8]) -> Result<Option<usize>, MessageError> {
    let Some(prefix) = framed.get(..PREFIX) else {
        return Ok(None);
    };
    match prefix[0] {
        0 => {}
        1 => return Err(MessageError::Compressed),
        _ => return Err(MessageError::Malformed("bad compressed flag")),
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    match usize::try_from(len) {
        Ok(len) if len <= MAX_RESPONSE => Ok(Some(len)),
        _ => Err(MessageError::TooLarge),
    }
}

/// The status in one framed HealthCheckResponse, which must be all of `framed`.
pub fn decode_response(framed: &[u8]) -> Result<ServingStatus, MessageError> {
    let len = announced_len(framed)?.ok_or(MessageError::Short)?;
    let body = framed.get(PREFIX..).unwrap_or_default();
    if body.len() < len {
        return Err(MessageError::Short);
    }
    if body.len() > len {
        return Err(MessageError::Trailing);
    }
    decode_status(body)
}

/// Field 1 of a HealthCheckResponse (the last one wins, as protobuf says); other fields
/// are skipped.
fn decode_status(mut msg: &[u8]) -> Result<ServingStatus, MessageError> {
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return Err(MessageError::Malformed("field number 0"));
        }
        match (field, wire) {
            (1, 0) => status = varint(&mut msg)?,
            (1, _) => return Err(MessageError::Malformed("status is not a varint")),
            (_, 0) => {
                varint(&mut msg)?;
            }
            (_, 1) => skip(&mut msg, 8)?,
            (_, 2) => {
                let n = varint(&mut msg)?;
                skip(&mut msg, n)?;
            }
            (_, 5) => skip(&mut msg, 4)?,
            _ => return Err(MessageError::Malformed("unknown wire type")),
        }
    }
    Ok(ServingStatus::of(status))
}

/// A base-128 varint: at most 10 bytes, the last holding bit 63 alone.
fn varint(msg: &mut &[u8]) -> Result<u64, MessageError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = msg
            .split_first()
            .ok_or(MessageError::Malformed("varint cut short"))?;
        *msg = rest;
        if i == 9 && byte > 1 {
            return Err(MessageError::Malformed("varint over 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MessageError::Malformed("varint over 10 bytes"))
}

fn skip(msg: &mut &[u8], n: u64) -> Result<(), MessageError> {
    let rest = usize::try_from(n)
        .ok()
        .and_then(|n| msg.get(n..))
        .ok_or(MessageError::Malformed("field cut short"))?;
    *msg = rest;
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
