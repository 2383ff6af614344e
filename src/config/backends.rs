//! Backends as flags and files name them: `host:port`, `http://host:port` or
//! `https://host:port` (whose label keeps the scheme, so that a reload keeps it too),
//! `,weight=N`.
//! A line is parsed apart from resolving its name, so that a reload can resolve the same
//! lines again; the same checks hold at start and at every reload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use rustls_pki_types::ServerName;

use crate::names;

/// A backend as written, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendLine {
    /// As the operator wrote it, without the scheme.
    pub label: String,
    pub weight: u32,
    /// Where it was written (`-b ADDR`, `FILE:LINE`), for messages.
    pub at: String,
}

/// Where a backend named in a config file is until its name resolves: it takes nothing,
/// and the periodic lookup gives it its address when there is one.
pub const UNRESOLVED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// A backend with the address its name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The pool it serves in; the same address may serve in several.
    pub pool: String,
    pub addr: SocketAddr,
    pub label: String,
    pub weight: u32,
}

/// The weights a backend may have.
pub fn parse_weight(w: &str) -> Option<u32> {
    w.parse().ok().filter(|w| (1..=1000).contains(w))
}

/// `host:port`, `http://host:port[/]` or `https://host:port[/]`, optionally followed by
/// `,weight=N`; `at` says where it was written.
pub fn parse_line(s: &str, at: String) -> Result<BackendLine, String> {
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
                    parse_weight(w)
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
    let https = addr_part.starts_with("https://");
    let address = addr_part
        .strip_prefix("https://")
        .or_else(|| addr_part.strip_prefix("http://"))
        .unwrap_or(addr_part)
        .trim_end_matches('/');
    if address.is_empty() || address.contains('/') || address.contains("://") {
        return Err(format!(
            "bad backend '{s}' (write host:port, http://host:port or https://host:port)"
        ));
    }
    if !super::values::has_port(address) {
        return Err(format!(
            "bad backend '{s}': the port is missing (write {address}:80, or the port it serves on)"
        ));
    }
    let label = if https {
        format!("https://{address}")
    } else {
        address.to_string()
    };
    if https && tls_name(&label).is_none() {
        return Err(format!("bad host name in backend '{s}'"));
    }
    if !label.is_ascii() || label.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!(
            "bad backend {s:?}: an invisible or non-ASCII character in the address"
        ));
    }
    Ok(BackendLine {
        label,
        weight: weight.unwrap_or(1),
        at,
    })
}

/// For a backend labelled `https://host:port`, the name its certificate must show, also
/// sent as SNI; `None` for a plain one.
pub fn tls_name(label: &str) -> Option<ServerName<'static>> {
    let address = label.strip_prefix("https://")?;
    let host = match address.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => address,
    };
    ServerName::try_from(host.to_string()).ok()
}

/// A backend written on the command line, with its host name resolved now.
pub fn parse_backend(s: &str, hosts: Option<&Path>) -> Result<BackendSpec, String> {
    resolve_line(&parse_line(s, format!("-b {s}"))?, FLAGS_POOL, hosts)
}

/// The pool the flags' backends serve in.
pub const FLAGS_POOL: &str = "default";

pub fn resolve_line(
    line: &BackendLine,
    pool: &str,
    hosts: Option<&Path>,
) -> Result<BackendSpec, String> {
    let addr = names::resolve(&line.label, hosts)?;
    Ok(BackendSpec {
        pool: pool.to_string(),
        addr,
        label: line.label.clone(),
        weight: line.weight,
    })
}

