//! A backend's `host:port` turned into an address: an IP literal as it is, a name from
//! `--hosts-file` when that file lists it, else from the system resolver. The hosts file is
//! read again at every lookup, so that an operator or a test can move a name without
//! touching the machine's /etc/hosts (HAProxy's resolvers can read such a file too).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

/// The host and port of `host:port` or `[v6]:port`.
fn split(label: &str) -> Option<(&str, u16)> {
    let (host, port) = label.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

/// True when `label` names a host rather than an address: only names are looked up again.
pub fn is_name(label: &str) -> bool {
    let label = label.strip_prefix("https://").unwrap_or(label);
    split(label).is_some_and(|(host, _)| host.parse::<IpAddr>().is_err())
}

/// The address `label` stands for now: the first of `resolve_all`.
pub fn resolve(label: &str, hosts: Option<&Path>) -> Result<SocketAddr, String> {
    resolve_all(label, hosts).map(|all| all[0])
}

/// Every address `label` stands for now, never none. This may block on DNS: the event loop
/// never calls it after start (see `resolver`).
pub fn resolve_all(label: &str, hosts: Option<&Path>) -> Result<Vec<SocketAddr>, String> {
    // An `https://` backend's label keeps its scheme; the address follows it.
    let label = label.strip_prefix("https://").unwrap_or(label);
    if let (Some(path), Some((host, port))) = (hosts, split(label))
        && host.parse::<IpAddr>().is_err()
    {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --hosts-file {}: {e}", path.display()))?;
        if let Some(ip) = lookup(&text, host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
    }
    let all: Vec<SocketAddr> = label
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve backend '{label}': {e}"))?
        .collect();
    if all.is_empty() {
        return Err(format!("backend '{label}' resolves to no address"));
    }
    Ok(all)
}

/// The first address that `text`, in hosts(5) format, gives `name`.
fn lookup(text: &str, name: &str) -> Option<IpAddr> {
    text.lines().find_map(|line| {
        let mut fields = line.split('#').next()?.split_whitespace();
        let ip: IpAddr = fields.next()?.parse().ok()?;
        fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals() {
        assert!(is_name("server1:8000"));
        assert!(is_name("localhost:80"));
        assert!(!is_name("10.0.0.1:80"));
        assert!(!is_name("[::1]:80"));
        assert_eq!(split("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split("nohost"), None);
    }

    #[test]
    fn hosts_file_lines() {
        let text = "# test\n127.0.0.2  web  web.local # comment\n10.0.0.9 db\n127.0.0.3 web\n";
        assert_eq!(lookup(text, "web"), "127.0.0.2".parse().ok());
        assert_eq!(lookup(text, "WEB.local"), "127.0.0.2".parse().ok());
        assert_eq!(lookup(text, "db"), "10.0.0.9".parse().ok());
        assert_eq!(lookup(text, "comment"), None);
        assert_eq!(lookup("not-an-ip web\n", "web"), None);
    }

    #[test]
    fn a_listed_name_comes_from_the_file_and_others_fall_through() {
        let path = std::env::temp_dir().join(format!("lb-hosts-{}", std::process::id()));
        std::fs::write(&path, "127.0.0.7 lb-test-name\n").unwrap();
        let got = resolve("lb-test-name:81", Some(&path));
        let literal = resolve("127.0.0.1:82", Some(&path));
        let missing = resolve("lb-test-name:81", Some(Path::new("/nonexistent/lb-hosts")));
        std::fs::remove_file(&path).ok();
        assert_eq!(got, Ok("127.0.0.7:81".parse().unwrap()));
        assert_eq!(literal, Ok("127.0.0.1:82".parse().unwrap()));
        assert!(missing.unwrap_err().contains("--hosts-file"));
    }
}
