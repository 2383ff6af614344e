//! Backends as flags and files name them: `host:port` or `http://host:port`, `,weight=N`.

use std::net::SocketAddr;
use std::path::Path;

use crate::names;

/// A backend as written, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendLine {
    /// As the operator wrote it, without the scheme.
    pub label: String,
    pub weight: u32,
}

/// A backend with the address its name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    pub label: String,
    pub weight: u32,
}

/// The weights a backend may have.
pub fn parse_weight(w: &str) -> Option<u32> {
    w.trim().parse().ok().filter(|w| (1..=1000).contains(w))
}

/// `host:port`, `http://host:port[/]`, optionally followed by `,weight=N`.
pub fn parse_line(s: &str) -> Result<BackendLine, String> {
    let mut parts = s.trim().split(',');
    let addr_part = parts.next().unwrap_or("").trim();
    let mut weight = 1;
    for opt in parts {
        match opt.trim().split_once('=') {
            Some(("weight", w)) => {
                weight = parse_weight(w)
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
    Ok(BackendLine {
        label: label.to_string(),
        weight,
    })
}

/// A backend line with its host name resolved now.
pub fn parse_backend(s: &str, hosts: Option<&Path>) -> Result<BackendSpec, String> {
    resolve_line(parse_line(s)?, hosts)
}

pub fn resolve_line(line: BackendLine, hosts: Option<&Path>) -> Result<BackendSpec, String> {
    Ok(BackendSpec {
        addr: names::resolve(&line.label, hosts)?,
        label: line.label,
        weight: line.weight,
    })
}

/// The lines of a backends file; an error names the file and the line.
pub fn read_backends_file(path: &str) -> Result<Vec<BackendLine>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read backends file {path}: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| parse_line(line).map_err(|e| format!("{path}:{}: {e}", i + 1)))
        .collect()
}

/// The first label listed twice, if any: a backend is known by its label.
pub fn repeated_label<'a>(labels: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    labels.into_iter().find(|l| !seen.insert(*l))
}
