use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lb::timer::TimerWheel;

const TICK: Duration = Duration::from_millis(10);
const SLOTS: usize = 512;
const PENDING: usize = 100_000;

/// Deterministic xorshift so runs are comparable without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A retry-style delay spread uniformly over 1-64 s.
    fn delay(&mut self) -> Duration {
        Duration::from_millis(1_000 + self.next() % 63_000)
    }
}

/// A wheel holding `PENDING` timers spread over 1-64 s past `now`.
fn loaded_wheel(now: Instant, rng: &mut Rng) -> TimerWheel<u64> {
    let mut wheel = TimerWheel::new(TICK, SLOTS, now);
    for i in 0..PENDING as u64 {
        wheel.insert(now + rng.delay(), i);
    }
    wheel
}

fn insert_cancel(c: &mut Criterion) {
    let now = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut wheel = loaded_wheel(now, &mut rng);
    c.bench_function("insert+cancel (100k pending)", |b| {
        b.iter(|| {
            let id = wheel.insert(now + Duration::from_secs(5), 7);
            black_box(wheel.cancel(black_box(id)))
        })
    });
}

fn insert_expire(c: &mut Criterion) {
    let mut now = Instant::now();
    let mut wheel = TimerWheel::new(TICK, SLOTS, now);
    let mut out = Vec::new();
    c.bench_function("insert then expire next tick", |b| {
        b.iter(|| {
            wheel.insert(now + TICK, 7u64);
            now += TICK;
            wheel.expire(now, &mut out);
            black_box(out.len());
            out.clear();
        })
    });
}

fn expire_tick_loaded(c: &mut Criterion) {
    let mut now = Instant::now();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut wheel = loaded_wheel(now, &mut rng);
    let mut out = Vec::new();
    c.bench_function("expire one tick (100k pending, 1-64 s)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                now += TICK;
                let started = Instant::now();
                wheel.expire(now, &mut out);
                total += started.elapsed();
                // Re-arm what fired, untimed, so the wheel stays at 100k pending.
                for data in out.drain(..) {
                    wheel.insert(now + rng.delay(), data);
                }
            }
            total
        })
    });
}

criterion_group!(benches, insert_cancel, insert_expire, expire_tick_loaded);
criterion_main!(benches);
