//! Single flag values: durations, sizes, addresses, numbers.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::flags::{NumberFlag, Unit, Zero, show};

/// A duration, checked for overflow: `250ms`, `10s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    duration_ms(s)?
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration '{}' is too large", s.trim()))
}

/// A size in bytes, checked for overflow: `1048576`, `64k`, `1m`, `1g`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    size_bytes(s)?.ok_or_else(|| format!("size '{}' is too large", s.trim()))
}

/// Milliseconds, or `None` past u64.
fn duration_ms(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    let bad = || format!("bad duration '{s}' (write 250ms, 10s, 1m or 1h)");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" | "" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    whole(num, bad).map(|n| n.and_then(|n| n.checked_mul(ms_per_unit)))
}

/// Bytes, or `None` past u64.
fn size_bytes(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    let bad = || format!("bad size '{s}' (write 1048576, 64k, 1m or 1g)");
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.as_bytes().last() {
        Some(b'k') => (&lower[..lower.len() - 1], 1024),
        Some(b'm') => (&lower[..lower.len() - 1], 1024 * 1024),
        Some(b'g') => (&lower[..lower.len() - 1], 1024 * 1024 * 1024),
        _ => (lower.as_str(), 1),
    };
    whole(num, bad).map(|n| n.and_then(|n| n.checked_mul(mult)))
}

/// A run of decimal digits as a number, or `None` past u64.
fn whole(num: &str, bad: impl Fn() -> String) -> Result<Option<u64>, String> {
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(num.parse().ok())
}

/// The value of numeric flag `f` as written in `s`, within the flag's limits.
pub(super) fn parse_number(f: &NumberFlag, s: &str) -> Result<u64, String> {
    let v = match f.unit {
        Unit::Duration => duration_ms(s)?,
        Unit::Size => size_bytes(s)?,
        Unit::Count => whole(s.trim(), || format!("'{s}' is not a whole number"))?,
    };
    let Some(v) = v.filter(|v| *v <= f.max) else {
        return Err(format!(
            "{} is more than the maximum, {}",
            s.trim(),
            show(f.unit, f.max)
        ));
    };
    if v == 0 && matches!(f.zero, Zero::Refused) {
        return Err(match f.unit {
            Unit::Count => "must be at least 1".to_string(),
            _ => format!("must be more than 0 (at most {})", show(f.unit, f.max)),
        });
    }
    Ok(v)
}

pub(super) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if !has_port(s) {
        return Err(format!(
            "'{s}' has no port: write host:port, such as 127.0.0.1:8080"
        ));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("bad address '{s}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

/// `host:port` or `[v6]:port` ends with a port, whatever the host.
pub(super) fn has_port(s: &str) -> bool {
    let port = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(_, p)| p),
        None => s
            .rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .map(|(_, p)| p),
    };
    port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `--admin-host` names, as a Host header is compared with them: lower case, without a
/// trailing dot. A port is refused, since none is compared.
pub(super) fn parse_admin_hosts(names: Vec<String>) -> Result<Vec<String>, String> {
    names
        .into_iter()
        .map(|n| {
            let name = n.trim().trim_end_matches('.').to_ascii_lowercase();
            let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            if name.contains(':') {
                Err(format!(
                    "--admin-host {n}: give the name without a port (any port is accepted)"
                ))
            } else if name.is_empty() || name.len() > 253 || !name.bytes().all(ok) {
                Err(format!("--admin-host {n}: not a host name"))
            } else {
                Ok(name)
            }
        })
        .collect()
}

/// A secret read from a file; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The admin token: the file's first line. A file anyone on the machine can read does not
/// keep a secret, so it is refused.
pub(super) fn read_token_file(path: &str) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "{path} is readable by every user; chmod o-r {path} (or 600) first"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("{path} holds no token on its first line"));
    }
    Ok(Secret(token.to_string()))
}
