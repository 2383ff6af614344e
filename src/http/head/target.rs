//! The request target (RFC 9112 §3.2) and the host it names.
//!
//! A backend must see the host lb saw: lb forwards origin-form only. An absolute-form
//! target (`GET http://a.example/x`) names its host itself, and RFC 9112 §3.2.2 has a
//! proxy ignore the Host field then and replace it with the target's authority; so the
//! backend gets `GET /x` with `Host: a.example`, never a target and a Host that disagree.

use super::{Reject, bad};

/// A target as lb forwards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Target<'a> {
    /// The host (and port) of an absolute-form target: the Host to forward.
    pub authority: Option<&'a str>,
    /// The rest: an absolute path and query, `*`, or (after an authority) empty or a
    /// query alone, which go out with a `/` in front.
    pub path: &'a str,
}

impl Target<'_> {
    /// The path needs a `/` in front to be origin-form (RFC 9112 §3.2.1).
    pub fn needs_slash(&self) -> bool {
        self.authority.is_some() && !self.path.starts_with('/')
    }
}

/// Reads the target of a request with method `method`.
pub(super) fn parse<'a>(method: &str, target: &'a str) -> Result<Target<'a>, Reject> {
    let origin = |path| {
        Ok(Target {
            authority: None,
            path,
        })
    };
    if target.starts_with('/') {
        return origin(target);
    }
    if target == "*" {
        return if method == "OPTIONS" {
            origin(target)
        } else {
            Err(bad("* is a target for OPTIONS only"))
        };
    }
    let Some(rest) = strip_scheme(target) else {
        return Err(bad("request target is neither a path nor an http(s) URI"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        // RFC 9110 §4.2.4: userinfo in an http(s) URI from an untrusted source is an error.
        return Err(bad("user information in the request target"));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(bad("request target without a host"));
    }
    if !authority.bytes().all(is_authority_byte) {
        return Err(bad("invalid host in the request target"));
    }
    Ok(Target {
        authority: Some(authority),
        path,
    })
}

/// What follows `http://` or `https://` (any case), if the target starts with either.
fn strip_scheme(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &target[scheme.len()..])
    })
}

/// A byte of `host [ ":" port ]` (RFC 3986 §3.2.2: reg-name, IP literal, IPv4): it becomes
/// the Host field lb forwards, so nothing that could end or split a field gets through.
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, target: &str) -> (Option<&'static str>, String) {
        let target: &'static str = Box::leak(target.to_string().into_boxed_str());
        let t = parse(method, target).expect(target);
        let slash = if t.needs_slash() { "/" } else { "" };
        (t.authority, format!("{slash}{}", t.path))
    }

    #[test]
    fn origin_form_and_asterisk_pass_as_they_are() {
        assert_eq!(ok("GET", "/a?b"), (None, "/a?b".into()));
        assert_eq!(ok("OPTIONS", "*"), (None, "*".into()));
    }

    #[test]
    fn absolute_form_becomes_a_host_and_an_origin_form_path() {
        assert_eq!(
            ok("GET", "http://evil.example/admin"),
            (Some("evil.example"), "/admin".into())
        );
        assert_eq!(
            ok("GET", "HTTPS://a.example:8443"),
            (Some("a.example:8443"), "/".into())
        );
        assert_eq!(
            ok("GET", "http://a.example?q=1"),
            (Some("a.example"), "/?q=1".into())
        );
        assert_eq!(
            ok("GET", "http://[::1]:80/x"),
            (Some("[::1]:80"), "/x".into())
        );
    }

    #[test]
    fn other_targets_are_refused() {
        for (method, target) in [
            ("GET", "*"),
            ("GET", "a.example/x"),
            ("GET", "ftp://a.example/x"),
            ("GET", "http:/x"),
            ("GET", "http:///x"),
            ("GET", "http://:80/x"),
            ("GET", "http://user:pw@a.example/x"),
            ("GET", "http://a\"b/x"),
            ("GET", "http://a<b/x"),
        ] {
            assert!(parse(method, target).is_err(), "{method} {target}");
        }
    }
}
