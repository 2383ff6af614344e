//! The one place where the backend set of a running lb changes. SIGHUP, the admin API
//! and name re-resolution each edit the `roster`; `sync` then brings the loop's own
//! backends, health checks, counters, pools and strategy in line with the roster's newest
//! snapshot. A removed backend stays in its slot while requests or owed POST copies still
//! refer to it, and `tidy` frees the slot once nothing does.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use slab::Slab;

use crate::backend::{Backend, BackendId, Role};
use crate::config::UNRESOLVED;
use crate::config::model::Source;
use crate::event_loop::{Conn, Core};
use crate::fanout;
use crate::http::upstream::close_pool;
use crate::pool;
use crate::probe;
use crate::resolver::{Done, FileReloaded, Job, Listed, Verdict};
use crate::roster::{Change, Slot, diff};
use crate::shared::WorkerStats;

/// Applies every roster change since the last sync; returns one note per change for the log.
/// Worker 0 edits the roster and publishes each new snapshot; the other workers apply the
/// newest one published.
pub fn sync(conns: &mut Slab<Conn>, core: &mut Core) -> Vec<String> {
    let snap = match core.worker {
        0 => core.roster.snapshot(),
        _ => match core.shared.roster() {
            Some(snap) => snap,
            None => return Vec::new(),
        },
    };
    if snap.version == core.applied.version {
        return Vec::new();
    }
    let changes = diff(&core.applied, &snap);
    let mut notes = Vec::new();
    let mut rebuild = false;
    for change in changes.iter().copied() {
        rebuild |= !matches!(
            change,
            Change::Role { .. } | Change::Address { .. } | Change::GaveUp(_)
        );
        if let Some(note) = apply(conns, core, &snap.slots, change) {
            notes.push(note);
        }
    }
    for (b, s) in core.backends.iter_mut().zip(&snap.slots) {
        b.rank = s.rank;
    }
    if rebuild {
        for (id, p) in core.pools.iter_mut().enumerate() {
            if let Err(e) = p.rebuild(id, &core.backends) {
                error!("cannot rebuild the strategy of pool {}: {e}", p.name());
            }
        }
    }
    if let Some(resolver) = core.resolver.as_ref().filter(|_| !changes.is_empty()) {
        resolver.watch(core.roster.names());
    }
    if core.worker == 0 && core.shared.workers() > 1 {
        core.shared.publish_roster(Arc::clone(&snap));
    }
    for change in &changes {
        if let Change::Left(id) = *change {
            if core.left_at.len() <= id {
                core.left_at.resize(id + 1, (0, core.now));
            }
            core.left_at[id] = (snap.version, core.now);
        }
    }
    core.applied = snap;
    notes
}

fn apply(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    slots: &[Slot],
    change: Change,
) -> Option<String> {
    match change {
        Change::Joined(id) => {
            let s = &slots[id];
            join(core, id, s);
            Some(format!("+{} ({}, weight {})", s.label, s.addr, s.weight))
        }
        Change::Returned(id) => {
            core.backends[id].owed_given_up = false;
            set_role(conns, core, id, slots[id].role);
            Some(format!("+{} (back before it had left)", slots[id].label))
        }
        Change::Left(id) => {
            let owed = core.fanout.undelivered().get(id).copied().unwrap_or(0);
            let b = &core.backends[id];
            let note = match (b.active, owed) {
                (0, 0) => format!("-{}", b.label),
                (active, owed) => format!(
                    "-{} ({active} in flight and {owed} POST copies owed finish first)",
                    b.label
                ),
            };
            set_role(conns, core, id, Role::Leaving);
            Some(note)
        }
        Change::Vacated(id) => {
            let b = &mut core.backends[id];
            info!(
                "backend {} has left: no request in flight, no POST copy owed",
                b.label
            );
            b.role = Role::Vacant;
            b.generation = b.generation.wrapping_add(1);
            None
        }
        Change::Role { id, from, to } => {
            set_role(conns, core, id, to);
            Some(format!(
                "{} {} -> {}",
                slots[id].label,
                from.name(),
                to.name()
            ))
        }
        Change::Weight { id, from, to } => {
            core.backends[id].weight = to;
            Some(format!("{} weight {from} -> {to}", slots[id].label))
        }
        Change::Address { id, from, to } => {
            core.backends[id].addr = to;
            core.backends[id].moves = core.backends[id].moves.wrapping_add(1);
            // A name resolved at last: checks bring it up, or it is up at once without them.
            if from == UNRESOLVED && !core.health.enabled(id) {
                core.backends[id].up = true;
            }
            close_pool(conns, core, id);
            fanout::moved(conns, core, id);
            Some(format!("{} address {from} -> {to}", slots[id].label))
        }
        Change::Reordered => None,
        Change::GaveUp(id) => {
            core.backends[id].owed_given_up = true;
            fanout::give_up_owed(conns, core, id);
            Some(format!("{}: POST copies owed given up", slots[id].label))
        }
    }
}

