use super::{Members, PickContext, Strategy, least_from};
use crate::backend::BackendId;

/// Lowest average response time; a backend never measured goes first so it gets a sample.
/// Equal backends take turns.
#[derive(Debug, Default)]
pub struct LeastResponseTime {
    /// Where the next scan starts: just past the previous pick, so ties rotate.
    next: usize,
}

impl Strategy for LeastResponseTime {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        // `None` orders before any `Some`, which is exactly "unmeasured first".
        let pos = least_from(m, accept, self.next, |b| b.ewma_us)?;
        self.next = pos + 1;
        Some(m.id(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, picks, pool};
    use super::*;

    #[test]
    fn picks_the_fastest() {
        let mut backends = pool(3);
        backends[0].ewma_us = Some(900.0);
        backends[1].ewma_us = Some(300.0);
        backends[2].ewma_us = Some(450.0);
        assert_eq!(
            picks(&mut LeastResponseTime::default(), &backends, 3),
            [1, 1, 1]
        );
    }

    #[test]
    fn tries_unmeasured_backends_first() {
        let mut backends = pool(3);
        backends[0].ewma_us = Some(1.0);
        backends[2].ewma_us = Some(2.0);
        assert_eq!(
            picks(&mut LeastResponseTime::default(), &backends, 2),
            [1, 1]
        );
        backends[1].record_response_time(5);
        assert_eq!(picks(&mut LeastResponseTime::default(), &backends, 1), [0]);
    }

    #[test]
    fn rotates_among_ties() {
        let mut backends = pool(4);
        for b in &mut backends {
            b.ewma_us = Some(250.0);
        }
        backends[1].ewma_us = Some(800.0);
        assert_eq!(
            picks(&mut LeastResponseTime::default(), &backends, 6),
            [0, 2, 3, 0, 2, 3]
        );
    }

    #[test]
    fn skips_down_and_refused_even_when_fastest() {
        let mut backends = pool(3);
        backends[0].up = false;
        backends[1].ewma_us = Some(10.0);
        backends[2].ewma_us = Some(20.0);
        let mut s = LeastResponseTime::default();
        assert_eq!(
            s.pick(Members::all(&backends), &PickContext::default(), &any),
            Some(1)
        );
        assert_eq!(
            s.pick(Members::all(&backends), &PickContext::default(), &|id| id
                != 1),
            Some(2)
        );
    }
}
