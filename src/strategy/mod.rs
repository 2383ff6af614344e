//! Backend selection: one small struct per algorithm behind one trait.

use std::net::IpAddr;

use crate::backend::{Backend, BackendId};

mod hash_source;
mod hash_uri;
mod least_connections;
mod least_response_time;
mod n_to_one;
mod power_of_two;
mod random;
mod ring;
mod round_robin;
#[cfg(test)]
mod testutil;

pub use hash_source::HashSource;
pub use hash_uri::HashUri;
pub use least_connections::LeastConnections;
pub use least_response_time::LeastResponseTime;
pub use n_to_one::NToOne;
pub use power_of_two::PowerOfTwo;
pub use random::Random;
pub use round_robin::RoundRobin;

/// What a strategy may look at besides the backends themselves.
#[derive(Debug, Default, Clone, Copy)]
pub struct PickContext<'a> {
    pub client_ip: Option<IpAddr>,
    /// The request path (HTTP mode); empty in TCP mode.
    pub path: &'a [u8],
}

/// The backends a strategy picks among: one pool's members, within the loop's list of
/// every backend. A strategy keeps what it knows per member by position (0..len), and is
/// built again whenever the members change.
#[derive(Debug, Clone, Copy)]
pub struct Members<'a> {
    backends: &'a [Backend],
    /// `None`: every backend of the list, each at the position of its id.
    ids: Option<&'a [BackendId]>,
}

impl<'a> Members<'a> {
    pub fn of(backends: &'a [Backend], ids: &'a [BackendId]) -> Self {
        Members {
            backends,
            ids: Some(ids),
        }
    }

    pub fn all(backends: &'a [Backend]) -> Self {
        Members {
            backends,
            ids: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.map_or(self.backends.len(), <[BackendId]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the member at `pos`.
    pub fn id(&self, pos: usize) -> BackendId {
        self.ids.map_or(pos, |ids| ids[pos])
    }

    pub fn get(&self, pos: usize) -> &'a Backend {
        &self.backends[self.id(pos)]
    }
}

pub trait Strategy {
    /// Chooses a member that is up and that `accept` allows, or `None` when there is none.
    /// `accept` lets the caller skip backends already tried for this request.
    fn pick(
        &mut self,
        members: Members,
        ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId>;
}

/// The names `-s` accepts, default first.
pub const NAMES: &[&str] = &[
    "round-robin",
    "n-to-1",
    "least-connections",
    "least-response-time",
    "random",
    "power-of-two",
    "hash-source",
    "hash-uri",
];

/// Other names for strategies in `NAMES`: `weighted-round-robin` is what round-robin was
/// called while the plain one ignored weights.
const ALIASES: &[(&str, &str)] = &[("weighted-round-robin", "round-robin")];

/// The name in `NAMES` that `name` stands for, if it is one or an alias of one.
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, n)| *n))
}

/// False for the strategies that choose without looking at `weight=`.
pub fn uses_weights(name: &str) -> bool {
    name == "round-robin"
}

/// Builds the strategy called `name` (as `canonical` returns it) for these members;
/// built again whenever they change at run time.
pub fn by_name(name: &str, backends: Members) -> Result<Box<dyn Strategy>, String> {
    Ok(match name {
        "round-robin" => Box::new(RoundRobin::new(backends)),
        "n-to-1" => Box::new(NToOne::new(backends)),
        "least-connections" => Box::new(LeastConnections::default()),
        "least-response-time" => Box::new(LeastResponseTime::default()),
        "random" => Box::new(Random::new(rand::make_rng())),
        "power-of-two" => Box::new(PowerOfTwo::new(rand::make_rng())),
        "hash-source" => Box::new(HashSource::new(backends)),
        "hash-uri" => Box::new(HashUri::new(backends)),
        _ => {
            return Err(format!(
                "unknown strategy '{name}' (one of: {})",
                NAMES.join(", ")
            ));
        }
    })
}

/// False for strategies that need an HTTP request to decide, which TCP mode never parses.
pub fn tcp_compatible(name: &str) -> bool {
    name != "hash-uri"
}

/// True when the member at `pos` may be picked at all.
pub(crate) fn eligible(m: Members, pos: usize, accept: &dyn Fn(BackendId) -> bool) -> bool {
    m.get(pos).selectable() && accept(m.id(pos))
}