/// A backend takes slot `id`: a new entry, or an empty slot reused with fresh state.
fn join(core: &mut Core, id: BackendId, s: &Slot) {
    // Slots that came and went between two syncs (a loop that applies several versions at
    // once) were never seen here: they stay empty.
    let Some(pool) = pool::by_name(&core.pools, &s.pool) else {
        return error!(
            "backend {} joins pool {}, which this lb does not have",
            s.label, s.pool
        );
    };
    while core.backends.len() < id {
        let mut vacant = Backend::new(pool, s.addr, String::new(), 1);
        vacant.role = Role::Vacant;
        core.backends.push(vacant);
    }
    let mut b = Backend::new(pool, s.addr, s.label.clone(), s.weight);
    b.role = s.role;
    match core.backends.get(id) {
        Some(old) => {
            b.generation = old.generation.wrapping_add(1);
            core.backends[id] = b;
        }
        None => core.backends.push(b),
    }
    core.health.place(id, &s.label, &core.pools[pool]);
    core.metrics.place(id);
    core.history.place(id, core.pools[pool].protocol);
    core.fanout.place(id);
    if core.worker == 0 {
        probe::joined(core, id);
        if core.health.enabled(id) {
            probe::schedule(core, id, Duration::ZERO);
        }
    }
}

/// Out of rotation closes the idle pool; back in (or removed, which still delivers what it
/// owes) sends the POST copies that waited.
fn set_role(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId, role: Role) {
    core.backends[id].role = role;
    if !core.backends[id].pools() {
        close_pool(conns, core, id);
    }
    if core.backends[id].takes_copies() {
        fanout::backend_up(conns, core, id);
    }
}

/// SIGHUP: each pool's backends file is read and every name resolved on the resolver
/// thread; the result comes back through `resolved`. Flags are not read again. True if
/// a reload started (not while stopping), whose result is then still to come.
pub fn reload(core: &mut Core) -> bool {
    if core.draining {
        warn!("SIGHUP while stopping: not reloading");
        return false;
    }
    let Some(resolver) = &core.resolver else {
        return false;
    };
    if let Source::File(path) = &core.source {
        info!("SIGHUP: reading {} again", path.display());
        let path = path.display().to_string();
        resolver.send(Job::ReloadFile { path });
        return true;
    }
    let files: Vec<&str> = core
        .pools
        .iter()
        .filter_map(|p| p.settings.backends_file.as_deref())
        .collect();
    match files.is_empty() {
        false => info!(
            "SIGHUP: reading {} again (flags are not re-read)",
            files.join(", ")
        ),
        true => info!("SIGHUP: no --backends-file; looking up the backends' names again"),
    }
    let pools = core
        .pools
        .iter()
        .map(|p| Listed {
            pool: p.name().to_string(),
            file: p.settings.backends_file.clone(),
            lines: p.settings.backends.clone(),
        })
        .collect();
    resolver.send(Job::Reload { pools });
    true
}

/// A result from the resolver thread; a config file read again goes back to the loop.
pub fn resolved(conns: &mut Slab<Conn>, core: &mut Core, done: Done) -> Option<FileReloaded> {
    match done {
        Done::ReloadedFile(result) => return Some(result),
        Done::Reloaded(Ok(lookups)) => match core.roster.reload(lookups, &core.own, false) {
            Ok(kept) => {
                for note in kept {
                    warn!("reload: {note}");
                }
                let notes = sync(conns, core);
                core.metrics.reloads += 1;
                let listed = core.backends.iter().filter(|b| b.role.is_member()).count();
                let what = if notes.is_empty() {
                    "no change".to_string()
                } else {
                    notes.join(", ")
                };
                let files: Vec<&str> = core
                    .pools
                    .iter()
                    .filter_map(|p| p.settings.backends_file.as_deref())
                    .collect();
                let from = match files.is_empty() {
                    true => "the -b flags".to_string(),
                    false => files.join(", "),
                };
                info!("reloaded {from}: {what}; {listed} backends listed");
            }
            Err(why) => reload_failed(core, &why),
        },
        Done::Reloaded(Err(why)) => reload_failed(core, &why),
        Done::Added {
            pool,
            label,
            weight,
            reply,
            addr,
        } => crate::admin::api::added(conns, core, reply, (&pool, &label), weight, addr),
        Done::Refreshed(results) => {
            for (label, got) in results {
                refreshed(conns, core, &label, got);
            }
        }
    }
    None
}

