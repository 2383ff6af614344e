//! One batch in one statement (group commit), sent in one round trip and committed as its
//! own transaction: the lease renewed, the new jobs inserted with the backends they owe
//! copies to, the copies given up noted for operators, the finished copies taken off
//! their jobs, and the jobs left owing none deleted. Every part reads the lease's
//! `RETURNING`, so if another lb has raised the epoch the statement changes nothing and
//! says so. Each part works on arrays (`unnest`), so a batch costs one round trip whatever
//! its size; a commit used to take seven (`BEGIN`, the lease, four statements, `COMMIT`),
//! each a wake-up of the store thread and of the PostgreSQL backend. A batch holding
//! runtime API changes wraps the statement and the changes in one transaction.
//!
//! A job with finished copies is found by a lookup on its whole primary key (a scalar
//! subquery, which no plan turns into a join) and read and changed by `ctid`, so no plan
//! can scan an instance's whole key range, dead entries included, whatever the table's
//! statistics say: a plain join did, and PostgreSQL's CPU went to reading dead entries.
//! Inserts check no conflict beyond the primary key's own: a job is inserted once, under
//! a new random 128-bit id (a batch that fails is never sent again with its jobs,
//! `Op::kept`).

use std::collections::HashSet;

use postgres::{Client, Statement};

use super::changes;
use super::connect::Target;
use super::lease::Failure;
use super::thread::Op;

#[cfg(test)]
mod tests;

/// The commit's statement: `$1` instance, `$2` epoch, `$3` lease in seconds; new jobs
/// (`$4` ids, `$5` request ids, `$6` requests, `$7` and `$8` the bounds of their owed
/// copies' slice of `$9`); `$9` the backends owed, job after job; copies finished of jobs
/// committed before (`$10` jobs, `$11` backends, `$12` given up); copies of this batch's
/// jobs given up at once (`$13` jobs, `$14` backends, `$15` request ids). Returns the
/// number of lease rows renewed: 0 means fenced, and nothing changed. A job's row is
/// deleted or rewritten, never both: `emptied` takes those whose every owed copy finished,
/// `shrunk` the others. No part looks a job up in another's array row by row: a batch of
/// 50 jobs spent half its insert filtering 150 owed copies for each job.
const COMMIT: &str = "\
WITH renew AS (
    UPDATE lb_instances SET expires = now() + make_interval(secs => $3), renewed = now()
    WHERE instance = $1 AND epoch = $2 RETURNING instance
), new_jobs AS (
    INSERT INTO lb_jobs (instance, id, request_id, request, owed)
    SELECT r.instance, n.id, n.request_id, n.request, ($9::text[])[n.first:n.last]
    FROM renew r, unnest($4::bytea[], $5::bytea[], $6::bytea[], $7::int4[], $8::int4[])
        n (id, request_id, request, first, last)
), finished AS (
    SELECT f.job, array_agg(f.backend) AS backends
    FROM unnest($10::bytea[], $11::text[]) f (job, backend) GROUP BY f.job
), found AS (
    SELECT f.backends,
        (SELECT j.ctid FROM lb_jobs j WHERE j.instance = r.instance AND j.id = f.job) AS row
    FROM renew r, finished f
), jobs AS (
    SELECT j.ctid AS row, j.id, j.request_id, j.owed, f.backends AS done,
        j.owed <@ f.backends AS emptied
    FROM found f, lb_jobs j
    WHERE j.ctid = ANY (ARRAY(SELECT row FROM found WHERE row IS NOT NULL)) AND j.ctid = f.row
), noted AS (
    INSERT INTO lb_given_up (instance, job, backend, request_id)
    SELECT $1, g.job, g.backend, j.request_id
    FROM unnest($10::bytea[], $11::text[], $12::bool[]) g (job, backend, given_up), jobs j
    WHERE g.given_up AND j.id = g.job AND g.backend = ANY (j.owed)
    UNION ALL
    SELECT r.instance, g.* FROM renew r, unnest($13::bytea[], $14::text[], $15::bytea[]) g
), emptied AS (
    DELETE FROM lb_jobs WHERE ctid = ANY (ARRAY(SELECT row FROM jobs WHERE emptied))
), shrunk AS (
    UPDATE lb_jobs u SET owed = ARRAY(SELECT b FROM unnest(u.owed) b WHERE b <> ALL (j.done))
    FROM jobs j
    WHERE u.ctid = ANY (ARRAY(SELECT row FROM jobs WHERE NOT emptied))
        AND NOT j.emptied AND u.ctid = j.row
)
SELECT count(*) FROM renew";

/// The commit's statement, prepared on one connection (and prepared again on the next).
pub struct Statements {
    commit: Statement,
}

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        // Planned once (planning the statement cost more than running it), and never with
        // a sequential scan: planned while the tables are nearly empty, early in a
        // connection's life, each lookup would otherwise read a whole table for as long as
        // the plan lasts. Nothing else on this connection wants one but the cluster view,
        // which turns them back on for itself (`view.rs`).
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")?;
        Ok(Statements {
            commit: client.prepare(COMMIT)?,
        })
    }
}

/// A column of `bytea` and one of `text`, for `unnest`.
type Bytes<'a> = Vec<&'a [u8]>;
type Texts<'a> = Vec<&'a str>;

