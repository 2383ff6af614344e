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

use super::host::suffixes;
use crate::config::model::HostPattern;

struct ExactHost {
    routes: Box<[u32]>,
    /// Index into `HostIndex::wild_lists` of the longest wildcard over this name.
    wild: Option<u32>,
}

#[derive(Default)]
pub(super) struct HostIndex {
    exact: HashMap<Box<[u8]>, ExactHost>,
    wild: HashMap<Box<[u8]>, u32>,
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
        let mut index = HostIndex {
            any: any.into(),
            ..HostIndex::default()
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
