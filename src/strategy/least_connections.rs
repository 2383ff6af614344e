use super::{Members, PickContext, Strategy, least_from};
use crate::backend::BackendId;

/// Fewest active connections or requests; equal backends take turns.
#[derive(Debug, Default)]
pub struct LeastConnections {
    /// Where the next scan starts: just past the previous pick, so ties rotate.
    next: usize,
}

impl Strategy for LeastConnections {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let pos = least_from(m, accept, self.next, |b| b.active)?;
        self.next = pos + 1;
        Some(m.id(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, picks, pool};
    use super::*;

    #[test]
    fn picks_the_backend_with_fewest_active() {
        let mut backends = pool(3);
        backends[0].active = 5;
        backends[1].active = 2;
        backends[2].active = 7;
        assert_eq!(
            picks(&mut LeastConnections::default(), &backends, 3),
            [1, 1, 1]
        );
    }

    #[test]
    fn rotates_among_ties() {
        let mut backends = pool(4);
        backends[2].active = 9;
        assert_eq!(
            picks(&mut LeastConnections::default(), &backends, 6),
            [0, 1, 3, 0, 1, 3]
        );
    }

    #[test]
    fn follows_active_as_it_changes() {
        let mut backends = pool(3);
        let mut s = LeastConnections::default();
        for _ in 0..9 {
            let id = s
                .pick(Members::all(&backends), &PickContext::default(), &any)
                .unwrap();
            backends[id].active += 1;
        }
        assert!(backends.iter().all(|b| b.active == 3));
    }

    #[test]
    fn skips_down_and_refused_even_when_least_loaded() {
        let mut backends = pool(3);
        backends[0].up = false;
        backends[2].active = 4;
        let mut s = LeastConnections::default();
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