/// Every backend of every pool of `site`, its name resolved now: a pool's lines, then its
/// backends file's. Each pool lists each backend once, none at one of lb's own addresses.
/// A name that does not resolve yet (containers start in any order) is a warning: the
/// backend waits at `UNRESOLVED`, down, and lb serves the rest.
pub fn resolve_site(site: &super::model::Site) -> Result<(Vec<BackendSpec>, Vec<String>), String> {
    let hosts = site.process.hosts_file.as_deref();
    let mut specs = Vec::new();
    let mut at = Vec::new();
    let mut warnings = Vec::new();
    for pool in &site.pools {
        let mut lines = pool.backends.clone();
        if let Some(path) = &pool.backends_file {
            lines.extend(read_backends_file(path)?);
        }
        for l in lines {
            let spec = match resolve_line(&l, &pool.name, hosts) {
                Ok(spec) => spec,
                Err(e) if names::is_name(&l.label) => {
                    warnings.push(format!(
                        "{}: {e}; it stays down until its name resolves (looked up every \
                         resolve_interval)",
                        l.at
                    ));
                    BackendSpec {
                        pool: pool.name.clone(),
                        addr: UNRESOLVED,
                        label: l.label.clone(),
                        weight: l.weight,
                    }
                }
                Err(e) => return Err(format!("{}: {e}", l.at)),
            };
            specs.push(spec);
            at.push(l.at);
        }
    }
    let own = OwnAddrs::of_site(
        site,
        &site
            .listeners
            .iter()
            .map(|l| Some(l.address))
            .collect::<Vec<_>>(),
        site.admin.listen,
    );
    let named: Vec<Named> = specs
        .iter()
        .zip(&at)
        .map(|(s, at)| (s.pool.as_str(), s.label.as_str(), s.addr, at.as_str()))
        .collect();
    check_backends(&named, &own)?;
    Ok((specs, warnings))
}

/// The backends in file `path`, one per line, `#` comments. A byte-order mark at the start
/// is skipped (editors on Windows write one); errors name the file and the line.
pub fn read_backends_file(path: &str) -> Result<Vec<BackendLine>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read backends file {path}: {e}"))?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let at = format!("{path}:{}", i + 1);
        let line = std::str::from_utf8(raw)
            .map_err(|_| format!("{at}: not UTF-8 text (save the file as UTF-8)"))?;
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        lines.push(parse_line(line, at.clone()).map_err(|e| format!("{at}: {e}"))?);
    }
    Ok(lines)
}

/// lb's own addresses, each with what made it (a flag, a listener): a backend at one of
/// them would send lb's requests back to lb, which would send them on again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddrs(Vec<(String, SocketAddr)>);

impl OwnAddrs {
    /// The traffic listeners (HTTP or TCP, and TLS) and the admin listener, each with what
    /// made it; one on port 0 (not bound yet) is left out.
    pub fn new(all: impl IntoIterator<Item = (String, Option<SocketAddr>)>) -> Self {
        OwnAddrs(
            all.into_iter()
                .filter_map(|(what, a)| a.filter(|a| a.port() != 0).map(|a| (what, a)))
                .collect(),
        )
    }

    /// The flags' listeners and admin listener.
    pub fn of_flags(
        listen: Option<SocketAddr>,
        tls_listen: Option<SocketAddr>,
        admin: Option<SocketAddr>,
    ) -> Self {
        OwnAddrs::new([
            ("--listen".to_string(), listen),
            ("--tls-listen".to_string(), tls_listen),
            ("--admin".to_string(), admin),
        ])
    }

    /// A site's listeners as bound (`bound`, in the site's order) and its admin listener:
    /// the flags' ones by their flags, a file's by their names.
    pub fn of_site(
        site: &super::model::Site,
        bound: &[Option<SocketAddr>],
        admin: Option<SocketAddr>,
    ) -> Self {
        use super::from_flags::{LISTENER, TLS_LISTENER};
        use super::model::Source;
        let flags = site.source == Source::Flags;
        let what = |name: &str| match name {
            LISTENER if flags => "--listen".to_string(),
            TLS_LISTENER if flags => "--tls-listen".to_string(),
            _ => format!("listener {name}"),
        };
        let listeners = site
            .listeners
            .iter()
            .zip(bound)
            .map(|(l, a)| (what(&l.name), *a));
        let admin_what = (if flags {
            "--admin"
        } else {
            "the admin listener"
        })
        .to_string();
        OwnAddrs::new(listeners.chain([(admin_what, admin)]))
    }

