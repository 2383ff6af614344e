//! Owed POST copies in PostgreSQL (`--journal postgres://...`): the loop's side. A turn's
//! records are one batch; the store thread (`thread.rs`) commits every batch made while
//! it was busy in one transaction (`write.rs`) and rings the loop, which only then lets
//! the copies of those jobs go out and their answers through. So a copy reaches a backend
//! only once its record is committed, and a client hears of a delivery only then.
//!
//! While the database cannot be reached, new POSTs are refused at once and nothing is
//! queued; the records of copies finishing meanwhile wait in memory and are committed once
//! the thread has reached it again. Rows are keyed by the instance (`connect.rs`), and an
//! lb that starts resumes what its instance still owes (`replay.rs`), and what instances
//! whose lease ran out owed (`lease.rs`). The tables are made and migrated by lb
//! (`schema.rs`). Runtime API changes go into worker 0's batches, and its thread reads
//! those of the other instances (`changes.rs`) and the cluster view (`follow.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{error, info, warn};

use super::cluster::Cluster;
use super::{BackendChange, Store, Writer};
use crate::journal::{Done, JobRecord, Outcome, Replayed, Stats, Ticket, Uncarried};

mod changes;
mod connect;
mod follow;
mod hold;
mod lease;
mod replay;
mod schema;
mod thread;
mod view;
mod write;

use connect::{Target, Why};
use hold::Held;
use thread::{Batch, News, Op, Thread};

/// A commit unanswered this long means the database is unreachable in all but name: new
/// POSTs are refused until it answers.
const STALL: Duration = Duration::from_secs(2);
/// How long lb, exiting, waits for its last records to be committed.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

pub struct Postgres {
    target: Target,
    thread: Option<Thread>,
    /// The batch the next record goes into.
    batch: u64,
    /// Records of closed batches not yet handed to the thread, and the last such batch.
    queued: Vec<Op>,
    queued_upto: Option<u64>,
    /// The records of the open batch.
    pending: Vec<Op>,
    /// Finished copies held until the other copies of their job finish (`hold.rs`).
    held: Held,
    /// The batch in the thread: since when, and its records to send again should it fail
    /// (`Op::if_failed`: a failed job is refused to its client, and withdrawn).
    in_flight: Option<(Instant, Vec<Op>)>,
    /// Why the database cannot be used, until the thread reaches it again.
    down: Option<String>,
    failed_tries: u64,
    /// The commit in flight is overdue (`STALL`), and that was said.
    stalled: bool,
    /// Jobs taken over from instances whose lease ran out, to be resumed.
    claimed: Vec<Replayed>,
    /// Worker 0's: the id after which its thread reads other instances' changes.
    follow: Option<i64>,
    /// Changes other instances made, to be applied, with their makers' names.
    changes: Vec<(String, BackendChange)>,
    /// Worker 0's: the instances sharing the store, as last read.
    cluster: Option<Cluster>,
    done: VecDeque<Done>,
    stats: Stats,
}

/// Reaches the database at `url`, makes or migrates its tables, claims this instance's
/// name (fencing off any earlier holder) with `address`, where this lb listens, and reads
/// back what the instance owes, dealt round robin among `writers` workers. It runs on a
/// thread of its own, so that no PostgreSQL client ever runs on a loop's thread.
pub fn open(url: &str, writers: usize, address: &str) -> Result<Vec<Writer>, String> {
    let mut target = Target::parse(url)?;
    target.address = address.to_string();
    let opening = target.clone();
    let owed = std::thread::Builder::new()
        .name("lb-store-open".into())
        .spawn(move || {
            let mut client = opening.connect()?;
            schema::migrate(&mut client, &opening.shown)?;
            let epoch = lease::claim(&mut client, &opening).map_err(|e| {
                format!(
                    "PostgreSQL at {}: cannot claim instance {}: {}",
                    opening.shown,
                    opening.instance,
                    Why(&e)
                )
            })?;
            if let Ok(mut claimed) = opening.epoch.lock() {
                *claimed = epoch;
            }
            let newest = changes::newest(&mut client).map_err(|e| {
                format!(
                    "PostgreSQL at {}: cannot read lb_changes: {}",
                    opening.shown,
                    Why(&e)
                )
            })?;
            let owed = replay::owed(&mut client, &opening.instance, &opening.shown)?;
            Ok::<_, String>((owed, newest))
        })
        .map_err(|e| format!("cannot start the store thread: {e}"))?
        .join()
        .map_err(|_| "the store thread failed while opening the store".to_string())??;
    let (owed, newest) = owed;
    info!(
        "PostgreSQL at {} (schema version {}, instance {}): {} writes still owed are resumed",
        target.shown,
        schema::current(),
        target.instance,
        owed.len()
    );
    let writers = writers.max(1);
    let mut shares: Vec<Vec<_>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, job) in owed.into_iter().enumerate() {
        shares[i % writers].push(job);
    }
    // Worker 0, whose admin API applies changes, follows the other instances' changes,
    // from those made after this start: the file is what this lb runs until then.
    Ok(shares
        .into_iter()
        .enumerate()
        .map(|(i, owed)| {
            let follow = (i == 0).then_some(newest);
            Writer {
                store: Box::new(Postgres::new(target.clone(), owed.len() as u64, follow)),
                owed,
            }
        })
        .collect())
}

