use super::{PickContext, Strategy, eligible};
use crate::backend::{Backend, BackendId};

/// Strict rotation over the backends that are up.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl Strategy for RoundRobin {
    fn pick(
        &mut self,
        backends: &[Backend],
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let n = backends.len();
        for i in 0..n {
            let id = (self.next + i) % n;
            if eligible(backends, id, accept) {
                self.next = (id + 1) % n;
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, picks, pool};
    use super::*;

    #[test]
    fn rotates_in_order() {
        let backends = pool(3);
        assert_eq!(
            picks(&mut RoundRobin::default(), &backends, 7),
            [0, 1, 2, 0, 1, 2, 0]
        );
    }

    #[test]
    fn skips_backends_that_are_down() {
        let mut backends = pool(4);
        backends[1].up = false;
        assert_eq!(
            picks(&mut RoundRobin::default(), &backends, 6),
            [0, 2, 3, 0, 2, 3]
        );
    }

    #[test]
    fn skips_backends_that_accept_refuses() {
        let backends = pool(3);
        let mut s = RoundRobin::default();
        let ctx = PickContext::default();
        assert_eq!(s.pick(&backends, &ctx, &|id| id != 0), Some(1));
        assert_eq!(s.pick(&backends, &ctx, &|id| id != 2), Some(0));
        assert_eq!(s.pick(&backends, &ctx, &any), Some(1));
    }
}
