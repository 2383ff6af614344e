//! `[listeners.NAME]`: an address, HTTP (with routes) or TCP (to a pool), TLS
//! certificates chosen by SNI, and whether clients start with a PROXY header.

use super::doc::{Doc, Table};
use super::parsed;
use crate::config::model::{KeyPath, Listener, Protocol};
use crate::config::values::parse_addr;
use crate::proxy_protocol::Cidr;
use crate::tls::CertPair;

type Value<'i> = toml::Spanned<toml::de::DeValue<'i>>;

pub(super) const LISTENER: &[&str] = &[
    "address",
    "mode",
    "pool",
    "routes",
    "tls",
    "accept_proxy",
    "h2c",
];

pub fn read(doc: &mut Doc, value: &Value) -> Vec<Listener> {
    let path = KeyPath("listeners".into());
    let mut listeners = Vec::new();
    for (name, v) in doc.named(value, path.clone(), "`listeners`") {
        let what = format!("[listeners.{name}]");
        let Some(t) = doc.table(v, path.key(&name), &what, LISTENER) else {
            continue;
        };
        let Some(address) = parsed(doc, &t, "address", parse_addr) else {
            if !t.has("address") {
                doc.error(t.span.clone(), format!("{what} needs an `address`"));
            }
            continue;
        };
        let protocol = parsed(doc, &t, "mode", |s| match s {
            "http" => Ok(Protocol::Http),
            "tcp" => Ok(Protocol::Tcp),
            _ => Err(format!("'{s}' is not a mode (http or tcp)")),
        })
        .unwrap_or(Protocol::Http);
        let routes = doc
            .strings(&t, "routes")
            .map(|names| names.into_iter().map(|(n, _)| n).collect());
        let tls = read_tls(doc, &t);
        let h2c = doc.boolean(&t, "h2c").unwrap_or(false);
        if h2c && (protocol == Protocol::Tcp || !tls.is_empty()) {
            let why = match protocol {
                Protocol::Tcp => "a TCP listener passes bytes through and speaks no HTTP",
                Protocol::Http => "a TLS listener offers HTTP/2 by ALPN already",
            };
            doc.error(
                doc.key_span(&t, "h2c"),
                format!("`h2c` is for plain HTTP listeners: {why}"),
            );
        }
        listeners.push(Listener {
            name,
            address,
            protocol,
            pool: doc.string(&t, "pool"),
            routes,
            tls,
            accept_proxy: read_accept_proxy(doc, &t),
            h2c,
        });
    }
    listeners
}

/// `tls = [{ cert = "site.pem", key = "site.key" }, ...]`: the first is the default.
fn read_tls(doc: &mut Doc, t: &Table) -> Vec<CertPair> {
    let Some(v) = doc.get(t, "tls") else {
        return Vec::new();
    };
    let path = t.path.key("tls");
    if let toml::de::DeValue::Table(_) = v.get_ref() {
        // One certificate written alone: the list is the only thing wrong with it.
        doc.error(
            v.span(),
            "`tls` is a list of certificates: write `tls = [{ cert = ..., key = ... }]`, \
             the first being the default",
        );
        return Vec::new();
    }
    let items = doc.array(v, &path);
    if items.is_empty() && matches!(v.get_ref(), toml::de::DeValue::Array(_)) {
        doc.error(
            v.span(),
            "`tls` lists no certificate: give at least one { cert = ..., key = ... }, or \
             leave `tls` out for a plain listener",
        );
    }
    let mut pairs = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(p) = doc.table(item, path.index(i), "a certificate", &["cert", "key"]) else {
            continue;
        };
        match (doc.string(&p, "cert"), doc.string(&p, "key")) {
            (Some(cert), Some(key)) => pairs.push(CertPair { cert, key }),
            _ => doc.error(
                item.span(),
                "a certificate needs both `cert` (a PEM chain) and `key` (its PEM key)",
            ),
        }
    }
    pairs
}

/// `accept_proxy = true` (from anyone) or a list of CIDR ranges.
fn read_accept_proxy(doc: &mut Doc, t: &Table) -> Option<Vec<Cidr>> {
    let v = doc.get(t, "accept_proxy")?;
    if let toml::de::DeValue::Boolean(b) = v.get_ref() {
        return b.then(Vec::new);
    }
    let written = doc.strings(t, "accept_proxy")?;
    if written.is_empty() {
        doc.error(
            v.span(),
            "`accept_proxy` lists no range: true takes a PROXY header from anyone",
        );
    }
    let mut ranges = Vec::new();
    for (s, span) in written {
        match Cidr::parse(&s) {
            Ok(c) => ranges.push(c),
            Err(e) => doc.error(span, format!("`accept_proxy`: {e}")),
        }
    }
    Some(ranges)
}
