//! The backend list as configured, kept apart from the loop that serves it.
//!
//! Every runtime change to the backends (a reload from the file, the admin API, a name
//! that now resolves elsewhere) is an edit of the roster, which makes a new versioned
//! `Snapshot`. A loop brings its own backends in line by `diff`ing the snapshot it applied
//! last against the current one, and applies the plain `Change`s that come out in one
//! place (`reconfigure`). Several worker loops can share one roster the same way, each
//! applying the diffs at its own pace.
//!
//! Ids are slots. A removed backend keeps its slot (`Leaving`) until the loop reports that
//! nothing refers to it any more (`release`); only then is the slot free for reuse, so an
//! id never changes meaning under a request or a POST copy.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::backend::{BackendId, Role};
use crate::config::{BackendSpec, Named, OwnAddrs, UNRESOLVED, check_backends};
use crate::names;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The pool it serves in: a backend is its pool and its label.
    pub pool: String,
    pub label: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub role: Role,
    /// Place in the configured list: file order, then backends added at run time.
    pub rank: usize,
    /// Removed, and the POST copies it still owes are given up rather than delivered.
    pub owed_given_up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    pub slots: Vec<Slot>,
}

/// One difference between two snapshots. The new values are in the newer snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A backend took the slot, fresh.
    Joined(BackendId),
    /// A removed backend that was still finishing its work is listed again.
    Returned(BackendId),
    /// Removed: no new requests; what it has in flight finishes.
    Left(BackendId),
    /// A removed backend has nothing left in flight; its slot is empty.
    Vacated(BackendId),
    Role {
        id: BackendId,
        from: Role,
        to: Role,
    },
    Weight {
        id: BackendId,
        from: u32,
        to: u32,
    },
    Address {
        id: BackendId,
        from: SocketAddr,
        to: SocketAddr,
    },
    /// Backends listed before and after are in another order.
    Reordered,
    /// A removed backend's owed POST copies are to be given up.
    GaveUp(BackendId),
}

/// A backend line of a reload, with what its name resolved to.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub pool: String,
    pub label: String,
    pub weight: u32,
    /// Where it was written (`-b ADDR`, `FILE:LINE`), for messages.
    pub at: String,
    pub addr: Result<SocketAddr, String>,
}

/// What changed between `old` and `new`, slot by slot.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for (id, n) in new.slots.iter().enumerate() {
        let o = old.slots.get(id).filter(|o| o.role != Role::Vacant);
        let same = |o: &&Slot| o.pool == n.pool && o.label == n.label;
        let Some(o) = o.filter(|o| same(o) && n.role != Role::Vacant) else {
            if let Some(o) = o {
                if o.role.is_member() {
                    changes.push(Change::Left(id));
                }
                changes.push(Change::Vacated(id));
            }
            if n.role != Role::Vacant {
                changes.push(Change::Joined(id));
            }
            continue;
        };
        match (o.role, n.role) {
            (Role::Leaving, to) if to.is_member() => changes.push(Change::Returned(id)),
            (from, Role::Leaving) if from.is_member() => changes.push(Change::Left(id)),
            (from, to) if from != to => changes.push(Change::Role { id, from, to }),
            _ => {}
        }
        if o.weight != n.weight {
            changes.push(Change::Weight {
                id,
                from: o.weight,
                to: n.weight,
            });
        }
        if o.addr != n.addr {
            changes.push(Change::Address {
                id,
                from: o.addr,
                to: n.addr,
            });
        }
        if n.owed_given_up && !o.owed_given_up {
            changes.push(Change::GaveUp(id));
        }
    }
    if staying(old, new) != staying(new, old) {
        changes.push(Change::Reordered);
    }
    changes
}

/// In list order, the ids of `s`'s listed backends that `other` lists too.
fn staying(s: &Snapshot, other: &Snapshot) -> Vec<BackendId> {
    let stays = |id: BackendId| {
        let (mine, o) = (&s.slots[id], other.slots.get(id));
        mine.role.is_member()
            && o.is_some_and(|o| o.role.is_member() && o.pool == mine.pool && o.label == mine.label)
    };
    let mut ids: Vec<BackendId> = (0..s.slots.len()).filter(|&id| stays(id)).collect();
    ids.sort_by_key(|&id| s.slots[id].rank);
    ids
}

pub struct Roster {
    current: Arc<Snapshot>,
}

impl Roster {
    /// The roster at start; labels are unique in each pool (the config refuses repeats).
    pub fn new(specs: &[BackendSpec]) -> Self {
        let slots = specs
            .iter()
            .enumerate()
            .map(|(rank, s)| Slot {
                pool: s.pool.clone(),
                label: s.label.clone(),
                addr: s.addr,
                weight: s.weight,
                role: Role::Ready,
                rank,
                owed_given_up: false,
            })
            .collect();
        Roster {
            current: Arc::new(Snapshot { version: 0, slots }),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current)
    }

    pub fn version(&self) -> u64 {
        self.current.version
    }

