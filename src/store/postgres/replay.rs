//! Reading back what an instance owes, at start and when it takes another's over: each
//! job with the backends it has copies owed to. At start, jobs left owing no copy (which
//! a commit never leaves, but rows written by hand can) are deleted, not resumed.

use log::warn;
use postgres::{Client, GenericClient, Row};

use super::connect::Why;
use crate::journal::Replayed;

pub fn owed(client: &mut Client, instance: &str, shown: &str) -> Result<Vec<Replayed>, String> {
    let failed = |e: postgres::Error| {
        format!(
            "PostgreSQL at {shown}: cannot read what is owed: {}",
            Why(&e)
        )
    };
    client
        .execute(
            "DELETE FROM lb_jobs WHERE instance = $1 AND cardinality(owed) = 0",
            &[&instance],
        )
        .map_err(failed)?;
    jobs(client, instance, None, shown).map_err(failed)
}

/// `instance`'s jobs (those of `ids` only, if given), each with the backends still owed.
pub fn jobs(
    client: &mut impl GenericClient,
    instance: &str,
    ids: Option<&[Vec<u8>]>,
    shown: &str,
) -> Result<Vec<Replayed>, postgres::Error> {
    let rows = client.query(
        "SELECT id, request_id, request, ARRAY(SELECT b FROM unnest(owed) b ORDER BY b) \
         FROM lb_jobs \
         WHERE instance = $1 AND ($2::bytea[] IS NULL OR id = ANY($2)) \
         AND cardinality(owed) > 0 ORDER BY created, id",
        &[&instance, &ids],
    )?;
    let mut owed = Vec::with_capacity(rows.len());
    for row in &rows {
        match read(row) {
            Ok(Some(job)) => owed.push(job),
            Ok(None) => warn!("PostgreSQL at {shown}: a job whose id is not 16 bytes: skipped"),
            Err(e) => warn!(
                "PostgreSQL at {shown}: an unreadable job skipped: {}",
                Why(&e)
            ),
        }
    }
    Ok(owed)
}

fn read(row: &Row) -> Result<Option<Replayed>, postgres::Error> {
    let id: Vec<u8> = row.try_get(0)?;
    let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
        return Ok(None);
    };
    Ok(Some(Replayed {
        id: u128::from_le_bytes(id),
        request_id: row.try_get(1)?,
        request: row.try_get(2)?,
        owed: row.try_get(3)?,
    }))
}
