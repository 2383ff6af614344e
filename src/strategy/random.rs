use rand::RngExt;
use rand::rngs::SmallRng;

use super::{Members, PickContext, Strategy, eligible};
use crate::backend::BackendId;

/// Uniform among the eligible backends.
#[derive(Debug)]
pub struct Random {
    rng: SmallRng,
}

impl Random {
    pub fn new(rng: SmallRng) -> Self {
        Random { rng }
    }
}

impl Strategy for Random {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        sample(&mut self.rng, m, accept, None).map(|pos| m.id(pos))
    }
}

/// Random probes before falling back to a scan: with most backends up, the first one hits.
const PROBES: usize = 4;

/// The position of a uniformly random eligible member other than the one at `skip`,
/// without allocating.
///
/// A uniform probe that lands on an eligible backend is uniform among the eligible ones, and
/// so is the fallback (count them, then take the k-th), so the mix of the two is too.
pub(super) fn sample(
    rng: &mut SmallRng,
    m: Members,
    accept: &dyn Fn(BackendId) -> bool,
    skip: Option<usize>,
) -> Option<usize> {
    let n = m.len();
    if n == 0 {
        return None;
    }
    let ok = |pos: usize| Some(pos) != skip && eligible(m, pos, accept);
    for _ in 0..PROBES {
        let pos = rng.random_range(0..n);
        if ok(pos) {
            return Some(pos);
        }
    }
    let count = (0..n).filter(|&pos| ok(pos)).count();
    if count == 0 {
        return None;
    }
    let k = rng.random_range(0..count);
    (0..n).filter(|&pos| ok(pos)).nth(k)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::super::testutil::{counts, pool};
    use super::*;

    fn seeded() -> Random {
        Random::new(SmallRng::seed_from_u64(7))
    }

    #[test]
    fn spreads_evenly_over_those_up() {
        let mut backends = pool(4);
        backends[2].up = false;
        let c = counts(&mut seeded(), &backends, 10_000);
        assert_eq!(c[2], 0);
        for id in [0, 1, 3] {
            assert!((3_000..=3_667).contains(&c[id]), "{c:?}");
        }
    }

    #[test]
    fn stays_uniform_when_most_are_down() {
        let mut backends = pool(100);
        for b in &mut backends {
            b.up = false;
        }
        backends[17].up = true;
        backends[80].up = true;
        let c = counts(&mut seeded(), &backends, 10_000);
        assert_eq!(c[17] + c[80], 10_000);
        assert!((4_500..=5_500).contains(&c[17]), "{}", c[17]);
    }

    #[test]
    fn skips_backends_that_accept_refuses() {
        let backends = pool(3);
        let mut s = seeded();
        for _ in 0..100 {
            let id = s.pick(Members::all(&backends), &PickContext::default(), &|id| {
                id != 1
            });
            assert_ne!(id, Some(1));
        }
        assert_eq!(
            s.pick(Members::all(&backends), &PickContext::default(), &|id| id
                == 1),
            Some(1)
        );
    }
}
