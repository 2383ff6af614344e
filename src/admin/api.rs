//! Runtime control on the admin listener, in HAProxy's vocabulary:
//!
//! - `GET /backends`: every backend as JSON (pool, address, state, health, weight, counters).
//! - `POST /backends/HOST:PORT/drain`, `/maint`, `/ready`, `/weight?value=N`.
//! - `PUT /backends/HOST:PORT[?weight=N]` adds a backend; `DELETE /backends/HOST:PORT` removes one,
//!   and with `?owed=give-up` gives up the POST copies it still owes (removed or not).
//! - The same under `/pools/NAME/backends`, for one pool. Without the pool a backend is found
//!   in any pool, and one is added to the only pool there is.
//!
//! Each change goes through the roster and `reconfigure::sync`, as a reload does, and lasts
//! until the next reload from the file. With a PostgreSQL store, each change is also
//! recorded there for the other instances sharing it, which apply it by the same path
//! (`peers.rs`). Who may write is `auth.rs`'s concern.

use std::fmt::Write as _;
use std::net::SocketAddr;

use log::{info, warn};
use slab::Slab;

use super::auth::authorize;
use super::stats::format::Html;
use super::{JSON, TEXT, Totals, View, response_with};
use crate::backend::{BackendId, Role};
use crate::config::{parse_line, parse_weight};
use crate::event_loop::{Conn, Core};
use crate::reconfigure;
use crate::resolver::{Job, Reply};
use crate::roster::Roster;
use crate::store::BackendChange;
use crate::store::change::{Action, Edit};

/// The parts of a request the API looks at.
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    /// `/pools/NAME/backends...`: the pool it is about.
    pool: Option<&'a str>,
    /// After `/backends`: empty, or `/HOST:PORT[/action]`, not yet decoded.
    pub(super) rest: &'a str,
    query: &'a str,
    header: Vec<(&'a str, &'a str)>,
}

impl Request<'_> {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// A browser's form post: it is sent back to the status page, not shown JSON.
    fn wants_page(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("text/html"))
    }
}

