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

pub trait Strategy {
    /// Chooses a backend that is up and that `accept` allows, or `None` when there is none.
    /// `accept` lets the caller skip backends already tried for this request.
    fn pick(
        &mut self,
        backends: &[Backend],
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

/// Builds the strategy called `name` (as `canonical` returns it) for this backend list;
/// built again whenever the list changes at run time.
pub fn by_name(name: &str, backends: &[Backend]) -> Result<Box<dyn Strategy>, String> {
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

/// True when backend `id` may be picked at all.
pub(crate) fn eligible(
    backends: &[Backend],
    id: BackendId,
    accept: &dyn Fn(BackendId) -> bool,
) -> bool {
    backends[id].selectable() && accept(id)
}

/// The eligible backend with the smallest `key`. The scan starts at `start` (wrapping), so
/// among equals the first one after `start` wins: moving `start` past each pick shares ties.
pub(crate) fn least_from<K: PartialOrd>(
    backends: &[Backend],
    accept: &dyn Fn(BackendId) -> bool,
    start: usize,
    key: impl Fn(&Backend) -> K,
) -> Option<BackendId> {
    let n = backends.len();
    if n == 0 {
        return None;
    }
    let start = start % n;
    let mut best: Option<(BackendId, K)> = None;
    for id in (start..n).chain(0..start) {
        let b = &backends[id];
        if !b.selectable() {
            continue;
        }
        let k = key(b);
        // `accept` is an indirect call: ask it only about backends that would win.
        if best.as_ref().is_none_or(|(_, best)| k < *best) && accept(id) {
            best = Some((id, k));
        }
    }
    best.map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::testutil::{any, pool};
    use super::*;

    #[test]
    fn by_name_builds_every_listed_strategy() {
        let backends = pool(3);
        for name in NAMES {
            let mut s = by_name(name, &backends).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(s.pick(&backends, &PickContext::default(), &any).is_some());
        }
        assert_eq!(NAMES[0], "round-robin");
    }

    #[test]
    fn by_name_rejects_unknown_names_and_lists_the_valid_ones() {
        let err = by_name("fastest", &pool(1)).err().unwrap();
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
            let mut s = by_name(name, &[]).unwrap();
            assert_eq!(s.pick(&[], &PickContext::default(), &any), None, "{name}");
        }
    }

    #[test]
    fn every_strategy_returns_none_when_all_are_down_or_refused() {
        let mut backends = pool(4);
        for name in NAMES {
            let mut s = by_name(name, &backends).unwrap();
            assert_eq!(s.pick(&backends, &PickContext::default(), &|_| false), None);
        }
        for b in &mut backends {
            b.up = false;
        }
        for name in NAMES {
            let mut s = by_name(name, &backends).unwrap();
            assert_eq!(
                s.pick(&backends, &PickContext::default(), &any),
                None,
                "{name}"
            );
        }
    }

    #[test]
    fn least_from_breaks_ties_by_scan_order_from_start() {
        let backends = pool(4);
        assert_eq!(least_from(&backends, &any, 2, |b| b.active), Some(2));
        assert_eq!(least_from(&backends, &any, 6, |b| b.active), Some(2));
        assert_eq!(
            least_from(&backends, &|id| id != 2, 2, |b| b.active),
            Some(3)
        );
    }
}
