//! The store thread: the only place a PostgreSQL client runs. It takes batches of records
//! from the loop, commits each in one transaction, answers, and rings the loop. The
//! `postgres` crate drives its connection with a small runtime of its own, which lives in
//! this thread and never touches the event loop. Without a connection it tries again on
//! its own every `RECONNECT`, and says when it has one, so the loop takes POSTs again.
//! With one, it renews the instance's lease a few times per lease, and takes over the
//! copies of instances whose lease ran out (`lease.rs`). Worker 0's thread also reads the
//! runtime API changes other instances made, and the cluster view (`follow.rs`), and
//! hands them to its loop.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use log::{info, warn};
use postgres::Client;

use super::connect::{Target, Why};
use super::follow::Follow;
use super::lease::{self, Failure};
use super::write::Statements;
use crate::journal::Replayed;
use crate::store::BackendChange;
use crate::store::cluster::Cluster;

/// How often the thread tries to reach the database again while it cannot.
const RECONNECT: Duration = Duration::from_millis(500);

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
    /// One backend's copy of job `id` is finished: delivered, refused, or (`given_up`)
    /// given up, which operators are shown.
    Finished {
        id: u128,
        backend: String,
        given_up: bool,
    },
    /// A runtime API change, for the other instances sharing the store.
    Change(BackendChange),
    /// Job `id` was refused to its client when the commit that carried it failed; that
    /// commit may have landed all the same (the connection broke before its answer), so
    /// its rows, if any, are deleted: else they would stay owed, and another instance
    /// taking over would deliver a write its client was told failed.
    Withdrawn { id: u128 },
}

impl Op {
    /// Kept to be committed once the database is back, should its batch fail: a finished
    /// copy (else it is sent again), a change (else the others never hear of it). A job
    /// is refused to its client instead: nothing of it went out.
    pub fn kept(&self) -> bool {
        !matches!(self, Op::Job { .. })
    }

    /// What must still be committed if the batch holding this fails: itself if kept, a
    /// job's withdrawal otherwise.
    pub fn if_failed(&self) -> Op {
        match self {
            Op::Job { id, .. } => Op::Withdrawn { id: *id },
            op => op.clone(),
        }
    }
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
    /// The jobs of an instance whose lease ran out, now this instance's.
    TookOver(Vec<Replayed>),
    /// Another lb claimed the name: new POSTs are refused for good, for this reason.
    Refused(String),
    /// Runtime API changes other instances made, each with the instance's name.
    Changes(Vec<(String, BackendChange)>),
    /// The instances sharing the store, and what they owe.
    Cluster(Cluster),
}

/// The loop's end of the thread.
pub struct Thread {
    to: Sender<Batch>,
    from: Receiver<News>,
}

