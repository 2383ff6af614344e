//! Cost of one pick for each strategy, with a small and a large pool, all up, nothing refused.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lb::backend::Backend;
use lb::strategy::{Members, NAMES, PickContext, by_name};

fn pool(n: u32) -> Vec<Backend> {
    (0..n)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::from(0x0a00_0001 + i), 8080));
            let mut b = Backend::new(0, addr, addr.to_string(), 1 + i % 3);
            // Varied load and latency so the least-* scans do real comparisons.
            b.active = i.wrapping_mul(7919) % 13;
            b.ewma_us = Some(f64::from(200 + i.wrapping_mul(104_729) % 900));
            b
        })
        .collect()
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    for n in [3, 1000] {
        let backends = pool(n);
        // A pool's members, as lb passes them: ids into the list of every backend.
        let ids: Vec<usize> = (0..backends.len()).collect();
        let members = Members::of(&backends, &ids);
        for name in NAMES {
            let mut strategy = by_name(name, members).unwrap();
            // A different client and path each time, so the hash strategies don't hit one point.
            let mut client = 0u32;
            let paths: Vec<String> = (0..256).map(|i| format!("/api/items/{i}")).collect();
            group.bench_function(BenchmarkId::new(*name, n), |b| {
                b.iter(|| {
                    client = client.wrapping_add(1);
                    let ctx = PickContext {
                        client_ip: Some(Ipv4Addr::from(client.wrapping_mul(2_654_435_761)).into()),
                        path: paths[client as usize % paths.len()].as_bytes(),
                    };
                    strategy.pick(black_box(members), &ctx, &|_| true)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