/// A batch as columns, for `unnest`.
#[derive(Debug, Default, PartialEq)]
struct Columns<'a> {
    /// New jobs that still owe a copy: ids, request ids, requests, and the first and last
    /// (1-based, inclusive) of their owed copies in `owed`.
    jobs: (Bytes<'a>, Bytes<'a>, Bytes<'a>, Vec<i32>, Vec<i32>),
    /// The new jobs' owed copies, job after job.
    owed: Texts<'a>,
    /// Finished copies of jobs committed before: job, backend, whether given up.
    finished: (Bytes<'a>, Texts<'a>, Vec<bool>),
    /// Copies of the batch's own jobs given up in it: job, backend, request id.
    given_up_new: (Bytes<'a>, Texts<'a>, Bytes<'a>),
}

/// A position in the batch's owed copies, as PostgreSQL's array subscripts take it. It
/// saturates rather than wraps: a batch of 2^31 copies is past the 1 GB PostgreSQL takes
/// in one message, and refused whole.
fn bound(position: usize) -> i32 {
    i32::try_from(position).unwrap_or(i32::MAX)
}

/// Each job's and finished copy's id as the 16 bytes stored: the ops with theirs.
fn keyed(ops: &[Op]) -> Vec<(&Op, [u8; 16])> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Job { id, .. } | Op::Finished { id, .. } => Some((op, id.to_le_bytes())),
            Op::Change(_) | Op::Withdrawn { .. } => None,
        })
        .collect()
}

impl<'a> Columns<'a> {
    /// A copy finished in the batch of its own job (the loop sends a copy only once its
    /// job is committed, but the store does not rest on it) is never inserted; its job is
    /// not either once no copy of it is owed.
    fn of(keyed: &'a [(&'a Op, [u8; 16])]) -> Columns<'a> {
        let new: HashSet<u128> = keyed
            .iter()
            .filter_map(|(op, _)| match op {
                Op::Job { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut finished_new: Vec<(u128, &str, bool)> = Vec::new();
        let mut c = Columns::default();
        for (op, id) in keyed {
            if let Op::Finished {
                id: job,
                backend,
                given_up,
            } = op
            {
                if new.contains(job) {
                    finished_new.push((*job, backend.as_str(), *given_up));
                } else {
                    c.finished.0.push(id);
                    c.finished.1.push(backend);
                    c.finished.2.push(*given_up);
                }
            }
        }
        for (op, key) in keyed {
            let Op::Job {
                id,
                request_id,
                request,
                backends,
            } = op
            else {
                continue;
            };
            let ended = |b: &str| finished_new.iter().find(|f| f.0 == *id && f.1 == b);
            let first = c.owed.len();
            for b in backends {
                match ended(b.as_str()) {
                    None => c.owed.push(b),
                    Some(&(_, _, true)) => {
                        c.given_up_new.0.push(key);
                        c.given_up_new.1.push(b);
                        c.given_up_new.2.push(request_id);
                    }
                    Some(_) => {}
                }
            }
            if c.owed.len() > first {
                c.jobs.0.push(key);
                c.jobs.1.push(request_id);
                c.jobs.2.push(request);
                c.jobs.3.push(bound(first + 1));
                c.jobs.4.push(bound(c.owed.len()));
            }
        }
        c
    }
}

pub fn commit(
    client: &mut Client,
    s: &Statements,
    target: &Target,
    epoch: i64,
    ops: &[Op],
) -> Result<(), Failure> {
    let keyed = keyed(ops);
    let c = Columns::of(&keyed);
    let changes: Vec<&_> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Change(change) => Some(change),
            _ => None,
        })
        .collect();
    let lease = super::lease::seconds(target.lease);
    let params: [&(dyn postgres::types::ToSql + Sync); 15] = [
        &target.instance,
        &epoch,
        &lease,
        &c.jobs.0,
        &c.jobs.1,
        &c.jobs.2,
        &c.jobs.3,
        &c.jobs.4,
        &c.owed,
        &c.finished.0,
        &c.finished.1,
        &c.finished.2,
        &c.given_up_new.0,
        &c.given_up_new.1,
        &c.given_up_new.2,
    ];
    let renewed = |row: postgres::Row| -> Result<(), Failure> {
        match row.try_get::<_, i64>(0)? {
            0 => Err(Failure::Fenced),
            _ => Ok(()),
        }
    };
    let withdrawn: Vec<[u8; 16]> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Withdrawn { id } => Some(id.to_le_bytes()),
            _ => None,
        })
        .collect();
    if changes.is_empty() && withdrawn.is_empty() {
        return renewed(client.query_one(&s.commit, &params)?);
    }
    let mut tx = client.transaction()?;
    renewed(tx.query_one(&s.commit, &params)?)?;
    if !withdrawn.is_empty() {
        let ids: Bytes = withdrawn.iter().map(|id| &id[..]).collect();
        tx.execute(WITHDRAW, &[&target.instance, &ids])?;
    }
    changes::record(&mut tx, &target.instance, &changes)?;
    Ok(tx.commit()?)
}

/// Deletes the rows of jobs refused to their clients (`Op::Withdrawn`), if a commit whose
/// answer was lost wrote them: `$1` instance, `$2` job ids. Rare (only after a failed
/// commit), so a plain statement in the batch's transaction.
const WITHDRAW: &str = "WITH given_up AS (
    DELETE FROM lb_given_up WHERE instance = $1 AND job = ANY ($2::bytea[])
)
DELETE FROM lb_jobs WHERE instance = $1 AND id = ANY ($2::bytea[])";
