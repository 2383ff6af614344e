//! One batch in one transaction (group commit): the lease renewed (and the commit refused
//! if another lb has raised the epoch meanwhile), the new jobs and their owed copies
//! inserted, the copies given up noted for operators, the finished copies deleted, the
//! jobs left with none deleted, and the runtime API changes recorded. Each kind
//! is one statement over arrays, so a batch costs the same few round trips whatever its
//! size.

use postgres::Client;

use super::changes;
use super::connect::Target;
use super::lease::{self, Failure};
use super::thread::Op;

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
}

pub fn commit(client: &mut Client, target: &Target, epoch: i64, ops: &[Op]) -> Result<(), Failure> {
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
                if *given_up {
                    c.given_up.0.push(id);
                    c.given_up.1.push(backend);
                }
            }
            Op::Change(_) => {}
        }
    }
    let mut tx = client.transaction()?;
    lease::renew(&mut tx, target, epoch)?;
    if !c.job_ids.is_empty() {
        tx.execute(
            "INSERT INTO lb_jobs (instance, id, request_id, request) \
             SELECT $1, * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) \
             ON CONFLICT DO NOTHING",
            &[&instance, &c.job_ids, &c.request_ids, &c.requests],
        )?;
        tx.execute(
            "INSERT INTO lb_copies (instance, job, backend) \
             SELECT $1, * FROM unnest($2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
            &[&instance, &c.owed.0, &c.owed.1],
        )?;
    }
    if !c.given_up.0.is_empty() {
        // Only a copy still owed here: one given up twice (sent again) is noted once.
        tx.execute(
            "INSERT INTO lb_given_up (instance, job, backend, request_id) \
             SELECT $1, c.job, c.backend, j.request_id \
             FROM unnest($2::bytea[], $3::text[]) AS g(job, backend) \
             JOIN lb_copies c ON c.instance = $1 AND c.job = g.job AND c.backend = g.backend \
             JOIN lb_jobs j ON j.instance = $1 AND j.id = g.job",
            &[&instance, &c.given_up.0, &c.given_up.1],
        )?;
    }
    if !c.finished.0.is_empty() {
        tx.execute(
            "DELETE FROM lb_copies c USING unnest($2::bytea[], $3::text[]) AS f(job, backend) \
             WHERE c.instance = $1 AND c.job = f.job AND c.backend = f.backend",
            &[&instance, &c.finished.0, &c.finished.1],
        )?;
        tx.execute(
            "DELETE FROM lb_jobs j WHERE j.instance = $1 AND j.id = ANY($2::bytea[]) \
             AND NOT EXISTS (SELECT 1 FROM lb_copies c WHERE c.instance = $1 AND c.job = j.id)",
            &[&instance, &c.finished.0],
        )?;
    }
    changes::record(&mut tx, instance, &changes)?;
    Ok(tx.commit()?)
}
