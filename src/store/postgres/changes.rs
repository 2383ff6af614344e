//! Runtime API changes in `lb_changes`: recorded by the instance whose API took them, in
//! the transaction of its next batch, and read by every other instance's store thread,
//! from the last id it saw. An instance starts from the newest id there is: its file is
//! what it runs at start, as after a reload.

use log::warn;
use postgres::{Client, Transaction};

use crate::store::BackendChange;
use crate::store::change::Action;

/// Any number, the same for every lb: held from taking an id to the commit, so that ids
/// are committed in order and a reader that saw one id has seen every id below it.
const ORDER_LOCK: i64 = i64::from_be_bytes(*b"lb-chnge");

/// Records `changes`, made by `instance`, in `tx`, in their order.
pub fn record(
    tx: &mut Transaction,
    instance: &str,
    changes: &[&BackendChange],
) -> Result<(), postgres::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ORDER_LOCK])?;
    for c in changes {
        let (action, weight, address) = c.action.to_row();
        tx.execute(
            "INSERT INTO lb_changes (instance, pool, backend, action, weight, address) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&instance, &c.pool, &c.backend, &action, &weight, &address],
        )?;
    }
    Ok(())
}

/// The newest id: where an instance starting now begins to read.
pub fn newest(client: &mut Client) -> Result<i64, postgres::Error> {
    client
        .query_one("SELECT coalesce(max(id), 0) FROM lb_changes", &[])?
        .try_get(0)
}

/// The changes after id `after` that other instances than `instance` made, each with its
/// maker, and the newest id read.
pub fn since(
    client: &mut Client,
    instance: &str,
    after: i64,
    shown: &str,
) -> Result<(i64, Vec<(String, BackendChange)>), postgres::Error> {
    let rows = client.query(
        "SELECT id, instance, pool, backend, action, weight, address FROM lb_changes \
         WHERE id > $1 ORDER BY id",
        &[&after],
    )?;
    let mut newest = after;
    let mut found = Vec::new();
    for row in &rows {
        newest = newest.max(row.try_get(0)?);
        let by: String = row.try_get(1)?;
        if by == instance {
            continue;
        }
        let action: &str = row.try_get(4)?;
        let address: Option<&str> = row.try_get(6)?;
        let Some(action) = Action::from_row(action, row.try_get(5)?, address) else {
            warn!("PostgreSQL at {shown}: a change by instance {by} that lb cannot read: skipped");
            continue;
        };
        found.push((
            by,
            BackendChange {
                pool: row.try_get(2)?,
                backend: row.try_get(3)?,
                action,
            },
        ));
    }
    Ok((newest, found))
}
