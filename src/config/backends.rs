//! Backends as flags and files name them: `host:port` or `http://host:port`, `,weight=N`.

use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// As the operator wrote it, without the scheme.
    pub label: String,
    pub weight: u32,
}

/// `host:port`, `http://host:port[/]`, optionally followed by `,weight=N`. Host names are resolved now.
pub fn parse_backend(s: &str) -> Result<BackendSpec, String> {
    let mut parts = s.trim().split(',');
    let addr_part = parts.next().unwrap_or("").trim();
    let mut weight = 1;
    for opt in parts {
        match opt.trim().split_once('=') {
            Some(("weight", w)) => {
                weight = w
                    .trim()
                    .parse()
                    .ok()
                    .filter(|w| *w > 0 && *w <= 1000)
                    .ok_or_else(|| format!("bad weight in backend '{s}' (1 to 1000)"))?;
            }
            _ => {
                return Err(format!(
                    "bad option '{opt}' in backend '{s}' (only weight=N)"
                ));
            }
        }
    }
    let label = addr_part
        .strip_prefix("http://")
        .unwrap_or(addr_part)
        .trim_end_matches('/');
    if label.is_empty() || label.contains('/') || label.contains("://") {
        return Err(format!(
            "bad backend '{s}' (write host:port or http://host:port)"
        ));
    }
    let addr = label
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve backend '{label}': {e}"))?
        .next()
        .ok_or_else(|| format!("backend '{label}' resolves to no address"))?;
    Ok(BackendSpec {
        addr,
        label: label.to_string(),
        weight,
    })
}

pub(super) fn parse_backends_file(path: &str) -> Result<Vec<BackendSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read backends file {path}: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| parse_backend(line).map_err(|e| format!("{path}:{}: {e}", i + 1)))
        .collect()
}
