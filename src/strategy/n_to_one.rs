use super::{PickContext, Strategy, eligible};
use crate::backend::{Backend, BackendId};

/// Everything to the first backend that is up; the next in the list takes over when it fails.
#[derive(Debug, Default)]
pub struct NToOne {
    /// Ids in the configured list's order, which slot reuse may not follow.
    order: Vec<BackendId>,
}

impl NToOne {
    pub fn new(backends: &[Backend]) -> Self {
        let mut order: Vec<BackendId> = (0..backends.len()).collect();
        order.sort_by_key(|&id| backends[id].rank);
        NToOne { order }
    }
}

impl Strategy for NToOne {
    fn pick(
        &mut self,
        backends: &[Backend],
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        self.order
            .iter()
            .copied()
            .find(|&id| eligible(backends, id, accept))
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
            picks(&mut NToOne::new(&backends), &backends, 4),
            [0, 0, 0, 0]
        );
    }

    #[test]
    fn next_takes_over_while_the_first_is_down() {
        let mut backends = pool(3);
        let mut s = NToOne::new(&backends);
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
        let mut s = NToOne::new(&backends);
        assert_eq!(s.pick(&backends, &ctx, &|id| id != 0), Some(1));
        assert_eq!(s.pick(&backends, &ctx, &|id| id == 2), Some(2));
    }

    #[test]
    fn follows_the_list_order_not_the_slots_and_skips_drained() {
        let mut backends = pool(3);
        backends[0].rank = 5;
        let mut s = NToOne::new(&backends);
        assert_eq!(picks(&mut s, &backends, 2), [1, 1]);
        backends[1].role = crate::backend::Role::Drain;
        assert_eq!(picks(&mut s, &backends, 2), [2, 2]);
    }
}
