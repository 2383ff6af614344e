use super::{Members, PickContext, Strategy, eligible};
use crate::backend::BackendId;

/// Everything to the first backend that is up; the next in the list takes over when it fails.
#[derive(Debug, Default)]
pub struct NToOne {
    /// Ids in the configured list's order, which slot reuse may not follow.
    /// Member positions in list order.
    order: Vec<usize>,
}

impl NToOne {
    pub fn new(m: Members) -> Self {
        let mut order: Vec<usize> = (0..m.len()).collect();
        order.sort_by_key(|&pos| m.get(pos).rank);
        NToOne { order }
    }
}

impl Strategy for NToOne {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        self.order
            .iter()
            .copied()
            .find(|&pos| eligible(m, pos, accept))
            .map(|pos| m.id(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{picks, pool};
    use super::*;

    #[test]
    fn sends_everything_to_the_first() {
        let backends = pool(3);
        assert_eq!(
            picks(&mut NToOne::new(Members::all(&backends)), &backends, 4),
            [0, 0, 0, 0]
        );
    }

    #[test]
    fn next_takes_over_while_the_first_is_down() {
        let mut backends = pool(3);
        let mut s = NToOne::new(Members::all(&backends));
        backends[0].up = false;
        assert_eq!(picks(&mut s, &backends, 2), [1, 1]);
        backends[1].up = false;
        assert_eq!(picks(&mut s, &backends, 2), [2, 2]);
        backends[0].up = true;
        assert_eq!(picks(&mut s, &backends, 2), [0, 0]);
    }

    #[test]
    fn skips_backends_that_accept_refuses() {
        let backends = pool(3);
        let ctx = PickContext::default();
        let mut s = NToOne::new(Members::all(&backends));
        assert_eq!(
            s.pick(Members::all(&backends), &ctx, &|id| id != 0),
            Some(1)
        );
        assert_eq!(
            s.pick(Members::all(&backends), &ctx, &|id| id == 2),
            Some(2)
        );
    }

    #[test]
    fn follows_the_list_order_not_the_slots_and_skips_drained() {
        let mut backends = pool(3);
        backends[0].rank = 5;
        let mut s = NToOne::new(Members::all(&backends));
        assert_eq!(picks(&mut s, &backends, 2), [1, 1]);
        backends[1].role = crate::backend::Role::Drain;
        assert_eq!(picks(&mut s, &backends, 2), [2, 2]);
    }
}
