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
    let s = s.trim();
    if let Some((addr, rest)) = s.split_once(char::is_whitespace) {
        return Err(format!(
            "bad backend '{s}': options follow a comma, without spaces ({addr},{})",
            rest.trim()
        ));
    }
    let mut parts = s.split(',');
    let addr_part = parts.next().unwrap_or("");
    let mut weight = None;
    for opt in parts {
        match opt.split_once('=') {
            Some(("weight", _)) if weight.is_some() => {
                return Err(format!("weight given twice in backend '{s}'"));
            }
            Some(("weight", w)) => {
                weight = Some(
                    w.parse()
                        .ok()
                        .filter(|w| *w > 0 && *w <= 1000)
                        .ok_or_else(|| format!("bad weight in backend '{s}' (1 to 1000)"))?,
                );
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
    if !label.is_ascii() || label.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!(
            "bad backend {s:?}: an invisible or non-ASCII character in the address"
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
    if addr.port() == 0 {
        return Err(format!("backend '{label}' has port 0"));
    }
    Ok(BackendSpec {
        addr,
        label: label.to_string(),
        weight: weight.unwrap_or(1),
        tls,
    })
}

/// The backends in file `path`, one per line, `#` comments. A byte-order mark at the start
/// is skipped (editors on Windows write one); errors name the file and the line.
pub(super) fn parse_backends_file(path: &str) -> Result<Vec<(BackendSpec, String)>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read backends file {path}: {e}"))?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let mut specs = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let at = format!("{path}:{}", i + 1);
        let line = std::str::from_utf8(raw)
            .map_err(|_| format!("{at}: not UTF-8 text (save the file as UTF-8)"))?;
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let spec = parse_backend(line).map_err(|e| format!("{at}: {e}"))?;
        specs.push((spec, at));
    }
    Ok(specs)
}
