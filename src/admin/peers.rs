//! Runtime API changes that other instances sharing the PostgreSQL store made, which worker
//! 0's store thread read: each is applied by the path this instance's own API takes
//! (`api::edit_roster`, `api::add`, then `reconfigure::sync`), and lasts, as those do, until
//! the next reload of the file. It is not recorded again: the instance that made it did.

use log::{info, warn};
use slab::Slab;

use super::api;
use crate::event_loop::{Conn, Core};
use crate::reconfigure;
use crate::store::BackendChange;
use crate::store::change::Action;

/// Applies what the store's thread brought since the last call.
pub fn apply(conns: &mut Slab<Conn>, core: &mut Core) {
    let Some(store) = core.fanout.journal_mut() else {
        return;
    };
    for (instance, change) in store.take_changes() {
        let BackendChange {
            pool,
            backend,
            action,
        } = &change;
        let done = match *action {
            Action::Edit(edit) => api::edit_roster(&mut core.roster, Some(pool), backend, edit)
                .map(|_| ())
                .ok_or_else(|| "no such backend here".to_string()),
            Action::Add { .. } if !core.pools.iter().any(|p| p.name() == pool) => {
                Err("no such pool here".to_string())
            }
            Action::Add { addr, weight } => {
                api::add(core, (pool, backend), addr, weight).map(|_| ())
            }
        };
        if let Err(why) = done {
            warn!(
                "instance {instance} on the store: {action} {pool}/{backend}: not applied: {why}"
            );
            continue;
        }
        let notes = reconfigure::sync(conns, core);
        let what = match notes.is_empty() {
            true => "no change".to_string(),
            false => notes.join(", "),
        };
        info!(
            "instance {instance} on the store: {action} {pool}/{backend}: {what} (until the next reload)"
        );
    }
}
