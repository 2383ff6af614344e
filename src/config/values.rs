//! Single flag values: durations, sizes, addresses, numbers, the --retry-on list.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Which failed POST copies are sent again (`--retry-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    /// Could not connect, or the connection was lost before an answer.
    pub connect_failure: bool,
    /// No answer within --server-timeout.
    pub timeout: bool,
    /// A 5xx answer, or a broken one.
    pub server_error: bool,
    pub client_error: bool,
    /// Any other status that is not --success-status.
    pub other: bool,
}

impl RetryOn {
    pub const ALL: RetryOn = RetryOn {
        connect_failure: true,
        timeout: true,
        server_error: true,
        client_error: true,
        other: true,
    };

    pub(super) fn parse(list: &str) -> Result<RetryOn, String> {
        let mut r = RetryOn {
            connect_failure: false,
            timeout: false,
            server_error: false,
            client_error: false,
            other: false,
        };
        for item in list.split(',').map(str::trim) {
            match item {
                "connect-failure" => r.connect_failure = true,
                "timeout" => r.timeout = true,
                "5xx" => r.server_error = true,
                "4xx" => r.client_error = true,
                "other" => r.other = true,
                "all" => r = RetryOn::ALL,
                _ => {
                    return Err(format!(
                        "unknown '{item}' (a list of 5xx, 4xx, connect-failure, timeout, other, all)"
                    ));
                }
            }
        }
        Ok(r)
    }
}
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration '{s}' (write 250ms, 10s or 1m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("bad duration '{s}' (write 250ms, 10s or 1m)")),
    }
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.as_bytes().last() {
        Some(b'k') => (&lower[..lower.len() - 1], 1024),
        Some(b'm') => (&lower[..lower.len() - 1], 1024 * 1024),
        Some(b'g') => (&lower[..lower.len() - 1], 1024 * 1024 * 1024),
        _ => (lower.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size '{s}' (write 1048576, 64k or 1m)"))
}

pub(super) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("bad address '{s}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

pub(super) fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))
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