fn reload_failed(core: &mut Core, why: &str) {
    core.metrics.reloads_failed += 1;
    let listed = core.backends.iter().filter(|b| b.role.is_member()).count();
    error!("reload failed, the {listed} running backends stay as they are: {why}");
}

/// A periodic lookup of `label`: a new address replaces the old one as a reload would.
fn refreshed(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    label: &str,
    got: Result<Vec<std::net::SocketAddr>, String>,
) {
    let ids = core.roster.with_label(label);
    let Some(&id) = ids.first() else {
        return;
    };
    let current = core.backends[id].addr;
    let Some(resolver) = core.resolver.as_mut() else {
        return;
    };
    match resolver.judge(label, &got, current) {
        Verdict::Moved(addr) => {
            let at = "looked up again";
            for &id in &ids {
                let pool = core.pools[core.backends[id].pool].name();
                if let Err(why) = core.roster.check_add((pool, label), addr, at, &core.own) {
                    warn!("{why}; it keeps its address {current}");
                    return;
                }
            }
            for id in ids {
                core.roster.set_address(id, addr);
            }
            let notes = sync(conns, core);
            info!(
                "backend {label} resolves elsewhere now: {}",
                notes.join(", ")
            );
        }
        // Never resolved: said at start already.
        Verdict::StoppedResolving if current == UNRESOLVED => {}
        Verdict::StoppedResolving => {
            let why = got.err().unwrap_or_default();
            warn!("backend {label} no longer resolves ({why}); keeping its last address {current}");
        }
        Verdict::Recovered => info!("backend {label} resolves again, to {current}"),
        Verdict::Unchanged => {}
    }
}

/// Removed backends that this loop has nothing left for: no request, connection or owed
/// POST copy.
pub fn left_idle(core: &Core) -> Vec<BackendId> {
    let leaving = |b: &Backend| b.role == Role::Leaving;
    if !core.backends.iter().any(leaving) {
        return Vec::new();
    }
    let owed = core.fanout.undelivered();
    (0..core.backends.len())
        .filter(|&id| {
            let b = &core.backends[id];
            leaving(b)
                && b.active == 0
                && b.idle.is_empty()
                && core.metrics.backends[id].connections == 0
                && owed.get(id).is_none_or(|&n| n == 0)
        })
        .collect()
}

/// Removed backends that still owe POST copies --leave-timeout after they left have those
/// copies given up, through the roster, so that every worker gives up its own.
fn give_up_overdue(core: &mut Core, others: &[Option<Arc<Option<WorkerStats>>>]) {
    let owed_here = core.fanout.undelivered();
    for id in 0..core.backends.len() {
        let Some(&(_, since)) = core.left_at.get(id) else {
            continue;
        };
        let gone = core.now.saturating_duration_since(since);
        let overdue = core.backends[id].role == Role::Leaving
            && gone >= core.cfg.leave_timeout
            && !core.roster.owed_given_up(id);
        if !overdue {
            continue;
        }
        let owed_elsewhere: usize = others
            .iter()
            .filter_map(|s| s.as_deref().and_then(Option::as_ref))
            .filter_map(|s| s.load.get(id).map(|l| l.owed))
            .sum();
        let owed = owed_here.get(id).copied().unwrap_or(0) + owed_elsewhere;
        if owed > 0 {
            warn!(
                "backend {} was removed {} s ago and still owes {owed} POST copies: they are \
                 given up (--leave-timeout)",
                core.backends[id].label,
                gone.as_secs()
            );
            core.roster.give_up_owed(id);
        }
    }
}

/// Frees the slots of removed backends that no worker has anything left in flight for
/// (worker 0's housekeeping). Another worker's word counts once it has applied the
/// removal: a worker that has not may still send a request there.
pub fn tidy(conns: &mut Slab<Conn>, core: &mut Core) {
    if core.worker != 0 {
        return;
    }
    let others: Vec<_> = (1..core.shared.workers())
        .map(|k| core.shared.stats(k))
        .collect();
    give_up_overdue(core, &others);
    for id in left_idle(core) {
        let left_at = core.left_at.get(id).map_or(0, |&(version, _)| version);
        let everywhere = others.iter().all(|s| {
            s.as_deref()
                .and_then(Option::as_ref)
                .is_some_and(|s| s.applied >= left_at && s.left_idle.contains(&id))
        });
        if everywhere {
            core.roster.release(id);
        }
    }
    sync(conns, core);
}
