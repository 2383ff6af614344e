use super::ring::{Fnv, Ring};
use super::{Members, PickContext, Strategy};
use crate::backend::BackendId;

/// The same request path goes to the same backend while that backend is up (HTTP mode only).
#[derive(Debug)]
pub struct HashUri {
    ring: Ring,
}

impl HashUri {
    pub fn new(m: Members) -> Self {
        HashUri { ring: Ring::new(m) }
    }
}

impl Strategy for HashUri {
    fn pick(
        &mut self,
        m: Members,
        ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let key = Fnv::new().write(ctx.path).finish();
        self.ring.pick(key, m, accept)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{any, pool};
    use super::*;
    use crate::backend::Backend;

    #[test]
    fn same_path_same_backend_and_paths_spread() {
        let mut backends = pool(3);
        let mut s = HashUri::new(Members::all(&backends));
        let paths: Vec<String> = (0..3000).map(|i| format!("/img/{i}.png")).collect();
        let pick = |s: &mut HashUri, backends: &[Backend], p: &str| {
            let ctx = PickContext {
                client_ip: None,
                path: p.as_bytes(),
            };
            s.pick(Members::all(backends), &ctx, &any).unwrap()
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
