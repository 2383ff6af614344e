//! What a journal record costs: making one (the request copied in, both SipHash tags) on
//! the loop thread as each POST is taken, and reading one back at start, for a small and a
//! large request.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lb::journal::record::{self, JobRecord, Read, SipKey};

fn records(c: &mut Criterion) {
    let key = SipKey::new([7; 16]);
    let backends = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"];
    let mut group = c.benchmark_group("journal_record");
    for size in [256, 16 * 1024] {
        let request = vec![b'x'; size];
        let job = JobRecord {
            id: 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            request_id: b"8f14e45f-ceea-467f-a0e6-1c9b4f1d2a3b",
            request: &request,
            backends: &backends,
        };
        group.throughput(Throughput::Bytes(size as u64));
        let mut out = Vec::with_capacity(size + 256);
        group.bench_function(BenchmarkId::new("encode", size), |b| {
            b.iter(|| {
                out.clear();
                record::encode_job(&mut out, key, black_box(&job));
            })
        });
        group.bench_function(BenchmarkId::new("read", size), |b| {
            b.iter(|| match record::read_at(black_box(&out), 0, key) {
                Read::Record(r, next) => (black_box(r), next),
                other => panic!("{other:?}"),
            })
        });
    }
    group.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
