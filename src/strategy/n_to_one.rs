use super::{PickContext, Strategy, eligible};
use crate::backend::{Backend, BackendId};

/// Everything to the first backend that is up; the next in the list takes over when it fails.
#[derive(Debug, Default)]
pub struct NToOne;

impl Strategy for NToOne {
    fn pick(
        &mut self,
        backends: &[Backend],
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        (0..backends.len()).find(|&id| eligible(backends, id, accept))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{picks, pool};
    use super::*;

    #[test]
    fn sends_everything_to_the_first() {
        assert_eq!(picks(&mut NToOne, &pool(3), 4), [0, 0, 0, 0]);
    }

    #[test]
    fn next_takes_over_while_the_first_is_down() {
        let mut backends = pool(3);
        backends[0].up = false;
        assert_eq!(picks(&mut NToOne, &backends, 2), [1, 1]);
        backends[1].up = false;
        assert_eq!(picks(&mut NToOne, &backends, 2), [2, 2]);
        backends[0].up = true;
        assert_eq!(picks(&mut NToOne, &backends, 2), [0, 0]);
    }

    #[test]
    fn skips_backends_that_accept_refuses() {
        let backends = pool(3);
        let ctx = PickContext::default();
        assert_eq!(NToOne.pick(&backends, &ctx, &|id| id != 0), Some(1));
        assert_eq!(NToOne.pick(&backends, &ctx, &|id| id == 2), Some(2));
    }
}
