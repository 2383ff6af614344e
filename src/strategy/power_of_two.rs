use rand::rngs::SmallRng;

use super::random::sample;
use super::{Members, PickContext, Strategy};
use crate::backend::BackendId;

/// Two distinct random eligible backends; the one with fewer active wins.
#[derive(Debug)]
pub struct PowerOfTwo {
    rng: SmallRng,
}

impl PowerOfTwo {
    pub fn new(rng: SmallRng) -> Self {
        PowerOfTwo { rng }
    }
}

impl Strategy for PowerOfTwo {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let a = sample(&mut self.rng, m, accept, None)?;
        let Some(b) = sample(&mut self.rng, m, accept, Some(a)) else {
            return Some(m.id(a));
        };
        Some(m.id(if m.get(b).active < m.get(a).active {
            b
        } else {
            a
        }))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::super::testutil::{any, counts, pool};
    use super::*;

    fn seeded() -> PowerOfTwo {
        PowerOfTwo::new(SmallRng::seed_from_u64(11))
    }

    #[test]
    fn spreads_evenly_when_load_is_equal() {
        let c = counts(&mut seeded(), &pool(4), 10_000);
        for n in c {
            assert!((2_200..=2_800).contains(&n), "{n}");
        }
    }

    #[test]
    fn the_busier_of_the_pair_loses() {
        let mut backends = pool(3);
        backends[1].active = 1;
        backends[2].active = 2;
        // Pairs {0,1} {0,2} {1,2} are equally likely; 0 wins two, 1 wins one, 2 none.
        let c = counts(&mut seeded(), &backends, 10_000);
        assert_eq!(c[2], 0, "the two picks must be distinct");
        assert!((6_267..=7_067).contains(&c[0]), "{c:?}");
        assert!((2_933..=3_733).contains(&c[1]), "{c:?}");
    }

    #[test]
    fn one_eligible_is_picked_without_a_rival() {
        let mut backends = pool(3);
        backends[0].up = false;
        backends[1].active = 50;
        let mut s = seeded();
        for _ in 0..50 {
            assert_eq!(
                s.pick(Members::all(&backends), &PickContext::default(), &|id| id
                    != 2),
                Some(1)
            );
        }
        assert_ne!(
            s.pick(Members::all(&backends), &PickContext::default(), &any),
            Some(0)
        );
    }
}
