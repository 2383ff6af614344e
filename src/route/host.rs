//! Host names as routes see them: lower case, no port, no trailing dot. Patterns are
//! parsed once from what the operator wrote; a request's `Host` is reduced the same way,
//! in place or in a small stack buffer, so that looking it up allocates nothing.

use crate::config::model::HostPattern;

/// Longer than any DNS name (253): a longer `Host` matches only routes for any host.
const MAX_HOST: usize = 255;

/// Room for a request's host in lower case.
pub(super) type HostBuf = [u8; MAX_HOST];

/// A request's host as routes see it: lower case, no port, no trailing dot. Borrowed from
/// the request when it is already lower case, else lowered into `buf`. `None` when there
/// is nothing to match: no Host, an empty one, or one too long.
pub(super) fn host_key<'b>(sent: &'b [u8], buf: &'b mut HostBuf) -> Option<&'b [u8]> {
    let name = trim_dot(strip_port(sent));
    if name.is_empty() || name.len() > MAX_HOST {
        return None;
    }
    if !name.iter().any(u8::is_ascii_uppercase) {
        return Some(name);
    }
    let out = &mut buf[..name.len()];
    for (d, s) in out.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(out)
}

/// `name:port` → `name`, `[v6]:port` → `[v6]`. A name with several colons and no
/// brackets is not a host and is left whole, to match nothing.
fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().position(|&b| b == b':') {
        Some(c) if !host[c + 1..].contains(&b':') => &host[..c],
        _ => host,
    }
}

/// `example.com.` (a fully qualified name) is `example.com`.
fn trim_dot(host: &[u8]) -> &[u8] {
    host.strip_suffix(b".").unwrap_or(host)
}

/// The wildcard keys a host falls under, longest first: `a.b.example.com` gives
/// `.b.example.com`, `.example.com`, `.com`.
pub(super) fn suffixes(host: &[u8]) -> impl Iterator<Item = &[u8]> {
    host.iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &b)| b == b'.')
        .map(move |(i, _)| &host[i..])
}

/// Parses a host pattern as written: an exact name (any case, a port is ignored) or
/// `*.suffix`. A `*` anywhere else is refused, as is a character no host name has.
pub fn parse_host_pattern(written: &str) -> Result<HostPattern, String> {
    let lower = written.to_ascii_lowercase();
    if lower == "*" {
        return Err("host \"*\" is every host: leave `host` out instead".to_string());
    }
    let (wild, rest) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let name = std::str::from_utf8(trim_dot(strip_port(rest.as_bytes())))
        .map_err(|_| format!("host {written:?} is not a host name"))?;
    if name.is_empty() {
        return Err(format!("host {written:?} has no name"));
    }
    if name.contains('*') {
        return Err(format!(
            "host {written:?}: `*` may only stand alone as the first label, as in \"*.example.com\""
        ));
    }
    if name.starts_with('.') {
        return Err(format!(
            "host {written:?} starts with a dot: write \"*{name}\" for the names under it"
        ));
    }
    let bracketed = name.starts_with('[') && name.ends_with(']');
    let ok = |c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' || (bracketed && c == ':')
    };
    let inner = if bracketed {
        &name[1..name.len() - 1]
    } else {
        name
    };
    if wild && bracketed || inner.is_empty() || !inner.chars().all(ok) {
        return Err(format!("host {written:?} is not a host name"));
    }
    Ok(if wild {
        HostPattern::Suffix(name.to_string())
    } else {
        HostPattern::Exact(name.to_string())
    })
}

/// A pattern from the model, checked and reduced the same way as one parsed from text
/// (a front end may have stored `*.example.com` as an exact name, or any case).
pub(super) fn canonical(pattern: &HostPattern) -> Result<HostPattern, String> {
    match pattern {
        HostPattern::Exact(name) => parse_host_pattern(name),
        HostPattern::Suffix(suffix) => {
            let bare = suffix.trim_start_matches("*.").trim_start_matches('.');
            parse_host_pattern(&format!("*.{bare}"))
        }
    }
}

/// As an operator wrote it, for messages.
pub(super) fn display(pattern: &HostPattern) -> String {
    match pattern {
        HostPattern::Exact(name) => name.clone(),
        HostPattern::Suffix(suffix) => format!("*.{suffix}"),
    }
}
