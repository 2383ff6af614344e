//! Reading the cluster view (`store::cluster`): every instance's row, with the copies
//! it owes, and the copies owed per backend. Two grouped reads of `lb_copies`, made once
//! a second by worker 0's store thread only. They count whole tables, so they may scan
//! them, which the thread's connection otherwise forbids (`write.rs`).

use postgres::Client;

use crate::store::cluster::{Cluster, Instance};

pub fn read(client: &mut Client) -> Result<Cluster, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute("SET LOCAL enable_seqscan = on")?;
    let rows = tx.query(
        "SELECT i.instance, i.version, extract(epoch FROM i.renewed)::float8, \
         i.expires > now(), coalesce(o.copies, 0), i.address \
         FROM lb_instances i LEFT JOIN \
         (SELECT instance, count(*) AS copies FROM lb_copies GROUP BY instance) o \
         ON o.instance = i.instance ORDER BY i.instance",
        &[],
    )?;
    let mut instances = Vec::with_capacity(rows.len());
    for row in &rows {
        instances.push(Instance {
            name: row.try_get(0)?,
            version: row.try_get(1)?,
            heartbeat: row.try_get(2)?,
            alive: row.try_get(3)?,
            owed: row.try_get(4)?,
            address: row.try_get(5)?,
        });
    }
    let owed = tx
        .query(
            "SELECT backend, count(*) FROM lb_copies GROUP BY backend ORDER BY backend",
            &[],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()?;
    tx.commit()?;
    Ok(Cluster { instances, owed })
}
