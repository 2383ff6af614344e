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
    let label = addr_part
        .strip_prefix("http://")
        .unwrap_or(addr_part)
        .trim_end_matches('/');
    if label.is_empty() || label.contains('/') || label.contains("://") {
        return Err(format!(
            "bad backend '{s}' (write host:port or http://host:port)"
        ));
    }
    if !label.is_ascii() || label.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!(
            "bad backend {s:?}: an invisible or non-ASCII character in the address"
        ));
    }
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
