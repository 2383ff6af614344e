use std::net::IpAddr;

use super::ring::{Fnv, Ring};
use super::{Members, PickContext, Strategy};
use crate::backend::BackendId;

/// The same client address goes to the same backend while that backend is up.
#[derive(Debug)]
pub struct HashSource {
    ring: Ring,
}

impl HashSource {
    pub fn new(m: Members) -> Self {
        HashSource { ring: Ring::new(m) }
    }
}

impl Strategy for HashSource {
    fn pick(
        &mut self,
        m: Members,
        ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId> {
        let key = match ctx.client_ip {
            Some(IpAddr::V4(ip)) => Fnv::new().write(&ip.octets()),
            Some(IpAddr::V6(ip)) => Fnv::new().write(&ip.octets()),
            None => Fnv::new(),
        };
        self.ring.pick(key.finish(), m, accept)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::super::testutil::{any, pool};
    use super::*;

    fn from(ip: IpAddr) -> PickContext<'static> {
        PickContext {
            client_ip: Some(ip),
            path: b"",
        }
    }

    fn client(i: u32) -> PickContext<'static> {
        from(Ipv4Addr::from(0x0a00_0000 + i).into())
    }

    #[test]
    fn same_client_same_backend() {
        let backends = pool(4);
        let mut s = HashSource::new(Members::all(&backends));
        for i in 0..50 {
            let first = s.pick(Members::all(&backends), &client(i), &any);
            assert!(first.is_some());
            assert_eq!(s.pick(Members::all(&backends), &client(i), &any), first);
        }
        let v6 = from(Ipv6Addr::LOCALHOST.into());
        assert_eq!(
            s.pick(Members::all(&backends), &v6, &any),
            s.pick(Members::all(&backends), &v6, &any)
        );
        let none = PickContext::default();
        assert_eq!(
            s.pick(Members::all(&backends), &none, &any),
            s.pick(Members::all(&backends), &none, &any)
        );
    }

    #[test]
    fn spreads_clients_and_moves_only_the_downed_backends_share() {
        let mut backends = pool(3);
        let mut s = HashSource::new(Members::all(&backends));
        let before: Vec<_> = (0..3000)
            .map(|i| s.pick(Members::all(&backends), &client(i), &any).unwrap())
            .collect();
        for id in 0..3 {
            let n = before.iter().filter(|&&b| b == id).count();
            assert!((850..=1150).contains(&n), "backend {id}: {n}");
        }
        backends[2].up = false;
        for (i, &was) in (0..3000).zip(&before) {
            let now = s.pick(Members::all(&backends), &client(i), &any).unwrap();
            assert!(if was == 2 { now != 2 } else { now == was });
        }
    }
}
