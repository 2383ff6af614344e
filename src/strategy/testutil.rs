//! Fixtures shared by the strategy tests.

use std::net::SocketAddr;

use super::{Members, PickContext, Strategy};
use crate::backend::{Backend, BackendId};

/// `n` backends, all up, weight 1, idle, labelled by address.
pub(crate) fn pool(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| {
            let addr = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 8080));
            let mut b = Backend::new(0, addr, addr.to_string(), 1);
            b.rank = i;
            b
        })
        .collect()
}

pub(crate) fn any(_: BackendId) -> bool {
    true
}

/// The next `n` picks with an empty context, panicking if any is `None`.
pub(crate) fn picks(s: &mut dyn Strategy, backends: &[Backend], n: usize) -> Vec<BackendId> {
    (0..n)
        .map(|_| {
            s.pick(Members::all(backends), &PickContext::default(), &any)
                .unwrap()
        })
        .collect()
}

/// How many of `n` picks went to each backend.
pub(crate) fn counts(s: &mut dyn Strategy, backends: &[Backend], n: usize) -> Vec<usize> {
    let mut c = vec![0; backends.len()];
    for id in picks(s, backends, n) {
        c[id] += 1;
    }
    c
}
