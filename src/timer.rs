//! Hashed timer wheel for the event loop's timeouts.
//!
//! Entries live in a `Slab`, linked per slot into intrusive doubly-linked lists by slab key,
//! so insert and cancel are O(1); a generation in `TimerId` keeps stale ids harmless. Entries
//! store their absolute due tick, so long deadlines wait in their slot across rotations;
//! `expire` visits each passed slot at most once per call, and a bitmap of non-empty slots
//! lets `next_timeout` skip straight to the next slot that could hold a due entry.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use slab::Slab;

/// End-of-list marker for the intrusive links.
const NIL: usize = usize::MAX;

/// A hashed timer wheel holding values of type `T` until their deadlines pass.
pub struct TimerWheel<T> {
    entries: Slab<Entry<T>>,
    /// One list head per slot, plus a last list for entries already due when inserted.
    heads: Vec<usize>,
    /// One bit per slot, set while that slot's list is non-empty.
    occupied: Vec<u64>,
    start: Instant,
    tick_nanos: u128,
    /// Last tick already expired: every entry still in a slot has a later tick.
    current: u64,
    next_generation: NonZeroU32,
}

/// Handle to a pending timer; goes stale once the timer fires or is cancelled. Kept to
/// eight bytes, `Option` included (the generation is never 0), because every connection
/// holds one; a 32-bit generation repeats only after four billion timers, and then only
/// a handle that old for the same slab key could be mistaken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerId {
    key: u32,
    generation: NonZeroU32,
}

struct Entry<T> {
    data: T,
    /// Absolute tick (since `start`) at which the entry becomes due.
    tick: u64,
    generation: NonZeroU32,
    prev: usize,
    next: usize,
}

impl<T> TimerWheel<T> {
    /// Creates a wheel whose tick 0 is `now`.
    ///
    /// # Panics
    /// If `tick` or `slots` is zero; both are configuration bugs.
    pub fn new(tick: Duration, slots: usize, now: Instant) -> Self {
        assert!(!tick.is_zero(), "timer wheel tick must be non-zero");
        assert!(slots > 0, "timer wheel needs at least one slot");
        Self {
            entries: Slab::new(),
            heads: vec![NIL; slots + 1],
            occupied: vec![0; slots.div_ceil(64)],
            start: now,
            tick_nanos: tick.as_nanos(),
            current: 0,
            next_generation: NonZeroU32::MIN,
        }
    }

    /// Schedules `data` to fire at `deadline`; a past deadline fires on the next `expire`.
    pub fn insert(&mut self, deadline: Instant, data: T) -> TimerId {
        // Rounding up to a tick boundary means an entry never fires early.
        let nanos = deadline.saturating_duration_since(self.start).as_nanos();
        let tick = u64::try_from(nanos.div_ceil(self.tick_nanos)).unwrap_or(u64::MAX);
        let generation = self.next_generation;
        self.next_generation = generation.checked_add(1).unwrap_or(NonZeroU32::MIN);
        let list = self.list_of(tick);
        let head = self.heads[list];
        let key = self.entries.insert(Entry {
            data,
            tick,
            generation,
            prev: NIL,
            next: head,
        });
        if head == NIL {
            self.set_occupied(list, true);
        } else {
            self.entries[head].prev = key;
        }
        self.heads[list] = key;
        TimerId {
            key: key as u32,
            generation,
        }
    }