impl Thread {
    /// `follow`: the id after which to read other instances' changes, and with them the
    /// cluster view (worker 0's thread), or `None`.
    pub fn spawn(
        target: Target,
        wake: Box<dyn Fn() + Send>,
        follow: Option<i64>,
    ) -> Result<Thread, String> {
        let (to, inbox) = channel::<Batch>();
        let (outbox, from) = channel();
        std::thread::Builder::new()
            .name("lb-store".into())
            .spawn(move || run(&target, &inbox, &outbox, &*wake, follow.map(Follow::new)))
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

/// The thread's connection, the commit's statements prepared on it, and since when it
/// has had it.
struct Conn {
    client: Client,
    statements: Statements,
    since: Instant,
}

fn run(
    target: &Target,
    inbox: &Receiver<Batch>,
    outbox: &Sender<News>,
    wake: &dyn Fn(),
    mut follow: Option<Follow>,
) {
    let mut conn: Option<Conn> = None;
    let beat = target.lease / 3;
    let mut next_beat = Instant::now();
    loop {
        let due = match &follow {
            Some(f) => next_beat.min(f.due()),
            None => next_beat,
        };
        let wait = match &conn {
            Some(_) => due.saturating_duration_since(Instant::now()),
            None => RECONNECT,
        };
        let mut news = Vec::new();
        match inbox.recv_timeout(wait) {
            Ok(batch) => {
                let (told, claimed) = commit(target, &mut conn, batch);
                news.extend(told);
                if !claimed {
                    return retired(target, inbox, outbox, wake, news);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if conn.is_none() && news.is_empty() {
            conn = connect(target);
            news.extend(conn.as_ref().map(|_| News::Reachable));
        }
        if let Some(c) = conn.as_mut().filter(|_| Instant::now() >= next_beat) {
            next_beat = Instant::now() + beat;
            match heartbeat(target, c) {
                Ok(took) => news.extend(took),
                Err(Failure::Fenced) if !fenced(target, c) => {
                    return retired(target, inbox, outbox, wake, news);
                }
                Err(Failure::Fenced) => {}
                Err(Failure::Db(_)) => conn = None,
            }
        }
        if let (Some(c), Some(f)) = (conn.as_mut(), follow.as_mut())
            && Instant::now() >= f.due()
        {
            match f.read(target, &mut c.client) {
                Ok(found) => news.extend(found),
                Err(_) => conn = None,
            }
        }
        if news.is_empty() {
            continue;
        }
        for n in news {
            if outbox.send(n).is_err() {
                return;
            }
        }
        wake();
    }
}

fn connect(target: &Target) -> Option<Conn> {
    let mut client = target.connect().ok()?;
    let statements = Statements::prepare(&mut client)
        .map_err(|e| {
            warn!(
                "PostgreSQL at {}: cannot prepare lb's statements: {}",
                target.shown,
                Why(&e)
            )
        })
        .ok()?;
    Some(Conn {
        client,
        statements,
        since: Instant::now(),
    })
}

fn epoch(target: &Target) -> i64 {
    target.epoch.lock().map(|e| *e).unwrap_or(0)
}

/// Commits `batch`: what the loop is told of it (after a commit refused by a raised epoch,
/// once the name is claimed again, that POSTs may be taken again), and whether this lb
/// still holds its name (false: another lb claimed it).
fn commit(target: &Target, conn: &mut Option<Conn>, batch: Batch) -> (Vec<News>, bool) {
    let started = Instant::now();
    let epoch = epoch(target);
    let c = match conn.take().filter(|c| !c.client.is_closed()) {
        Some(c) => Some(c),
        None => connect(target),
    };
    let Some(mut c) = c else {
        let why = format!("cannot reach PostgreSQL at {}", target.shown);
        return (vec![committed(batch.upto, Err(why), started)], true);
    };
    let result = super::write::commit(&mut c.client, &c.statements, target, epoch, &batch.ops);
    let mut news = Vec::new();
    match result {
        Ok(()) => news.push(committed(batch.upto, Ok(()), started)),
        Err(Failure::Db(e)) => {
            let why = format!(
                "cannot commit to PostgreSQL at {}: {}",
                target.shown,
                Why(&e)
            );
            return (vec![committed(batch.upto, Err(why), started)], true);
        }
        Err(Failure::Fenced) => {
            let why = format!(
                "instance {} was taken over by another lb after its lease ran out",
                target.instance
            );
            news.push(committed(batch.upto, Err(why), started));
            if !fenced(target, &mut c) {
                return (news, false);
            }
            news.push(News::Reachable);
        }
    }
    *conn = Some(c);
    (news, true)
}

fn committed(upto: Option<u64>, result: Result<(), String>, started: Instant) -> News {
    News::Committed {
        upto,
        result,
        took: started.elapsed(),
    }
}

/// Renews the lease; once the connection has lasted a lease (so that every lb that lost
/// the database with this one has had the time to renew its own), takes over one
/// instance whose lease ran out, if there is one.
fn heartbeat(target: &Target, c: &mut Conn) -> Result<Option<News>, Failure> {
    let epoch = epoch(target);
    let mut tx = c.client.transaction()?;
    lease::renew(&mut tx, target, epoch)?;
    tx.commit()?;
    if c.since.elapsed() < target.lease {
        return Ok(None);
    }
    let Some((from, jobs)) = lease::take_over(&mut c.client, target, epoch)? else {
        return Ok(None);
    };
    info!(
        "PostgreSQL at {}: instance {from} let its lease run out; this lb (instance {}) \
         took over the {} writes it still owed",
        target.shown,
        target.instance,
        jobs.len()
    );
    Ok(Some(News::TookOver(jobs)))
}

/// Another lb raised this instance's epoch. If it took the copies over, it owns what
/// this one owed, and the name is claimed again under a new epoch for the writes to come
/// (true). If it claimed the name itself, this lb is done with the store (false).
fn fenced(target: &Target, c: &mut Conn) -> bool {
    let used = epoch(target);
    match lease::reclaim(&mut c.client, target, used) {
        Ok(true) => {
            warn!(
                "PostgreSQL at {}: instance {} was taken over by another lb after its lease \
                 ran out; that lb delivers what this one owed (this one does too, for the \
                 copies it holds: backends drop the repeats); the name is claimed again for \
                 new writes",
                target.shown, target.instance
            );
            true
        }
        Ok(false) => false,
        Err(e) => {
            warn!(
                "PostgreSQL at {}: instance {} was taken over, and cannot be claimed again: {}",
                target.shown,
                target.instance,
                Why(&e)
            );
            true
        }
    }
}

/// Another lb claimed this instance's name: this one commits nothing more. Every batch
/// fails at once, so its POSTs get 503 and new ones are refused; the loop is told once.
fn retired(
    target: &Target,
    inbox: &Receiver<Batch>,
    outbox: &Sender<News>,
    wake: &dyn Fn(),
    news: Vec<News>,
) {
    let why = format!(
        "instance {} was claimed by another lb started with the same name (an upgrade, or a \
         second lb by mistake): this lb commits nothing more to PostgreSQL at {}",
        target.instance, target.shown
    );
    warn!("{why}; new POSTs get 503, and the copies this lb holds are still delivered");
    for n in news
        .into_iter()
        .chain(std::iter::once(News::Refused(why.clone())))
    {
        if outbox.send(n).is_err() {
            return;
        }
    }
    wake();
    for batch in inbox {
        let news = committed(batch.upto, Err(why.clone()), Instant::now());
        if outbox.send(news).is_err() {
            return;
        }
        wake();
    }
}
