//! Which routes a host can see, in file order. Built once per table:
//! - exact names in a hash map, each with its own routes and the wildcard list that also
//!   covers it (found when the table is built, not per request);
//! - wildcards by suffix (`.example.com` for `*.example.com`), each list already merged
//!   with the wildcards above it (`*.example.com` covers what `*.b.example.com` covers);
//! - the routes for any host.
//!
//! A request walks at most three sorted lists at once, merged by route index, so that the
//! first route in file order is tried first whichever kind of host pattern it has.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use super::host::suffixes;
use crate::config::model::HostPattern;

struct ExactHost {
    routes: Box<[u32]>,
    /// Index into `HostIndex::wild_lists` of the longest wildcard over this name.
    wild: Option<u32>,
}

pub(super) struct HostIndex {
    exact: HashMap<Box<[u8]>, ExactHost, Seeded>,
    wild: HashMap<Box<[u8]>, u32, Seeded>,
    wild_lists: Vec<Box<[u32]>>,
    any: Box<[u32]>,
}

impl HostIndex {
    /// `routes`: for each applied route (index in the site's list), its canonical host
    /// patterns in ascending index order; an empty list is any host.
    pub(super) fn build<'p>(routes: impl Iterator<Item = (u32, &'p [HostPattern])>) -> HostIndex {
        let mut exact: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        let mut wild: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        let mut any = Vec::new();
        for (i, hosts) in routes {
            if hosts.is_empty() {
                any.push(i);
            }
            for host in hosts {
                let list = match host {
                    HostPattern::Exact(name) => exact.entry(name.as_bytes().into()).or_default(),
                    HostPattern::Suffix(s) => {
                        wild.entry(format!(".{s}").into_bytes().into()).or_default()
                    }
                };
                // A route that lists one name twice is still one candidate.
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let seed = Seeded::new();
        let mut index = HostIndex {
            exact: HashMap::with_hasher(seed.clone()),
            wild: HashMap::with_hasher(seed),
            wild_lists: Vec::new(),
            any: any.into(),
        };
        for key in wild.keys() {
            let mut merged: Vec<u32> = std::iter::once(&key[..])
                .chain(suffixes(key))
                .filter_map(|k| wild.get(k))
                .flatten()
                .copied()
                .collect();
            merged.sort_unstable();
            merged.dedup();
            let n = index.wild_lists.len() as u32;
            index.wild_lists.push(merged.into());
            index.wild.insert(key.clone(), n);
        }
        for (name, routes) in exact {
            let wild = index.longest_wild(&name);
            let entry = ExactHost {
                routes: routes.into(),
                wild,
            };
            index.exact.insert(name, entry);
        }
        index
    }

    fn longest_wild(&self, host: &[u8]) -> Option<u32> {
        if self.wild.is_empty() {
            return None;
        }
        suffixes(host).find_map(|s| self.wild.get(s).copied())
    }

    /// The routes `host` can match, in file order, each once.
    /// `host` as `host_key` gives it.
    pub(super) fn candidates(&self, host: Option<&[u8]>) -> Candidates<'_> {
        let (exact, wild) = match host {
            None => (None, None),
            Some(name) => match self.exact.get(name) {
                Some(e) => (Some(&e.routes[..]), e.wild),
                None => (None, self.longest_wild(name)),
            },
        };
        let wild = wild.and_then(|w| self.wild_lists.get(w as usize));
        Candidates {
            lists: [
                exact.unwrap_or_default(),
                wild.map(|w| &w[..]).unwrap_or_default(),
                &self.any,
            ],
        }
    }
}

/// A merge of sorted route lists, yielding each index once, smallest first.
pub(super) struct Candidates<'t> {
    lists: [&'t [u32]; 3],
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        // Most hosts see one list (a host's own routes, or the routes for any host).
        if let [one, [], []] | [[], one, []] | [[], [], one] = &mut self.lists {
            let (&first, rest) = one.split_first()?;
            *one = rest;
            return Some(first as usize);
        }
        let min = self.lists.iter().filter_map(|l| l.first()).min().copied()?;
        for list in &mut self.lists {
            if let Some((&first, rest)) = list.split_first()
                && first == min
            {
                *list = rest;
            }
        }
        Some(min as usize)
    }
}

/// The hash of the host maps. A request may cost one lookup per label of its host, and
/// SipHash was most of the routing step; host names are short, so a multiply-rotate hash
/// eight bytes at a time does. Its weakness to chosen keys does not matter here: what is
/// stored comes from the operator, a client only chooses what to look up, and no lookup
/// probes further than the table's own longest run. The seed is drawn per table.
#[derive(Clone)]
struct Seeded(u64);

impl Seeded {
    fn new() -> Seeded {
        Seeded(RandomState::new().hash_one(0u64))
    }
}

impl BuildHasher for Seeded {
    type Hasher = HostHasher;

    fn build_hasher(&self) -> HostHasher {
        HostHasher(self.0)
    }
}

struct HostHasher(u64);

impl HostHasher {
    fn add(&mut self, word: u64) {
        self.0 = self
            .0
            .wrapping_add(word)
            .wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for HostHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// The multiply leaves the low bits weakest; the map takes its bucket from them.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}
