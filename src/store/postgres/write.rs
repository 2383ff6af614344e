//! One batch in one transaction (group commit): the lease renewed (and the commit refused
//! if another lb has raised the epoch meanwhile), the new jobs and their owed copies
//! inserted, the copies given up noted for operators, the finished copies deleted, the
//! jobs left with none deleted, and the runtime API changes recorded. Each kind
//! is one statement over arrays, so a batch costs the same few round trips whatever its
//! size; each statement is prepared once per connection (`Statements`), so a commit
//! does not parse them again, and each costs one round trip.

use postgres::{Client, Statement};

use super::changes;
use super::connect::Target;
use super::lease::Failure;
use super::thread::Op;

/// The commit's statements, prepared on one connection (and prepared again on the next).
pub struct Statements {
    renew: Statement,
    insert_jobs: Statement,
    insert_copies: Statement,
    note_given_up: Statement,
    delete_copies: Statement,
    delete_jobs: Statement,
}

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        // Planned for each commit's arrays, never once for all: a generic plan made while
        // the tables are nearly empty (early in a connection's life) scans the instance's
        // whole key range, dead entries included, for as long as the connection lasts.
        client.batch_execute("SET plan_cache_mode = force_custom_plan")?;
        Ok(Statements {
            renew: client.prepare(super::lease::RENEW)?,
            insert_jobs: client.prepare(
                "INSERT INTO lb_jobs (instance, id, request_id, request) \
                 SELECT $1, * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) \
                 ON CONFLICT DO NOTHING",
            )?,
            insert_copies: client.prepare(
                "INSERT INTO lb_copies (instance, job, backend) \
                 SELECT $1, * FROM unnest($2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
            )?,
            // Only a copy still owed here: one given up twice (sent again) is noted once.
            note_given_up: client.prepare(
                "INSERT INTO lb_given_up (instance, job, backend, request_id) \
                 SELECT $1, c.job, c.backend, j.request_id \
                 FROM unnest($2::bytea[], $3::text[]) AS g(job, backend) \
                 JOIN lb_copies c ON c.instance = $1 AND c.job = g.job AND c.backend = g.backend \
                 JOIN lb_jobs j ON j.instance = $1 AND j.id = g.job",
            )?,
            // By the whole primary key, row by row: never a scan of the instance's range.
            delete_copies: client.prepare(
                "DELETE FROM lb_copies WHERE (instance, job, backend) IN \
                 (SELECT $1::text, * FROM unnest($2::bytea[], $3::text[]))",
            )?,
            // Each job once, and only if no copy is left: both by primary key.
            delete_jobs: client.prepare(
                "DELETE FROM lb_jobs j WHERE (j.instance, j.id) IN \
                 (SELECT $1::text, * FROM unnest($2::bytea[])) \
                 AND NOT EXISTS (SELECT 1 FROM lb_copies c WHERE c.instance = $1 AND c.job = j.id)",
            )?,
        })
    }
}

/// A batch as columns, for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    job_ids: Vec<&'a [u8]>,
    request_ids: Vec<&'a [u8]>,
    requests: Vec<&'a [u8]>,
    /// Owed copies: job and backend.
    owed: (Vec<&'a [u8]>, Vec<&'a str>),
    /// Finished copies: job and backend; and those of them given up.
    finished: (Vec<&'a [u8]>, Vec<&'a str>),
    given_up: (Vec<&'a [u8]>, Vec<&'a str>),
    /// The jobs of the finished copies, each once.
    finished_jobs: Vec<&'a [u8]>,
}

pub fn commit(
    client: &mut Client,
    s: &Statements,
    target: &Target,
    epoch: i64,
    ops: &[Op],
) -> Result<(), Failure> {
    let instance = target.instance.as_str();
    let mut changes = Vec::new();
    let ids: Vec<(&Op, [u8; 16])> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Job { id, .. } | Op::Finished { id, .. } => Some((op, id.to_le_bytes())),
            Op::Change(change) => {
                changes.push(change);
                None
            }
        })
        .collect();
    let mut c = Columns::default();
    for (op, id) in &ids {
        match op {
            Op::Job {
                request_id,
                request,
                backends,
                ..
            } => {
                c.job_ids.push(id);
                c.request_ids.push(request_id);
                c.requests.push(request);
                for b in backends {
                    c.owed.0.push(id);
                    c.owed.1.push(b);
                }
            }
            Op::Finished {
                backend, given_up, ..
            } => {
                c.finished.0.push(id);
                c.finished.1.push(backend);
                c.finished_jobs.push(id);
                if *given_up {
                    c.given_up.0.push(id);
                    c.given_up.1.push(backend);
                }
            }
            Op::Change(_) => {}
        }
    }
    c.finished_jobs.sort_unstable();
    c.finished_jobs.dedup();
    let mut tx = client.transaction()?;
    let renewed = tx.execute(
        &s.renew,
        &[
            &target.instance,
            &epoch,
            &super::lease::seconds(target.lease),
        ],
    )?;
    if renewed == 0 {
        return Err(Failure::Fenced);
    }
    if !c.job_ids.is_empty() {
        tx.execute(
            &s.insert_jobs,
            &[&instance, &c.job_ids, &c.request_ids, &c.requests],
        )?;
        tx.execute(&s.insert_copies, &[&instance, &c.owed.0, &c.owed.1])?;
    }
    if !c.given_up.0.is_empty() {
        tx.execute(&s.note_given_up, &[&instance, &c.given_up.0, &c.given_up.1])?;
    }
    if !c.finished.0.is_empty() {
        tx.execute(&s.delete_copies, &[&instance, &c.finished.0, &c.finished.1])?;
        tx.execute(&s.delete_jobs, &[&instance, &c.finished_jobs])?;
    }
    changes::record(&mut tx, instance, &changes)?;
    Ok(tx.commit()?)
}