/// The position of the eligible member with the smallest `key`. The scan starts at
/// `start` (wrapping), so among equals the first one after `start` wins: moving `start`
/// past each pick shares ties.
pub(crate) fn least_from<K: PartialOrd>(
    m: Members,
    accept: &dyn Fn(BackendId) -> bool,
    start: usize,
    key: impl Fn(&Backend) -> K,
) -> Option<usize> {
    let n = m.len();
    if n == 0 {
        return None;
    }
    let start = start % n;
    let mut best: Option<(usize, K)> = None;
    for pos in (start..n).chain(0..start) {
        let b = m.get(pos);
        if !b.selectable() {
            continue;
        }
        let k = key(b);
        // `accept` is an indirect call: ask it only about backends that would win.
        if best.as_ref().is_none_or(|(_, best)| k < *best) && accept(m.id(pos)) {
            best = Some((pos, k));
        }
    }
    best.map(|(pos, _)| pos)
}

#[cfg(test)]
mod tests {
    use super::testutil::{any, pool};
    use super::*;

    #[test]
    fn by_name_builds_every_listed_strategy() {
        let backends = pool(3);
        for name in NAMES {
            let mut s =
                by_name(name, Members::all(&backends)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                s.pick(Members::all(&backends), &PickContext::default(), &any)
                    .is_some()
            );
        }
        assert_eq!(NAMES[0], "round-robin");
    }

    #[test]
    fn by_name_rejects_unknown_names_and_lists_the_valid_ones() {
        let err = by_name("fastest", Members::all(&pool(1))).err().unwrap();
        assert!(err.starts_with("unknown strategy 'fastest' (one of: round-robin, n-to-1,"));
        assert!(err.ends_with("hash-uri)"));
    }

    #[test]
    fn weighted_round_robin_is_round_robin() {
        assert_eq!(canonical("weighted-round-robin"), Some("round-robin"));
        assert_eq!(canonical("random"), Some("random"));
        assert_eq!(canonical("fastest"), None);
        assert!(uses_weights("round-robin"));
        assert!(!uses_weights("least-connections"));
    }

    #[test]
    fn only_hash_uri_needs_http() {
        for name in NAMES {
            assert_eq!(tcp_compatible(name), *name != "hash-uri");
        }
    }

    #[test]
    fn every_strategy_returns_none_without_backends() {
        for name in NAMES {
            let mut s = by_name(name, Members::all(&[])).unwrap();
            assert_eq!(
                s.pick(Members::all(&[]), &PickContext::default(), &any),
                None,
                "{name}"
            );
        }
    }

    #[test]
    fn every_strategy_returns_none_when_all_are_down_or_refused() {
        let mut backends = pool(4);
        for name in NAMES {
            let mut s = by_name(name, Members::all(&backends)).unwrap();
            assert_eq!(
                s.pick(Members::all(&backends), &PickContext::default(), &|_| false),
                None
            );
        }
        for b in &mut backends {
            b.up = false;
        }
        for name in NAMES {
            let mut s = by_name(name, Members::all(&backends)).unwrap();
            assert_eq!(
                s.pick(Members::all(&backends), &PickContext::default(), &any),
                None,
                "{name}"
            );
        }
    }

    #[test]
    fn every_strategy_picks_only_members_and_answers_with_their_ids() {
        let backends = pool(5);
        let ids = [1, 3];
        let members = Members::of(&backends, &ids);
        for name in NAMES {
            let mut s = by_name(name, members).unwrap();
            for _ in 0..20 {
                let id = s.pick(members, &PickContext::default(), &any);
                assert!(matches!(id, Some(1 | 3)), "{name}: {id:?}");
            }
            let only = s.pick(members, &PickContext::default(), &|id| id == 3);
            assert_eq!(only, Some(3), "{name}");
        }
    }

    #[test]
    fn least_from_breaks_ties_by_scan_order_from_start() {
        let backends = pool(4);
        assert_eq!(
            least_from(Members::all(&backends), &any, 2, |b| b.active),
            Some(2)
        );
        assert_eq!(
            least_from(Members::all(&backends), &any, 6, |b| b.active),
            Some(2)
        );
        assert_eq!(
            least_from(Members::all(&backends), &|id| id != 2, 2, |b| b.active),
            Some(3)
        );
    }
}