impl Postgres {
    fn new(target: Target, replayed: u64, follow: Option<i64>) -> Postgres {
        Postgres {
            target,
            thread: None,
            batch: 0,
            queued: Vec::new(),
            queued_upto: None,
            pending: Vec::new(),
            held: Held::default(),
            in_flight: None,
            down: None,
            failed_tries: 0,
            stalled: false,
            claimed: Vec::new(),
            follow,
            changes: Vec::new(),
            cluster: None,
            done: VecDeque::new(),
            stats: Stats {
                replayed,
                ..Stats::default()
            },
        }
    }

    /// Gives the thread what is queued, unless it is busy or the database is down (then
    /// the thread is reaching for it on its own, and says when it has).
    fn hand_to_thread(&mut self) {
        let Some(thread) = &self.thread else {
            return;
        };
        if self.in_flight.is_some() || self.down.is_some() || self.queued.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.queued);
        let kept = ops.iter().map(Op::if_failed).collect();
        let upto = self.queued_upto.take();
        match thread.send(Batch { upto, ops }) {
            Ok(()) => self.in_flight = Some((Instant::now(), kept)),
            Err(why) => self.committed(upto, Err(why), Duration::ZERO, kept),
        }
    }

    fn news(&mut self, news: News) {
        match news {
            News::Committed { upto, result, took } => {
                if std::mem::take(&mut self.stalled) {
                    info!(
                        "PostgreSQL at {} answered a commit after {took:?}; new POSTs are \
                         taken again",
                        self.target.shown
                    );
                }
                let kept = self.in_flight.take().map(|(_, k)| k).unwrap_or_default();
                self.committed(upto, result, took, kept);
            }
            News::Refused(why) => self.down = Some(why),
            News::TookOver(jobs) => {
                self.stats.replayed += jobs.len() as u64;
                self.claimed.extend(jobs);
            }
            News::Changes(changes) => self.changes.extend(changes),
            News::Cluster(cluster) => self.cluster = Some(cluster),
            News::Reachable => {
                if self.down.take().is_some() {
                    info!(
                        "PostgreSQL at {} reached again after {} failed tries; new POSTs are \
                         taken again",
                        self.target.shown, self.failed_tries
                    );
                    self.failed_tries = 0;
                }
            }
        }
    }

    fn committed(
        &mut self,
        upto: Option<u64>,
        result: Result<(), String>,
        took: Duration,
        kept: Vec<Op>,
    ) {
        match &result {
            Ok(()) => {
                self.stats.syncs += 1;
                self.stats.sync_latency.observe(took);
            }
            Err(why) => {
                self.stats.failures += 1;
                self.failed_tries += 1;
                if self.down.is_none() {
                    error!(
                        "{why}; new POSTs get 503 until it can be reached again (GETs go on; \
                         writes already acknowledged stay owed and are delivered)"
                    );
                }
                self.down = Some(why.clone());
                for op in &kept {
                    if let Op::Withdrawn { id } = op {
                        self.held.forget(*id);
                    }
                }
                // Finished copies and changes are recorded once it is back, before the
                // newer records.
                let later = std::mem::take(&mut self.queued);
                self.queued = kept;
                self.queued.extend(later);
                return self.fail_queued(upto);
            }
        }
        if let Some(batch) = upto {
            self.done.push_back(Done {
                batch,
                result,
                durable: true,
                uncarried: Vec::new(),
            });
        }
    }

    /// The database is down: the jobs of the batches up to `upto` and of those queued are
    /// refused to their clients at once (none of their copies went out), rather than wait
    /// for it; the finished copies and changes stay queued.
    fn fail_queued(&mut self, upto: Option<u64>) {
        let Some(why) = self.down.clone() else {
            return;
        };
        for op in &self.queued {
            if let Op::Job { id, .. } = op {
                self.held.forget(*id);
            }
        }
        self.queued.retain(Op::kept);
        if let Some(batch) = self.queued_upto.take().or(upto) {
            self.done.push_back(Done {
                batch,
                result: Err(why),
                durable: true,
                uncarried: Vec::new(),
            });
        }
    }

    fn add(&mut self, op: Op) {
        self.stats.records += 1;
        self.pending.push(op);
    }
}

