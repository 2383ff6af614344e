//! The `grpc-timeout` request header (gRPC over HTTP/2, "Timeout"): at most 8 ASCII
//! digits and one unit, H hours, M minutes, S seconds, m milliseconds, u microseconds,
//! n nanoseconds.

use std::time::Duration;

/// Digits the spec allows before the unit.
pub const MAX_DIGITS: usize = 8;

/// The deadline a `grpc-timeout` value gives, or `None` when it breaks the grammar.
pub fn parse(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Eight digits fit in a u64 with room for any unit's factor.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match unit {
        b'H' => Some(Duration::from_secs(n.checked_mul(3600)?)),
        b'M' => Some(Duration::from_secs(n.checked_mul(60)?)),
        b'S' => Some(Duration::from_secs(n)),
        b'm' => Some(Duration::from_millis(n)),
        b'u' => Some(Duration::from_micros(n)),
        b'n' => Some(Duration::from_nanos(n)),
        _ => None,
    }
}
