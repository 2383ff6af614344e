//! Backends as flags and files name them: `host:port`, `http://host:port` or
//! `https://host:port`, `,weight=N`.

use std::net::{SocketAddr, ToSocketAddrs};

use rustls_pki_types::ServerName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// As the operator wrote it, without the scheme.
    pub label: String,
    pub weight: u32,
    /// `https://`: the name its certificate is verified for and sent as SNI.
    pub tls: Option<ServerName<'static>>,
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
    let (label, https) = match addr_part.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => (
            addr_part.strip_prefix("http://").unwrap_or(addr_part),
            false,
        ),
    };
    let label = label.trim_end_matches('/');
    if label.is_empty() || label.contains('/') || label.contains("://") {
        return Err(format!(
            "bad backend '{s}' (write host:port, http://host:port or https://host:port)"
        ));
    }
    let tls = if https {
        let host = match label.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => label,
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("bad host name '{host}' in backend '{s}'"))?;
        Some(name)
    } else {
        None
    };
    let addr = label
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve backend '{label}': {e}"))?
        .next()
        .ok_or_else(|| format!("backend '{label}' resolves to no address"))?;
    Ok(BackendSpec {
        addr,
        label: label.to_string(),
        weight,
        tls,
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