    pub fn slot(&self, id: BackendId) -> Option<&Slot> {
        self.current
            .slots
            .get(id)
            .filter(|s| s.role != Role::Vacant)
    }

    /// The slot of a backend, listed or still leaving, by its label or else its address,
    /// in `pool` or else in any pool.
    pub fn find(&self, pool: Option<&str>, key: &str) -> Option<BackendId> {
        let slots = &self.current.slots;
        let live = |id: &BackendId| {
            slots[*id].role != Role::Vacant && pool.is_none_or(|p| slots[*id].pool == p)
        };
        (0..slots.len())
            .filter(live)
            .find(|&id| slots[id].label == key)
            .or_else(|| {
                (0..slots.len())
                    .filter(live)
                    .find(|&id| slots[id].addr.to_string() == key)
            })
    }

    /// Every live slot whose label is `label`, whatever its pool.
    pub fn with_label(&self, label: &str) -> Vec<BackendId> {
        let slots = &self.current.slots;
        (0..slots.len())
            .filter(|&id| slots[id].role != Role::Vacant && slots[id].label == label)
            .collect()
    }

    /// Listed backends whose label is a host name, to be looked up again.
    pub fn names(&self) -> Vec<String> {
        self.current
            .slots
            .iter()
            .filter(|s| s.role.is_member() && crate::names::is_name(&s.label))
            .map(|s| s.label.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Makes a new snapshot if `f` changes anything.
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<Slot>) -> R) -> R {
        let mut slots = self.current.slots.clone();
        let r = f(&mut slots);
        if slots != self.current.slots {
            let version = self.current.version + 1;
            self.current = Arc::new(Snapshot { version, slots });
        }
        r
    }

    /// The list becomes `wanted`, as a reload from the file makes it: backends not in it
    /// leave, new ones join, and roles and weights set at run time are forgotten. A name
    /// that no longer resolves keeps the address it had; one that never did fails the whole
    /// reload, and so does what lb refuses at start (`check_backends`: a backend twice, port
    /// 0, one of lb's `own` addresses). Returns a note for each address kept.
    /// `Err`: what makes the list unusable; `Ok`: warnings. A new backend whose name does
    /// not resolve fails the reload, unless `names_wait` (a config file's rule, as at
    /// start): then it joins at `UNRESOLVED`, down until its name resolves.
    pub fn reload(
        &mut self,
        wanted: Vec<Lookup>,
        own: &OwnAddrs,
        names_wait: bool,
    ) -> Result<Vec<String>, String> {
        let mut kept = Vec::new();
        let mut settled = Vec::with_capacity(wanted.len());
        for w in wanted {
            let addr = match (w.addr, self.find_label(&w.pool, &w.label)) {
                (Ok(addr), _) => addr,
                (Err(why), Some(id)) => {
                    let addr = self.current.slots[id].addr;
                    kept.push(format!("{}: {why}; {} keeps address {addr}", w.at, w.label));
                    addr
                }
                (Err(why), None) if names_wait && names::is_name(&w.label) => {
                    kept.push(format!(
                        "{}: {why}; it stays down until its name resolves",
                        w.at
                    ));
                    UNRESOLVED
                }
                (Err(why), None) => return Err(format!("{}: {why}", w.at)),
            };
            settled.push((w.pool, w.label, w.weight, addr, w.at));
        }
        let named: Vec<Named> = settled
            .iter()
            .map(|(pool, label, _, addr, at)| (pool.as_str(), label.as_str(), *addr, at.as_str()))
            .collect();
        check_backends(&named, own)?;
        self.edit(|slots| {
            for s in slots.iter_mut().filter(|s| s.role.is_member()) {
                if !settled
                    .iter()
                    .any(|(pool, label, ..)| *pool == s.pool && *label == s.label)
                {
                    s.role = Role::Leaving;
                }
            }
            for (rank, (pool, label, weight, addr, _)) in settled.into_iter().enumerate() {
                place(slots, (pool, label), addr, Some(weight), rank, true);
            }
        });
        Ok(kept)
    }

    /// Whether `label` at `addr` (written `at`) may join the listed backends, or move there,
    /// by the rules of the command line (`check_backends`).
    pub fn check_add(
        &self,
        (pool, label): (&str, &str),
        addr: SocketAddr,
        at: &str,
        own: &OwnAddrs,
    ) -> Result<(), String> {
        let others: Vec<(&str, &str, SocketAddr, String)> = self
            .current
            .slots
            .iter()
            .filter(|s| s.role.is_member() && !(s.pool == pool && s.label == label))
            .map(|s| {
                (
                    s.pool.as_str(),
                    s.label.as_str(),
                    s.addr,
                    format!("listed as {}", s.label),
                )
            })
            .collect();
        let mut list: Vec<Named> = others
            .iter()
            .map(|(pool, label, addr, at)| (*pool, *label, *addr, at.as_str()))
            .collect();
        list.push((pool, label, addr, at));
        check_backends(&list, own)
    }

