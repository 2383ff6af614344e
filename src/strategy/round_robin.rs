use super::{Members, PickContext, Strategy, eligible};
use crate::backend::BackendId;

/// Round-robin, weighted as in nginx and HAProxy (smooth, as nginx does it): each pick adds
/// every eligible backend's weight to its running score, takes the highest, and charges the
/// winner the total. Heavier backends win more often, their turns interleaved with the
/// others' rather than bunched; with equal weights it is a strict rotation.
#[derive(Debug)]
pub struct RoundRobin {
    /// Running score per member, by position.
    current: Vec<i64>,
}

impl RoundRobin {
    pub fn new(members: Members) -> Self {
        RoundRobin {
            current: vec![0; members.len()],
        }
    }
}

impl Strategy for RoundRobin {
    fn pick(
        &mut self,
        m: Members,
        _ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        debug_assert_eq!(self.current.len(), m.len());
        let mut total = 0;
        let mut best: Option<(usize, i64)> = None;
        for (pos, cur) in self.current.iter_mut().enumerate() {
            if !eligible(m, pos, accept) {
                continue;
            }
            let w = i64::from(m.get(pos).weight);
            *cur += w;
            total += w;
            // Strictly greater: the earlier backend wins a tie, as in nginx.
            if best.is_none_or(|(_, score)| *cur > score) {
                best = Some((pos, *cur));
            }
        }
        let (pos, _) = best?;
        self.current[pos] -= total;
        Some(m.id(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, counts, picks, pool};
    use super::*;
    use crate::backend::Backend;

    fn weighted(weights: &[u32]) -> Vec<Backend> {
        let mut backends = pool(weights.len());
        for (b, &w) in backends.iter_mut().zip(weights) {
            b.weight = w;
        }
        backends
    }

    #[test]
    fn equal_weights_rotate_in_order() {
        let backends = pool(3);
        let mut s = RoundRobin::new(Members::all(&backends));
        assert_eq!(picks(&mut s, &backends, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn three_to_one_interleaves() {
        let backends = weighted(&[3, 1]);
        let mut s = RoundRobin::new(Members::all(&backends));
        assert_eq!(picks(&mut s, &backends, 8), [0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn five_one_one_has_no_bursts() {
        let backends = weighted(&[5, 1, 1]);
        let mut s = RoundRobin::new(Members::all(&backends));
        let seq = picks(&mut s, &backends, 70);
        assert_eq!(seq[..7], [0, 0, 1, 0, 2, 0, 0]);
        // Every cycle of 7 is the same, so the heavy backend never runs more than 4 in a row
        // (2 at the end of one cycle, 2 at the start of the next), never 5.
        assert!(seq.chunks(7).all(|c| c == &seq[..7]));
        let longest = seq
            .chunk_by(|a, b| a == b)
            .map(|run| run.len())
            .max()
            .unwrap();
        assert!(longest <= 4, "{seq:?}");
    }

    #[test]
    fn shares_follow_weights() {
        let backends = weighted(&[4, 2, 1]);
        let mut s = RoundRobin::new(Members::all(&backends));
        assert_eq!(counts(&mut s, &backends, 700), [400, 200, 100]);
    }

    #[test]
    fn skips_down_and_refused() {
        let mut backends = weighted(&[3, 2, 1]);
        backends[0].up = false;
        let mut s = RoundRobin::new(Members::all(&backends));
        assert_eq!(picks(&mut s, &backends, 3), [1, 2, 1]);
        let ctx = PickContext::default();
        assert_eq!(
            s.pick(Members::all(&backends), &ctx, &|id| id != 1),
            Some(2)
        );
        assert_eq!(s.pick(Members::all(&backends), &ctx, &any), Some(1));
    }
}
