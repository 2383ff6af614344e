//! Who may change lb at run time: a write action on the admin listener carries the token
//! of `--admin-token-file` (as `Authorization: Bearer TOKEN`, or as the password of HTTP
//! basic auth, which a browser asks for), or, without a token file, the admin listener is
//! on loopback. Either way it must name this listener as its Host, and come from no other
//! site's page (`same_site`), so that a web page cannot press the buttons of `/stats` for
//! the operator who visits it.

use std::net::{IpAddr, SocketAddr};

use log::warn;

use super::api::{Request, error};
use super::{JSON, response_with};
use crate::event_loop::Core;

/// Write actions: the token if there is one, else loopback only; never from another site.
pub(super) fn authorize(core: &Core, req: &Request, peer: SocketAddr) -> Result<(), Vec<u8>> {
    let what = format!("{} /backends{}", req.method, req.rest);
    let admin = &core.admin_settings;
    if let Err(why) = same_site(req, &admin.hosts) {
        warn!("admin: refused {what} from {peer}: {why}");
        return Err(error(403, &why));
    }
    match &admin.token {
        Some(token) => {
            let given = req.header("authorization").and_then(credential);
            if given.is_some_and(|g| same(g.as_bytes(), token.0.as_bytes())) {
                return Ok(());
            }
            warn!("admin: refused {what} from {peer}: missing or wrong token");
            let body = b"{\"error\":\"this needs the token of --admin-token-file\"}\n";
            let challenge = [(
                "WWW-Authenticate",
                "Basic realm=\"lb admin\", charset=\"UTF-8\"",
            )];
            Err(response_with(401, JSON, body, false, &challenge))
        }
        None if admin.listen.is_some_and(|a| a.ip().is_loopback()) => Ok(()),
        None => {
            warn!(
                "admin: refused {what} from {peer}: no --admin-token-file and --admin is not on loopback"
            );
            Err(error(
                403,
                "write actions need --admin-token-file when --admin is not on loopback",
            ))
        }
    }
}

/// DNS rebinding: a page whose own name the attacker makes resolve to the admin address is,
/// to the browser, the same site as the admin listener, and sends `Host` and `Origin` with
/// that name; comparing the two proves nothing. So `Host` must name this listener: an IP
/// address (a rebinding page's requests carry its name, never an address), `localhost`, or
/// a name of `--admin-host`. And a page's `Origin`, when a browser sends one, must be that
/// same host, so that another site's page cannot post here either. Neither compares the
/// port: a rebinding page can have any, and a forwarded port is still this listener.
fn same_site(req: &Request, names: &[String]) -> Result<(), String> {
    let host = req.header("host");
    if let Some(h) = host.filter(|h| !names_us(h, names)) {
        return Err(format!(
            "Host {h} does not name this admin listener: writes need its IP address, \
             localhost, or a name given with --admin-host"
        ));
    }
    if let Some(origin) = req.header("origin") {
        let page = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = page
            .zip(host)
            .is_some_and(|(p, h)| p.eq_ignore_ascii_case(h));
        if !same {
            return Err(format!(
                "cross-site request: sent from the page of {origin}"
            ));
        }
    }
    Ok(())
}

/// Whether `host` (a Host header: `name`, `1.2.3.4`, `[::1]`, each with an optional
/// `:port`) is an IP address, `localhost`, or one of `names`.
fn names_us(host: &str, names: &[String]) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, _)) => return ip.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || names.contains(&name)
}

/// The token in `Bearer TOKEN`, or the password in `Basic base64(user:password)`.
fn credential(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64(rest.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut bits, mut n) = (0u32, 0);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_given_names_are_this_listener() {
        let names = ["lb.internal".to_string()];
        for ours in [
            "127.0.0.1:8081",
            "10.1.2.3",
            "[::1]:8081",
            "[fe80::1]",
            "localhost",
            "LocalHost.:8081",
            "lb.internal:9000",
            "LB.Internal",
        ] {
            assert!(names_us(ours, &names), "{ours}");
        }
        for theirs in [
            "evil.example:8081",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "lb.internal.evil.example",
            "[::1",
            "[evil]",
            "",
        ] {
            assert!(!names_us(theirs, &names), "{theirs}");
        }
    }

    #[test]
    fn credentials_from_bearer_and_basic() {
        assert_eq!(credential("Bearer s3cret").as_deref(), Some("s3cret"));
        // "admin:s3cret"
        assert_eq!(
            credential("Basic YWRtaW46czNjcmV0").as_deref(),
            Some("s3cret")
        );
        assert_eq!(credential("basic Om9ubHk=").as_deref(), Some("only"));
        assert_eq!(credential("Digest x"), None);
        assert_eq!(credential("Basic !!!"), None);
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"abcd"));
    }
}
