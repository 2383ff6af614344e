//! The consistent-hash ring behind `hash-source` and `hash-uri`.

use super::{Members, eligible};
use crate::backend::BackendId;

/// Points per backend: enough that each backend's share of the ring is within a few percent
/// of even, few enough that the ring stays small.
const POINTS_PER_BACKEND: u32 = 160;

/// Ring points to try before checking that any backend is eligible at all.
const SHORT_WALK: usize = 64;

/// FNV-1a, finished with splitmix64 because FNV alone leaves short, similar inputs (addresses
/// that differ in one digit) clustered on the ring.
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn write(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    pub(super) fn finish(self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Points hashed from each listed member's label and replica number, sorted by hash. A key
/// maps to the first point at or after its own hash whose backend is eligible, so taking a
/// backend out moves only the keys that were on it. Nothing depends on ids or list order:
/// every lb with the same backends makes the same choice.
#[derive(Debug)]
pub(super) struct Ring {
    /// Hash and member position.
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub(super) fn new(m: Members) -> Self {
        let mut points = Vec::with_capacity(m.len() * POINTS_PER_BACKEND as usize);
        for pos in 0..m.len() {
            let b = m.get(pos);
            if !b.role.is_member() {
                continue;
            }
            for replica in 0..POINTS_PER_BACKEND {
                let h = Fnv::new()
                    .write(b.label.as_bytes())
                    .write(b"#")
                    .write(&replica.to_le_bytes())
                    .finish();
                points.push((h, pos));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    pub(super) fn pick(
        &self,
        key: u64,
        m: Members,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let start = self.points.partition_point(|&(h, _)| h < key);
        let (before, after) = self.points.split_at(start);
        let mut walk = after.iter().chain(before).map(|&(_, pos)| pos);
        let ok = |pos: usize| eligible(m, pos, accept);
        if let Some(pos) = walk.by_ref().take(SHORT_WALK).find(|&pos| ok(pos)) {
            return Some(m.id(pos));
        }
        // Only a long walk pays for this pass over the backends, and it saves walking the whole
        // ring (points × backends) on every request while all of them are down.
        if !(0..m.len()).any(ok) {
            return None;
        }
        walk.find(|&pos| ok(pos)).map(|pos| m.id(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, pool};
    use super::*;

    fn keys() -> impl Iterator<Item = u64> {
        (0..3000u32).map(|i| Fnv::new().write(&i.to_le_bytes()).finish())
    }

    #[test]
    fn same_key_same_backend() {
        let backends = pool(5);
        let ring = Ring::new(Members::all(&backends));
        for k in keys().take(100) {
            let first = ring.pick(k, Members::all(&backends), &any);
            assert!(first.is_some());
            assert_eq!(ring.pick(k, Members::all(&backends), &any), first);
            assert_eq!(
                Ring::new(Members::all(&backends)).pick(k, Members::all(&backends), &any),
                first
            );
        }
    }

    #[test]
    fn spreads_keys_within_15_percent_of_even() {
        let backends = pool(3);
        let ring = Ring::new(Members::all(&backends));
        let mut c = [0; 3];
        for k in keys() {
            c[ring.pick(k, Members::all(&backends), &any).unwrap()] += 1;
        }
        assert!(c.iter().all(|n| (850..=1150).contains(n)), "{c:?}");
    }

    #[test]
    fn downing_one_moves_only_its_keys() {
        let mut backends = pool(3);
        let ring = Ring::new(Members::all(&backends));
        let before: Vec<_> = keys()
            .map(|k| ring.pick(k, Members::all(&backends), &any).unwrap())
            .collect();
        backends[1].up = false;
        let mut moved = 0;
        for (k, &was) in keys().zip(&before) {
            let now = ring.pick(k, Members::all(&backends), &any).unwrap();
            if was == 1 {
                assert_ne!(now, 1);
                moved += 1;
            } else {
                assert_eq!(now, was);
            }
        }
        assert!((850..=1150).contains(&moved), "{moved}");
        // Refusing through `accept` (a retry) behaves the same as down.
        backends[1].up = true;
        for (k, &was) in keys().zip(&before) {
            let now = ring
                .pick(k, Members::all(&backends), &|id| id != 1)
                .unwrap();
            assert!(now == was || was == 1);
        }
    }

    #[test]
    fn a_lone_survivor_takes_every_key() {
        let mut backends = pool(50);
        for b in &mut backends {
            b.up = false;
        }
        backends[37].up = true;
        let ring = Ring::new(Members::all(&backends));
        assert!(keys().all(|k| ring.pick(k, Members::all(&backends), &any) == Some(37)));
        assert!(keys().all(|k| {
            ring.pick(k, Members::all(&backends), &|id| id != 37)
                .is_none()
        }));
    }

    #[test]
    fn the_choice_depends_on_labels_not_on_slots() {
        let backends = pool(4);
        let mut shuffled = pool(4);
        shuffled.reverse();
        shuffled[0].role = crate::backend::Role::Vacant;
        let mut vacant = pool(1);
        vacant[0].label = "gone".into();
        vacant[0].role = crate::backend::Role::Vacant;
        shuffled.push(vacant.remove(0));
        let (a, b) = (
            Ring::new(Members::all(&backends)),
            Ring::new(Members::all(&shuffled)),
        );
        for k in keys().take(500) {
            let x = a
                .pick(k, Members::all(&backends), &any)
                .map(|id| &backends[id].label);
            let y = b
                .pick(k, Members::all(&shuffled), &any)
                .map(|id| &shuffled[id].label);
            if x.is_some_and(|l| *l != shuffled[0].label) {
                assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn keys_wrap_past_the_last_point() {
        let backends = pool(2);
        let ring = Ring::new(Members::all(&backends));
        assert_eq!(
            ring.pick(u64::MAX, Members::all(&backends), &any),
            ring.pick(0, Members::all(&backends), &any)
        );
    }
}
