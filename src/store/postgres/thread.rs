//! The store thread: the only place a PostgreSQL client runs. It takes batches of records
//! from the loop, commits each in one transaction, answers, and rings the loop. The
//! `postgres` crate drives its connection with a small runtime of its own, which lives in
//! this thread and never touches the event loop. Without a connection it tries again on
//! its own every `RECONNECT`, and says when it has one, so the loop takes POSTs again.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use postgres::Client;

use super::connect::Target;

/// How often the thread tries to reach the database again while it cannot.
pub const RECONNECT: Duration = Duration::from_millis(500);

/// One record for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new job, owed to `backends`.
    Job {
        id: u128,
        request_id: Vec<u8>,
        request: Vec<u8>,
        backends: Vec<String>,
    },
    /// One backend's copy of job `id` is finished, whatever its outcome.
    Finished { id: u128, backend: String },
}

/// The records of the batches up to `upto` (`None`: only records that failed to be
/// committed before), to commit together.
pub struct Batch {
    pub upto: Option<u64>,
    pub ops: Vec<Op>,
}

/// What the thread tells the loop.
#[derive(Debug)]
pub enum News {
    /// The batches up to `upto` are committed, or (`Err`) none of their records is.
    Committed {
        upto: Option<u64>,
        result: Result<(), String>,
        took: Duration,
    },
    /// The database can be reached again.
    Reachable,
}

/// The loop's end of the thread.
pub struct Thread {
    to: Sender<Batch>,
    from: Receiver<News>,
}

impl Thread {
    pub fn spawn(target: Target, wake: Box<dyn Fn() + Send>) -> Result<Thread, String> {
        let (to, inbox) = channel::<Batch>();
        let (outbox, from) = channel();
        std::thread::Builder::new()
            .name("lb-store".into())
            .spawn(move || run(&target, &inbox, &outbox, &*wake))
            .map_err(|e| format!("cannot start the store thread: {e}"))?;
        Ok(Thread { to, from })
    }

    pub fn send(&self, batch: Batch) -> Result<(), String> {
        self.to
            .send(batch)
            .map_err(|_| "the store thread has stopped".to_string())
    }

    pub fn try_recv(&self) -> Option<News> {
        self.from.try_recv().ok()
    }

    /// Waits for the thread's next news, at most `within`.
    pub fn recv(&self, within: Duration) -> Option<News> {
        self.from.recv_timeout(within).ok()
    }
}

fn run(target: &Target, inbox: &Receiver<Batch>, outbox: &Sender<News>, wake: &dyn Fn()) {
    let mut client: Option<Client> = None;
    loop {
        let batch = match &client {
            Some(_) => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            None => inbox.recv_timeout(RECONNECT),
        };
        let news = match batch {
            Ok(batch) => {
                let started = Instant::now();
                let result = commit(target, &mut client, &batch.ops);
                if result.is_err() {
                    client = None;
                }
                News::Committed {
                    upto: batch.upto,
                    result,
                    took: started.elapsed(),
                }
            }
            Err(RecvTimeoutError::Timeout) => match target.connect() {
                Ok(c) => {
                    client = Some(c);
                    News::Reachable
                }
                Err(_) => continue,
            },
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if outbox.send(news).is_err() {
            return;
        }
        wake();
    }
}

fn commit(target: &Target, client: &mut Option<Client>, ops: &[Op]) -> Result<(), String> {
    let c = match client {
        Some(c) if !c.is_closed() => c,
        _ => client.insert(target.connect()?),
    };
    super::write::commit(c, &target.instance, ops)
        .map_err(|e| format!("cannot commit to PostgreSQL: {e}"))
}
