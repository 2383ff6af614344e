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