impl Store for Postgres {
    fn start(&mut self, wake: Box<dyn Fn() + Send>) -> Result<(), String> {
        if self.thread.is_none() {
            self.thread = Some(Thread::spawn(self.target.clone(), wake, self.follow)?);
        }
        Ok(())
    }

    /// An id whose stored bytes (`to_le_bytes`) begin with the time in microseconds, big
    /// endian, then 64 random bits: ids compare as bytes in the order they were made, so
    /// a new job's key goes on the primary key's rightmost leaf, which PostgreSQL keeps at
    /// hand, rather than on a leaf of its own anywhere in the index. PostgreSQL's CPU per
    /// POST was a fifth lower than with 128 random bits (journal_bench, alternating).
    fn next_id(&mut self) -> u128 {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&micros.to_be_bytes());
        bytes[8..].copy_from_slice(&rand::random::<u64>().to_le_bytes());
        u128::from_le_bytes(bytes)
    }

    fn refusing(&self, now: Instant) -> Option<String> {
        if let Some(why) = &self.down {
            return Some(why.clone());
        }
        let (since, _) = self.in_flight.as_ref()?;
        (now.saturating_duration_since(*since) > STALL).then(|| {
            format!(
                "PostgreSQL at {} has not answered a commit for {STALL:?}",
                self.target.shown
            )
        })
    }

    fn failing(&self) -> bool {
        self.down.is_some()
    }

    fn append(&mut self, job: &JobRecord) -> Ticket {
        self.stats.bytes += job.request.len() as u64;
        self.add(Op::Job {
            id: job.id,
            request_id: job.request_id.to_vec(),
            request: job.request.to_vec(),
            backends: job.backends.iter().map(|b| b.to_string()).collect(),
        });
        self.held.owes(job.id, job.backends.len());
        Ticket {
            batch: self.batch,
            segment: 0,
        }
    }

    fn carry(&mut self, job: &JobRecord, _from: u64) -> Ticket {
        self.append(job)
    }

    fn record(&mut self, id: u128, backend: &str, outcome: Outcome) {
        self.stats.records += 1;
        let op = Op::Finished {
            id,
            backend: backend.to_string(),
            given_up: outcome == Outcome::Spent,
        };
        self.held
            .finished(id, op, Instant::now(), &mut self.pending);
    }

    fn finished(&mut self, _segment: u64) {}

    fn uncarried(&mut self, _u: Uncarried, _live: bool) {}

    fn carry_due(&self, _now: Instant) -> Option<u64> {
        None
    }

    fn end_turn(&mut self) {
        self.held.release_due(Instant::now(), &mut self.pending);
        if !self.pending.is_empty() {
            self.queued.append(&mut self.pending);
            self.queued_upto = Some(self.batch);
            self.batch += 1;
        }
        self.fail_queued(None);
        self.hand_to_thread();
        let overdue = self
            .in_flight
            .as_ref()
            .map(|(since, _)| since.elapsed() > STALL);
        if overdue == Some(true) && !std::mem::replace(&mut self.stalled, true) {
            warn!(
                "PostgreSQL at {} has not answered a commit for {STALL:?}; new POSTs get 503 \
                 until it does (GETs go on)",
                self.target.shown
            );
        }
    }

    fn poll_thread(&mut self) {
        while let Some(news) = self.thread.as_ref().and_then(Thread::try_recv) {
            self.news(news);
        }
        self.hand_to_thread();
    }

    fn take_done(&mut self) -> Option<Done> {
        self.done.pop_front()
    }

    fn take_claimed(&mut self) -> Vec<Replayed> {
        std::mem::take(&mut self.claimed)
    }

    fn share(&mut self, change: BackendChange) {
        self.add(Op::Change(change));
    }

    fn take_changes(&mut self) -> Vec<(String, BackendChange)> {
        std::mem::take(&mut self.changes)
    }

    fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    fn due(&self) -> Option<Instant> {
        self.held.due()
    }

    fn flush(&mut self) {
        self.held.release_all(&mut self.pending);
        self.end_turn();
        let end = Instant::now() + FLUSH_WAIT;
        while self.in_flight.is_some() || (!self.queued.is_empty() && self.down.is_none()) {
            let left = end.saturating_duration_since(Instant::now());
            match self.thread.as_ref().and_then(|t| t.recv(left)) {
                Some(news) => self.news(news),
                None => break,
            }
            self.hand_to_thread();
        }
        if !self.queued.is_empty() || self.in_flight.is_some() {
            warn!(
                "PostgreSQL at {}: the last records could not be committed; the copies they \
                 finished will be sent again by the next start (backends drop repeats)",
                self.target.shown
            );
        }
        self.done.clear();
    }

    fn bytes_on_disk(&self) -> u64 {
        0
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}