/// Answers a complete request under `/backends`, or `None` when the answer waits for a
/// name lookup (`added` gives it).
pub fn handle(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    reply: Reply,
    peer: SocketAddr,
    head: &[u8],
) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let (Ok(_), Some(method), Some(target)) = (parsed.parse(head), parsed.method, parsed.path)
    else {
        return Some(error(400, "malformed request"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (pool, path) = match path.strip_prefix("/pools/") {
        Some(rest) => match rest.split_once('/') {
            Some((name, path)) => (Some(name), path),
            None => (Some(rest), ""),
        },
        None => (None, path.strip_prefix('/').unwrap_or(path)),
    };
    if let Some(name) = pool
        && !core.pools.iter().any(|p| p.name() == name)
    {
        return Some(error(404, &format!("no pool {name}")));
    }
    let Some(rest) = path.strip_prefix("backends") else {
        return Some(error(404, "not found: /backends, /pools/NAME/backends"));
    };
    let req = Request {
        method,
        pool,
        rest,
        query,
        header: parsed
            .headers
            .iter()
            .map(|h| (h.name, std::str::from_utf8(h.value).unwrap_or("")))
            .collect(),
    };
    let segments: Vec<&str> = req.rest.split('/').skip(1).collect();
    let (key, action) = match segments[..] {
        [] => return Some(read_only(core, &req, None)),
        [key] => (decode(key), None),
        [key, action] => (decode(key), Some(action)),
        _ => return Some(error(404, "not found")),
    };
    let Some(key) = key else {
        return Some(error(400, "write the backend as HOST:PORT"));
    };
    if matches!((method, action), ("GET" | "HEAD", None)) {
        return Some(read_only(core, &req, Some(&key)));
    }
    if let Err(refused) = authorize(core, &req, peer) {
        return Some(refused);
    }
    let edit = match (method, action) {
        ("POST", Some("drain")) => Edit::Drain,
        ("POST", Some("maint")) => Edit::Maint,
        ("POST", Some("ready")) => Edit::Ready,
        ("POST", Some("weight")) => match query_value(req.query, "value").and_then(parse_weight) {
            Some(w) => Edit::Weight(w),
            None => return Some(error(400, "weight?value=N wants N from 1 to 1000")),
        },
        ("DELETE", None) => match query_value(req.query, "owed") {
            None => Edit::Remove,
            Some("give-up") => Edit::GiveUp,
            Some(_) => return Some(error(400, "owed=give-up is the one choice")),
        },
        ("PUT", None) => return put(conns, core, &req, (reply, peer), key),
        ("POST", Some(_)) => return Some(error(404, "actions: drain, maint, ready, weight")),
        _ => {
            return Some(error(
                405,
                "GET /backends; POST .../drain|maint|ready|weight; PUT; DELETE",
            ));
        }
    };
    let Some(id) = edit_roster(&mut core.roster, req.pool, &key, edit) else {
        return Some(error(404, &format!("no backend {key}")));
    };
    share(core, id, Action::Edit(edit));
    Some(changed(conns, core, &req, peer, id, 200))
}

/// Edits backend `key` (its label or address) of `pool`, or of any pool; `None` when it is
/// not listed. The path of this instance's API and of changes others made (`peers.rs`).
pub(super) fn edit_roster(
    roster: &mut Roster,
    pool: Option<&str>,
    key: &str,
    edit: Edit,
) -> Option<BackendId> {
    match edit {
        Edit::Drain => roster.set_role(pool, key, Role::Drain),
        Edit::Maint => roster.set_role(pool, key, Role::Maint),
        Edit::Ready => roster.set_role(pool, key, Role::Ready),
        Edit::Weight(w) => roster.set_weight(pool, key, w),
        Edit::Remove => roster.remove(pool, key),
        Edit::GiveUp => roster.give_up(pool, key),
    }
}

/// Adds `label` at `addr` to `pool`, if the command line's rules let it
/// (`Roster::check_add`): its slot, and whether it is new. The path of this instance's API
/// and of additions others made (`peers.rs`).
pub(super) fn add(
    core: &mut Core,
    (pool, label): (&str, &str),
    addr: SocketAddr,
    weight: Option<u32>,
) -> Result<(BackendId, bool), String> {
    let at = format!("PUT /backends/{label}");
    core.roster.check_add((pool, label), addr, &at, &core.own)?;
    Ok(core.roster.add((pool, label), addr, weight))
}

/// Records a change this instance's API made in the store, for the other instances
/// sharing it; under the backend's own pool and label, as they find it by.
fn share(core: &mut Core, id: BackendId, action: Action) {
    let Some(slot) = core.roster.slot(id) else {
        return;
    };
    let change = BackendChange {
        pool: slot.pool.clone(),
        backend: slot.label.clone(),
        action,
    };
    if let Some(store) = core.fanout.journal_mut() {
        store.share(change);
    }
}

/// Applies a write that the roster took, logs it, and answers with the backend's state.
fn changed(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    req: &Request,
    peer: SocketAddr,
    id: BackendId,
    status: u16,
) -> Vec<u8> {
    let notes = reconfigure::sync(conns, core);
    let what = if notes.is_empty() {
        "no change".to_string()
    } else {
        notes.join(", ")
    };
    let query = if req.query.is_empty() { "" } else { "?" };
    let pool = req.pool.map_or(String::new(), |p| format!("/pools/{p}"));
    info!(
        "admin {peer}: {} {pool}/backends{}{query}{}: {what} (until the next reload)",
        req.method, req.rest, req.query
    );
    if req.wants_page() {
        // Relative, so that the page still works behind a proxy that moves the admin API.
        let back = match req.pool {
            Some(_) => "../../../../stats",
            None => "../../stats",
        };
        return response_with(303, TEXT, b"", false, &[("Location", back)]);
    }
    let mut body = String::new();
    backend_json(core, &Totals::gather(core), id, &mut body);
    body.push('\n');
    response_with(status, JSON, body.as_bytes(), false, &[])
}

/// PUT: an address is added at once; a host name is looked up on the resolver thread first.
fn put(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    req: &Request,
    (reply, peer): (Reply, SocketAddr),
    key: String,
) -> Option<Vec<u8>> {
    let weight = match query_value(req.query, "weight") {
        None => None,
        Some(w) => match parse_weight(w) {
            Some(w) => Some(w),
            None => return Some(error(400, "weight=N wants N from 1 to 1000")),
        },
    };
    let line = match parse_line(&key, format!("PUT /backends/{key}")) {
        Ok(l) if l.label == key && key.contains(':') => l,
        Ok(_) => return Some(error(400, "write the backend as HOST:PORT")),
        Err(e) => return Some(error(400, &e)),
    };
    let pool = match (req.pool, core.pools.as_slice()) {
        (Some(pool), _) => pool.to_string(),
        (None, [only]) => only.name().to_string(),
        (None, _) => {
            return Some(error(
                400,
                "there are several pools: PUT /pools/NAME/backends/HOST:PORT",
            ));
        }
    };
    match key.parse::<SocketAddr>() {
        Ok(addr) => {
            let (id, new) = match may_add(core, (&pool, &line.label), addr, weight, peer) {
                Ok(added) => added,
                Err(why) => return Some(why),
            };
            Some(changed(
                conns,
                core,
                req,
                peer,
                id,
                if new { 201 } else { 200 },
            ))
        }
        Err(_) => {
            // The admin listener is worker 0's, which has the resolver.
            let resolver = core.resolver.as_ref()?;
            resolver.send(Job::Add {
                pool,
                label: line.label,
                weight,
                reply,
            });
            None
        }
    }
}

/// The name of a backend that `PUT` adds was looked up.
pub fn added(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    reply: Reply,
    (pool, label): (&str, &str),
    weight: Option<u32>,
    addr: Result<SocketAddr, String>,
) {
    let peer = match conns.get(reply.0) {
        Some(Conn::Admin(a)) => a.peer,
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let out = match addr.map(|addr| may_add(core, (pool, label), addr, weight, peer)) {
        Ok(Ok((id, new))) => {
            let rest = format!("/{label}");
            let req = Request {
                method: "PUT",
                pool: Some(pool),
                rest: &rest,
                query: "",
                header: Vec::new(),
            };
            changed(conns, core, &req, peer, id, if new { 201 } else { 200 })
        }
        Ok(Err(refused)) => refused,
        Err(why) => error(400, &why),
    };
    super::answer_later(conns, core, reply, out);
}

/// PUT adds a backend (`add`), and records it for the other instances sharing the store;
/// a refusal is logged and answered with the command line's words.
fn may_add(
    core: &mut Core,
    (pool, label): (&str, &str),
    addr: SocketAddr,
    weight: Option<u32>,
    peer: SocketAddr,
) -> Result<(BackendId, bool), Vec<u8>> {
    match add(core, (pool, label), addr, weight) {
        Ok((id, new)) => {
            share(core, id, Action::Add { addr, weight });
            Ok((id, new))
        }
        Err(why) => {
            warn!("admin {peer}: refused PUT /backends/{label}: {why}");
            Err(error(400, &why))
        }
    }
}

/// GET /backends, or one backend.
fn read_only(core: &Core, req: &Request, key: Option<&str>) -> Vec<u8> {
    if !matches!(req.method, "GET" | "HEAD") {
        return error(
            405,
            "GET /backends; POST .../drain|maint|ready|weight; PUT; DELETE",
        );
    }
    let totals = Totals::gather(core);
    let mut body = String::new();
    match key {
        None => {
            let _ = write!(
                body,
                "{{\"version\":{},\"backends\":[",
                core.roster.version()
            );
            let in_pool = |id: BackendId| {
                req.pool
                    .is_none_or(|name| core.pools[core.backends[id].pool].name() == name)
            };
            let listed = (0..core.backends.len())
                .filter(|&id| core.backends[id].role != Role::Vacant && in_pool(id));
            for (i, id) in listed.enumerate() {
                if i > 0 {
                    body.push(',');
                }
                backend_json(core, &totals, id, &mut body);
            }
            body.push_str("]}");
        }
        Some(key) => match core.roster.find(req.pool, key) {
            Some(id) => backend_json(core, &totals, id, &mut body),
            None => return error(404, &format!("no backend {key}")),
        },
    }
    body.push('\n');
    response_with(200, JSON, body.as_bytes(), req.method == "HEAD", &[])
}

fn backend_json(core: &Core, totals: &Totals, id: BackendId, out: &mut String) {
    let b = &core.backends[id];
    let m = &totals.metrics.backends[id];
    let load = totals.load.get(id).copied().unwrap_or_default();
    let _ = write!(
        out,
        "{{\"backend\":\"{}\",\"address\":\"{}\",\"state\":\"{}\",\"health\":\"{}\",\
         \"weight\":{},\"active\":{},\"connections\":{},\"idle\":{},\"requests\":{},\
         \"errors\":{},\"owed_copies\":{},\"pool\":\"{}\"}}",
        Json(&b.label),
        b.addr,
        b.role.name(),
        core.health.known(id, b.up).name(),
        b.weight,
        load.active,
        m.connections,
        load.idle,
        m.requests_total(),
        m.errors_total(),
        load.owed,
        Json(core.pools[b.pool].name()),
    );
}

pub(super) fn error(status: u16, why: &str) -> Vec<u8> {
    let body = format!("{{\"error\":\"{}\"}}\n", Json(why));
    let allow = [("Allow", "GET, HEAD, POST, PUT, DELETE")];
    let extra: &[(&str, &str)] = if status == 405 { &allow } else { &[] };
    response_with(status, JSON, body.as_bytes(), false, extra)
}

/// The value of `key` in a query string (not decoded: values here are numbers).
fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

/// A path segment with its %XX escapes decoded (`[`, `]` and `:` of IPv6 addresses).
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

/// Text inside a JSON string.
struct Json<'a>(&'a str);

impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The Control column of `/stats`: the backend's role, and a button that drains it or puts
/// it back in rotation (a plain form, no script). With a config file, under the backend's
/// pool: a backend may be listed in two pools.
pub fn control_cell(v: &View, id: BackendId, out: &mut String) {
    let role = v.backends[id].role;
    out.push_str(role.name());
    let action = match role {
        Role::Ready => "drain",
        Role::Drain | Role::Maint => "ready",
        Role::Leaving | Role::Vacant => return,
    };
    let path: String = v.backends[id]
        .label
        .chars()
        .map(|c| match c {
            '[' => "%5B".to_string(),
            ']' => "%5D".to_string(),
            c => c.to_string(),
        })
        .collect();
    let pool = match v.flags {
        true => String::new(),
        false => format!("pools/{}/", v.pool_of(id).name()),
    };
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{}backends/{}/{action}\"><button>{action}</button></form>",
        Html(&pool),
        Html(&path)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_queries_and_json() {
        assert_eq!(decode("%5B::1%5D:80").as_deref(), Some("[::1]:80"));
        assert_eq!(decode("a%2"), None);
        assert_eq!(decode(""), None);
        assert_eq!(query_value("x=1&value=30", "value"), Some("30"));
        assert_eq!(query_value("values=3", "value"), None);
        assert_eq!(Json("a\"b\\c\n").to_string(), "a\\\"b\\\\c\\u000a");
    }
}
