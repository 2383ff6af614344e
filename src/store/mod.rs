//! Where owed POST copies are kept: one interface, two places. The directory journal
//! (`crate::journal`) and PostgreSQL (`postgres/`) both take a turn's records on the loop,
//! make them durable on a thread of their own and ring the loop's doorbell when done, so
//! the fan-out code does not know which it has and the loop never waits for a disk or a
//! network. Instances sharing a PostgreSQL store also tell each other of their runtime API
//! changes through it (`change.rs`), and see each other (`cluster.rs`).

use std::time::Instant;

use crate::config::{JournalAt, JournalSync};
use crate::journal::{self, Done, JobRecord, Journal, Outcome, Replayed, Stats, Ticket, Uncarried};

pub mod change;
pub mod cluster;
pub mod postgres;

pub use change::BackendChange;

/// What the fan-out (and, for shared changes, the admin API) asks of a store; the
/// directory journal's API, which PostgreSQL implements too. A store without segments
/// (PostgreSQL) has nothing to carry forward: `carry_due` is always `None` there, and
/// `finished`, `uncarried` do nothing.
pub trait Store: Send {
    /// Starts the store's thread, which calls `wake` after each batch it finished.
    fn start(&mut self, wake: Box<dyn Fn() + Send>) -> Result<(), String>;
    fn next_id(&mut self) -> u128;
    /// Why new jobs should be refused now, if they should.
    fn refusing(&self, now: Instant) -> Option<String>;
    fn failing(&self) -> bool;
    fn append(&mut self, job: &JobRecord) -> Ticket;
    fn carry(&mut self, job: &JobRecord, from: u64) -> Ticket;
    fn record(&mut self, id: u128, backend: &str, outcome: Outcome);
    fn finished(&mut self, segment: u64);
    fn uncarried(&mut self, u: Uncarried, live: bool);
    fn carry_due(&self, now: Instant) -> Option<u64>;
    fn end_turn(&mut self);
    fn poll_thread(&mut self);
    fn take_done(&mut self) -> Option<Done>;
    /// Jobs this store took over from another lb since the last call, to be resumed.
    fn take_claimed(&mut self) -> Vec<Replayed> {
        Vec::new()
    }
    /// Tells the other instances sharing the store of a change this one's API made; a
    /// directory is one machine's, with no one to tell.
    fn share(&mut self, _change: BackendChange) {}
    /// The changes other instances sharing the store made since the last call, each with
    /// the name of the instance that made it.
    fn take_changes(&mut self) -> Vec<(String, BackendChange)> {
        Vec::new()
    }
    /// The instances sharing the store, as last read (worker 0's store only).
    fn cluster(&self) -> Option<&cluster::Cluster> {
        None
    }
    /// When the store next has records to let go of by itself, with no other event (the
    /// PostgreSQL store's held copies): the loop takes a turn by then.
    fn due(&self) -> Option<Instant> {
        None
    }
    fn flush(&mut self);
    fn bytes_on_disk(&self) -> u64;
    fn stats(&self) -> &Stats;
}

impl Store for Journal {
    fn start(&mut self, wake: Box<dyn Fn() + Send>) -> Result<(), String> {
        Journal::start(self, wake)
    }
    fn next_id(&mut self) -> u128 {
        Journal::next_id(self)
    }
    fn refusing(&self, now: Instant) -> Option<String> {
        Journal::refusing(self, now)
    }
    fn failing(&self) -> bool {
        Journal::failing(self)
    }
    fn append(&mut self, job: &JobRecord) -> Ticket {
        Journal::append(self, job)
    }
    fn carry(&mut self, job: &JobRecord, from: u64) -> Ticket {
        Journal::carry(self, job, from)
    }
    fn record(&mut self, id: u128, backend: &str, outcome: Outcome) {
        Journal::record(self, id, backend, outcome)
    }
    fn finished(&mut self, segment: u64) {
        Journal::finished(self, segment)
    }
    fn uncarried(&mut self, u: Uncarried, live: bool) {
        Journal::uncarried(self, u, live)
    }
    fn carry_due(&self, now: Instant) -> Option<u64> {
        Journal::carry_due(self, now)
    }
    fn end_turn(&mut self) {
        Journal::end_turn(self)
    }
    fn poll_thread(&mut self) {
        Journal::poll_thread(self)
    }
    fn take_done(&mut self) -> Option<Done> {
        Journal::take_done(self)
    }
    fn flush(&mut self) {
        Journal::flush(self)
    }
    fn bytes_on_disk(&self) -> u64 {
        Journal::bytes_on_disk(self)
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// One worker's store, and the jobs it resumes.
pub struct Writer {
    pub store: Box<dyn Store>,
    pub owed: Vec<Replayed>,
}

impl From<journal::Writer> for Writer {
    fn from(w: journal::Writer) -> Writer {
        Writer {
            store: w.journal,
            owed: w.owed,
        }
    }
}

/// What opening a store came to.
pub enum Opened {
    /// One writer per worker, each with its share of the jobs still owed.
    Ready(Vec<Writer>),
    /// Another lb holds the journal directory (why, naming its pid).
    Held(String),
}

/// Opens `at` for `writers` workers: a directory is locked and read back, a database is
/// reached, its schema made or migrated, and this instance's owed copies read back. A
/// database also records `address`, where this lb listens for clients, for the others.
pub fn open(
    at: &JournalAt,
    mode: JournalSync,
    writers: usize,
    address: &str,
) -> Result<Opened, String> {
    match at {
        JournalAt::Dir(dir) => Ok(match Journal::open(dir, mode, writers)? {
            journal::Opened::Ready(w) => Opened::Ready(w.into_iter().map(Writer::from).collect()),
            journal::Opened::Held(why) => Opened::Held(why),
        }),
        JournalAt::Postgres(url) => postgres::open(url, writers, address).map(Opened::Ready),
    }
}