    /// Adds a backend to `pool`, or updates the listed one with this label there (its
    /// weight only if `weight` is given; its role stays). True when it was not listed before.
    pub fn add(
        &mut self,
        (pool, label): (&str, &str),
        addr: SocketAddr,
        weight: Option<u32>,
    ) -> (BackendId, bool) {
        let listed = self
            .find_label(pool, label)
            .is_some_and(|id| self.current.slots[id].role.is_member());
        let rank = self.current.slots.iter().map(|s| s.rank + 1).max();
        let id = self.edit(|slots| {
            let rank = slots
                .iter()
                .find(|s| s.pool == pool && s.label == label && s.role.is_member())
                .map_or(rank.unwrap_or(0), |s| s.rank);
            let key = (pool.to_string(), label.to_string());
            place(slots, key, addr, weight, rank, false)
        });
        (id, !listed)
    }

    /// Removes a listed backend: it leaves once its work is done.
    pub fn remove(&mut self, pool: Option<&str>, key: &str) -> Option<BackendId> {
        self.set(pool, key, |s| s.role = Role::Leaving)
    }

    /// Removes the backend found by `key`, listed or already removed, and gives up the POST
    /// copies it still owes.
    pub fn give_up(&mut self, pool: Option<&str>, key: &str) -> Option<BackendId> {
        let id = self.find(pool, key)?;
        self.give_up_owed(id);
        Some(id)
    }

    /// A removed backend's owed POST copies are given up (`--leave-timeout`).
    pub fn give_up_owed(&mut self, id: BackendId) {
        self.edit(|slots| {
            if let Some(s) = slots.get_mut(id).filter(|s| s.role != Role::Vacant) {
                s.role = Role::Leaving;
                s.owed_given_up = true;
            }
        });
    }

    /// Whether removed backend `id`'s owed POST copies are given up already.
    pub fn owed_given_up(&self, id: BackendId) -> bool {
        self.slot(id).is_some_and(|s| s.owed_given_up)
    }

    /// Ready, Drain or Maint for a listed backend.
    pub fn set_role(&mut self, pool: Option<&str>, key: &str, role: Role) -> Option<BackendId> {
        debug_assert!(role.is_member());
        self.set(pool, key, |s| s.role = role)
    }

    pub fn set_weight(&mut self, pool: Option<&str>, key: &str, weight: u32) -> Option<BackendId> {
        self.set(pool, key, |s| s.weight = weight)
    }

    /// A name resolved to a new address; a leaving backend's owed copies follow it too.
    pub fn set_address(&mut self, id: BackendId, addr: SocketAddr) {
        self.edit(|slots| {
            if let Some(s) = slots.get_mut(id).filter(|s| s.role != Role::Vacant) {
                s.addr = addr;
            }
        });
    }

    /// A leaving backend has nothing left in flight: its slot becomes free.
    pub fn release(&mut self, id: BackendId) {
        self.edit(|slots| {
            if let Some(s) = slots.get_mut(id).filter(|s| s.role == Role::Leaving) {
                s.role = Role::Vacant;
                s.label.clear();
                s.owed_given_up = false;
            }
        });
    }

    fn find_label(&self, pool: &str, label: &str) -> Option<BackendId> {
        let slots = &self.current.slots;
        (0..slots.len()).find(|&id| {
            let s = &slots[id];
            s.role != Role::Vacant && s.pool == pool && s.label == label
        })
    }

    /// Edits the listed backend found by `key`.
    fn set(
        &mut self,
        pool: Option<&str>,
        key: &str,
        f: impl FnOnce(&mut Slot),
    ) -> Option<BackendId> {
        let id = self
            .find(pool, key)
            .filter(|&id| self.current.slots[id].role.is_member())?;
        self.edit(|slots| f(&mut slots[id]));
        Some(id)
    }
}

/// Lists `label` in `pool`: in its own slot if it has one (listed or leaving), else in the
/// first empty slot, else in a new one. A leaving backend comes back ready; a listed one
/// keeps its role unless `reset` (a reload) puts it back in rotation.
fn place(
    slots: &mut Vec<Slot>,
    (pool, label): (String, String),
    addr: SocketAddr,
    weight: Option<u32>,
    rank: usize,
    reset: bool,
) -> BackendId {
    let own = slots
        .iter()
        .position(|s| s.role != Role::Vacant && s.pool == pool && s.label == label);
    if let Some(id) = own {
        let s = &mut slots[id];
        if reset || !s.role.is_member() {
            s.role = Role::Ready;
        }
        s.owed_given_up = false;
        s.addr = addr;
        s.weight = weight.unwrap_or(s.weight);
        s.rank = rank;
        return id;
    }
    let slot = Slot {
        pool,
        label,
        addr,
        weight: weight.unwrap_or(1),
        role: Role::Ready,
        rank,
        owed_given_up: false,
    };
    match slots.iter().position(|s| s.role == Role::Vacant) {
        Some(id) => {
            slots[id] = slot;
            id
        }
        None => {
            slots.push(slot);
            slots.len() - 1
        }
    }
}

#[cfg(test)]
mod tests;