    /// What made lb's own address that a connection to `addr` would reach (a connection
    /// to 0.0.0.0 or :: goes to loopback).
    fn reached_by(&self, addr: SocketAddr) -> Option<&str> {
        let ip = match addr.ip().to_canonical() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        self.0
            .iter()
            .find(|(_, own)| {
                let same_host = ip == own.ip().to_canonical()
                    || (own.ip().is_unspecified() && ip.is_loopback());
                same_host && addr.port() == own.port()
            })
            .map(|(what, _)| what.as_str())
    }
}

/// What every backend must be, wherever it was written (`-b`, a file, a reload, the admin
/// API, a name looked up again): somewhere to connect to, and not lb itself.
pub fn check_backend(
    label: &str,
    addr: SocketAddr,
    at: &str,
    own: &OwnAddrs,
) -> Result<(), String> {
    if addr == UNRESOLVED && names::is_name(label) {
        return Ok(());
    }
    if addr.port() == 0 {
        return Err(format!("backend {label} ({at}) has port 0"));
    }
    if let Some(flag) = own.reached_by(addr) {
        return Err(format!(
            "backend {label} ({at}) is lb's own {flag} address: requests would loop"
        ));
    }
    Ok(())
}

/// Each backend once in its pool (by label or address), each one `check_backend` accepts:
/// `list` holds each backend's pool, label, address and where it was written.
pub fn check_backends(list: &[Named], own: &OwnAddrs) -> Result<(), String> {
    if list.is_empty() {
        return Err("no backends: give -b ADDR (repeatable) or -f FILE".into());
    }
    for (i, &(pool, label, addr, at)) in list.iter().enumerate() {
        let twice = list[..i]
            .iter()
            .find(|(p, l, a, _)| *p == pool && ((*a == addr && addr != UNRESOLVED) || *l == label));
        if let Some((_, _, _, first)) = twice {
            return Err(format!(
                "backend {addr} is given twice ({first} and {at}): each backend once, \
                 with weight=N to send it more"
            ));
        }
        check_backend(label, addr, at, own)?;
    }
    Ok(())
}

/// A backend to check: its pool, label, address and where it was written.
pub type Named<'a> = (&'a str, &'a str, SocketAddr, &'a str);

/// The backends from `-b` and `-f`, resolved, and as written for reloads.
pub(super) struct BackendList {
    pub specs: Vec<BackendSpec>,
    pub flags: Vec<BackendLine>,
    pub file: Option<String>,
}

/// The backends from `-b` and `-f`, each named once, none of them at one of lb's `own`
/// addresses.
pub(super) fn backend_list(
    m: &getopts::Matches,
    own: &OwnAddrs,
    hosts: Option<&Path>,
) -> Result<BackendList, String> {
    let flags = m
        .opt_strs("backend")
        .iter()
        .map(|b| parse_line(b, format!("-b {b}")).map_err(|e| format!("--backend: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let file = m.opt_strs("backends-file").pop();
    let mut lines = flags.clone();
    if let Some(path) = &file {
        lines.extend(read_backends_file(path)?);
        if lines.is_empty() {
            return Err(format!("{path} lists no backends, and no -b gives one"));
        }
    }
    let specs = lines
        .iter()
        .map(|l| resolve_line(l, FLAGS_POOL, hosts).map_err(|e| format!("{}: {e}", l.at)))
        .collect::<Result<Vec<_>, _>>()?;
    let named: Vec<Named> = specs
        .iter()
        .zip(&lines)
        .map(|(s, l)| (FLAGS_POOL, s.label.as_str(), s.addr, l.at.as_str()))
        .collect();
    check_backends(&named, own)?;
    Ok(BackendList { specs, flags, file })
}
