use super::ring::{Fnv, Ring};
use super::{PickContext, Strategy};
use crate::backend::{Backend, BackendId};

/// The same request path goes to the same backend while that backend is up (HTTP mode only).
#[derive(Debug)]
pub struct HashUri {
    ring: Ring,
}

impl HashUri {
    pub fn new(backends: &[Backend]) -> Self {
        HashUri {
            ring: Ring::new(backends),
        }
    }
}

impl Strategy for HashUri {
    fn pick(
        &mut self,
        backends: &[Backend],
        ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let key = Fnv::new().write(ctx.path).finish();
        self.ring.pick(key, backends, accept)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, pool};
    use super::*;

    #[test]
    fn same_path_same_backend_and_paths_spread() {
        let mut backends = pool(3);
        let mut s = HashUri::new(&backends);
        let paths: Vec<String> = (0..3000).map(|i| format!("/img/{i}.png")).collect();
        let pick = |s: &mut HashUri, backends: &[Backend], p: &str| {
            let ctx = PickContext {
                client_ip: None,
                path: p.as_bytes(),
            };
            s.pick(backends, &ctx, &any).unwrap()
        };
        let before: Vec<_> = paths.iter().map(|p| pick(&mut s, &backends, p)).collect();
        for id in 0..3 {
            let n = before.iter().filter(|&&b| b == id).count();
            assert!((850..=1150).contains(&n), "backend {id}: {n}");
        }
        backends[0].up = false;
        for (p, &was) in paths.iter().zip(&before) {
            let now = pick(&mut s, &backends, p);
            assert!(if was == 0 { now != 0 } else { now == was });
        }
    }
}