    /// Cancels a pending timer, returning its data; `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let key = id.key as usize;
        if self.entries.get(key)?.generation != id.generation {
            return None;
        }
        Some(self.remove(key))
    }

    /// Pushes onto `out` every timer whose deadline is at or before `now`, rounded to the
    /// tick: a timer may fire up to one tick late, never early. Output is in tick order
    /// except among timers sharing a tick and after a catch-up of more than one rotation.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<T>) {
        let overdue = self.slots();
        while self.heads[overdue] != NIL {
            out.push(self.remove(self.heads[overdue]));
        }
        let now_tick = self.tick_at(now);
        if now_tick <= self.current {
            return;
        }
        // After a long sleep one pass over every slot reaches every entry, so stop there.
        let steps = (now_tick - self.current).min(self.slots() as u64);
        for tick in self.current + 1..=self.current + steps {
            let mut key = self.heads[self.slot_of(tick)];
            while key != NIL {
                let entry = &self.entries[key];
                let next = entry.next;
                if entry.tick <= now_tick {
                    out.push(self.remove(key));
                }
                key = next;
            }
        }
        self.current = now_tick;
    }

    /// How long the event loop may sleep before calling `expire`: `None` when empty, else
    /// the time to the first tick boundary at which a pending timer could be due.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.entries.is_empty() {
            return None;
        }
        if self.heads[self.slots()] != NIL {
            return Some(Duration::ZERO);
        }
        // The bitmap is never empty while entries exist; the fallback only keeps this total.
        let tick = self.next_occupied_tick().unwrap_or(self.current + 1);
        let target = u128::from(tick).saturating_mul(self.tick_nanos);
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let wait = u64::try_from(target.saturating_sub(elapsed)).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(wait))
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slots(&self) -> usize {
        self.heads.len() - 1
    }

    fn slot_of(&self, tick: u64) -> usize {
        (tick % self.slots() as u64) as usize
    }

    /// The list an entry with `tick` lives on: already-due entries go to the overdue list,
    /// since their slot may not be visited again for a whole rotation.
    fn list_of(&self, tick: u64) -> usize {
        if tick <= self.current {
            self.slots()
        } else {
            self.slot_of(tick)
        }
    }

    /// Whole ticks elapsed between `start` and `now`.
    fn tick_at(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos / self.tick_nanos).unwrap_or(u64::MAX)
    }

    fn set_occupied(&mut self, list: usize, on: bool) {
        // The overdue list has no bit: `next_timeout` checks its head directly.
        if list < self.slots() {
            let bit = 1u64 << (list % 64);
            if on {
                self.occupied[list / 64] |= bit;
            } else {
                self.occupied[list / 64] &= !bit;
            }
        }
    }

    /// First tick after `current` whose slot is non-empty, scanning the bitmap a word at a time.
    fn next_occupied_tick(&self) -> Option<u64> {
        let slots = self.slots();
        let from = self.slot_of(self.current + 1);
        let words = self.occupied.len();
        let (first_word, first_bit) = (from / 64, from % 64);
        // Visit the starting word twice: its high bits first, its low (wrapped) bits last.
        (0..=words).find_map(|i| {
            let word = (first_word + i) % words;
            let bits = match i {
                0 => self.occupied[word] & (u64::MAX << first_bit),
                _ if i == words => self.occupied[word] & !(u64::MAX << first_bit),
                _ => self.occupied[word],
            };
            (bits != 0).then(|| {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                self.current + 1 + ((slot + slots - from) % slots) as u64
            })
        })
    }

    /// Unlinks and frees `key`, which must be occupied.
    fn remove(&mut self, key: usize) -> T {
        let entry = self.entries.remove(key);
        if entry.prev == NIL {
            let list = self.list_of(entry.tick);
            self.heads[list] = entry.next;
            if entry.next == NIL {
                self.set_occupied(list, false);
            }
        } else {
            self.entries[entry.prev].next = entry.next;
        }
        if entry.next != NIL {
            self.entries[entry.next].prev = entry.prev;
        }
        entry.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain<T>(wheel: &mut TimerWheel<T>, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        wheel.expire(now, &mut out);
        out
    }

    #[test]
    fn fires_in_order_and_never_early() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        for (n, delay) in [(3, 55), (1, 15), (2, 30), (4, 70)] {
            wheel.insert(t0 + ms(delay), n);
        }
        let mut fired = Vec::new();
        for step in 1..=20 {
            let now = t0 + ms(step * 5);
            for n in drain(&mut wheel, now) {
                fired.push((n, now - t0));
            }
        }
        assert_eq!(
            fired,
            vec![(1, ms(20)), (2, ms(30)), (3, ms(60)), (4, ms(70))]
        );
    }

    #[test]
    fn cancel_returns_data_and_prevents_firing() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        let keep = wheel.insert(t0 + ms(20), "keep");
        let gone = wheel.insert(t0 + ms(20), "gone");
        assert_eq!(wheel.cancel(gone), Some("gone"));
        assert_eq!(wheel.cancel(gone), None);
        assert_eq!(drain(&mut wheel, t0 + ms(100)), vec!["keep"]);
        assert_eq!(wheel.cancel(keep), None, "already fired");
        assert!(wheel.is_empty());
    }

    #[test]
    fn stale_id_does_not_cancel_reused_key() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        let old = wheel.insert(t0 + ms(20), 1);
        assert_eq!(wheel.cancel(old), Some(1));
        let new = wheel.insert(t0 + ms(20), 2);
        assert_eq!(new.key, old.key, "slab reuses the key");
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(drain(&mut wheel, t0 + ms(20)), vec![2]);
        let newer = wheel.insert(t0 + ms(40), 3);
        assert_eq!(newer.key, new.key);
        assert_eq!(wheel.cancel(new), None, "id of a fired timer is stale");
        assert_eq!(wheel.len(), 1);
    }

    #[test]
    fn deadline_beyond_one_rotation() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        // 8 slots cover 80ms; these share slot 3 across three rotations.
        wheel.insert(t0 + ms(30), "near");
        wheel.insert(t0 + ms(110), "one lap");
        wheel.insert(t0 + ms(190), "two laps");
        let mut fired = Vec::new();
        for step in 1..=20 {
            let now = t0 + ms(step * 10);
            fired.extend(drain(&mut wheel, now).into_iter().map(|n| (n, now - t0)));
        }
        assert_eq!(
            fired,
            vec![
                ("near", ms(30)),
                ("one lap", ms(110)),
                ("two laps", ms(190))
            ]
        );
    }

    #[test]
    fn long_sleep_catches_up_without_firing_early() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        for delay in [15, 95, 1_000, 4_999, 5_001, 10_000, 3_600_000] {
            wheel.insert(t0 + ms(delay), delay);
        }
        let mut fired = drain(&mut wheel, t0 + ms(5_000));
        fired.sort_unstable();
        assert_eq!(fired, vec![15, 95, 1_000, 4_999]);
        assert_eq!(wheel.len(), 3);
        assert_eq!(drain(&mut wheel, t0 + ms(5_009)), Vec::<u64>::new());
        assert_eq!(drain(&mut wheel, t0 + ms(5_010)), vec![5_001]);
        // Timers inserted after the catch-up still land on the right tick.
        wheel.insert(t0 + ms(5_030), 5_030);
        assert_eq!(drain(&mut wheel, t0 + ms(5_020)), Vec::<u64>::new());
        assert_eq!(drain(&mut wheel, t0 + ms(5_030)), vec![5_030]);
        // Ten years of missed ticks: only a capped pass over the slots finishes quickly.
        let mut fired = drain(&mut wheel, t0 + Duration::from_secs(10 * 365 * 86_400));
        fired.sort_unstable();
        assert_eq!(fired, vec![10_000, 3_600_000]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn past_deadline_fires_on_next_expire() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0 + ms(1_000));
        wheel.insert(t0, "before start");
        assert_eq!(wheel.next_timeout(t0 + ms(1_000)), Some(Duration::ZERO));
        assert_eq!(drain(&mut wheel, t0 + ms(1_000)), vec!["before start"]);
        assert_eq!(drain(&mut wheel, t0 + ms(1_500)), Vec::<&str>::new());
        // Its tick's slot was just visited; the same `now` must still fire it.
        wheel.insert(t0 + ms(1_450), "already passed");
        assert_eq!(drain(&mut wheel, t0 + ms(1_500)), vec!["already passed"]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_timeout_is_none_when_empty_and_never_too_long() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        assert_eq!(wheel.next_timeout(t0), None);
        let id = wheel.insert(t0 + ms(35), ());
        // Skips ahead to the tick the entry sits on rather than the next tick.
        assert_eq!(wheel.next_timeout(t0), Some(ms(40)));
        assert_eq!(wheel.next_timeout(t0 + ms(12)), Some(ms(28)));
        assert_eq!(wheel.next_timeout(t0 + ms(90)), Some(Duration::ZERO));
        let later = wheel.insert(t0 + ms(75), ());
        wheel.cancel(id);
        // The emptied slot no longer counts, so the wait grows to the remaining entry.
        assert_eq!(wheel.next_timeout(t0), Some(ms(80)));
        wheel.cancel(later);
        assert_eq!(wheel.next_timeout(t0), None);
        // Beyond one rotation the answer is a lower bound: its slot's first visit.
        wheel.insert(t0 + ms(1_000), ());
        let wait = wheel.next_timeout(t0).expect("non-empty");
        assert!(wait > Duration::ZERO && wait <= ms(1_000), "{wait:?}");
        // Slot search wraps past the end of the bitmap back to low slots.
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        drain(&mut wheel, t0 + ms(60));
        wheel.insert(t0 + ms(90), ());
        assert_eq!(wheel.next_timeout(t0 + ms(60)), Some(ms(30)));
    }

    #[test]
    fn next_timeout_scans_multi_word_bitmap_with_wrap() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 200, t0);
        drain(&mut wheel, t0 + ms(1_500));
        // Ticks 151..=350 map to slots 151..=199 and then wrap to 0..=150.
        for tick in [151, 199, 260, 340, 350] {
            let id = wheel.insert(t0 + TICK * tick, ());
            let expected = TICK * (tick - 150);
            assert_eq!(wheel.next_timeout(t0 + ms(1_500)), Some(expected));
            wheel.cancel(id);
        }
    }

    #[test]
    fn len_tracks_insert_cancel_and_expire() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        assert!(wheel.is_empty());
        let ids: Vec<_> = (0..10).map(|i| wheel.insert(t0 + ms(i * 10), i)).collect();
        assert_eq!(wheel.len(), 10);
        wheel.cancel(ids[9]);
        wheel.cancel(ids[9]);
        assert_eq!(wheel.len(), 9);
        assert_eq!(drain(&mut wheel, t0 + ms(40)).len(), 5);
        assert_eq!(wheel.len(), 4);
        drain(&mut wheel, t0 + ms(1_000));
        assert!(wheel.is_empty());
    }

    #[test]
    fn many_entries_fire_exactly_once_within_a_tick() {
        const N: u64 = 100_000;
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 512, t0);
        let deadline = |i: u64| t0 + ms(1_000 + (i * 7_919) % 63_000) + Duration::from_nanos(i);
        let ids: Vec<_> = (0..N).map(|i| wheel.insert(deadline(i), i)).collect();
        for id in ids.iter().step_by(3) {
            assert!(wheel.cancel(*id).is_some());
        }
        let mut fired = vec![0u32; N as usize];
        let mut out = Vec::new();
        for step in 1..=6_500 {
            let now = t0 + TICK * step;
            wheel.expire(now, &mut out);
            for i in out.drain(..) {
                assert!(deadline(i) <= now && now - deadline(i) < TICK, "timer {i}");
                fired[i as usize] += 1;
            }
        }
        assert!(wheel.is_empty());
        for (i, count) in fired.iter().enumerate() {
            assert_eq!(*count, u32::from(i % 3 != 0), "timer {i}");
        }
    }
}
