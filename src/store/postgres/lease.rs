//! Leases and epochs. Each instance has a row in `lb_instances`: its epoch and when its
//! lease runs out. An lb claims its instance's name at start (the epoch goes up, which
//! fences off any earlier holder of the name), renews the lease with every commit and
//! every heartbeat, and commits only while the epoch is still the one it claimed. Once an
//! instance's lease has run out, another lb takes its owed copies over: it moves their rows
//! to its own instance and raises the dead instance's epoch, so that the dead one, should
//! it only have been slow, can no longer commit anything under its old claim. Fenced
//! off, an lb claims its name again if it was taken over (it is alive, and may take new
//! writes), but not if another lb claimed the same name (an upgrade, or a second lb
//! started with it by mistake): that one is the name's now, and two claiming in turn
//! would fence each other's commits forever.

use std::time::Duration;

use postgres::{Client, GenericClient, Transaction};

use super::connect::Target;
use super::replay;
use crate::journal::Replayed;

/// What a commit or a heartbeat found.
#[derive(Debug)]
pub enum Failure {
    Db(postgres::Error),
    /// Another lb raised this instance's epoch: it took over what this one owed, or
    /// claimed the name itself.
    Fenced,
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Failure {
        Failure::Db(e)
    }
}

/// This lb's release, shown to the other instances.
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn seconds(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

/// Claims `target`'s instance name: a new epoch, a fresh lease.
pub fn claim(client: &mut impl GenericClient, target: &Target) -> Result<i64, postgres::Error> {
    client
        .query_one(
            "INSERT INTO lb_instances (instance, epoch, expires, version, renewed, address) \
             VALUES ($1, 1, now() + make_interval(secs => $2), $3, now(), $4) \
             ON CONFLICT (instance) DO UPDATE \
             SET epoch = lb_instances.epoch + 1, expires = excluded.expires, taken_by = NULL, \
             version = excluded.version, renewed = excluded.renewed, \
             address = excluded.address \
             RETURNING epoch",
            &[
                &target.instance,
                &seconds(target.lease),
                &VERSION,
                &target.address,
            ],
        )?
        .try_get(0)
}

/// Renews the lease of instance `$1` for `$3` seconds if `$2` is still its epoch.
const RENEW: &str = "UPDATE lb_instances \
     SET expires = now() + make_interval(secs => $3), renewed = now() \
     WHERE instance = $1 AND epoch = $2";

/// Renews the lease, in `tx`, if `epoch` is still the instance's.
pub fn renew(tx: &mut Transaction, target: &Target, epoch: i64) -> Result<(), Failure> {
    let renewed = tx.execute(RENEW, &[&target.instance, &epoch, &seconds(target.lease)])?;
    match renewed {
        0 => Err(Failure::Fenced),
        _ => Ok(()),
    }
}

/// Fenced with `used`: claims the name afresh if another lb took its copies over (or
/// another worker of this lb already has claimed it since); false if another lb claimed
/// the name itself. The epoch the workers share is held meanwhile, so they claim it once.
pub fn reclaim(client: &mut Client, target: &Target, used: i64) -> Result<bool, postgres::Error> {
    let Ok(mut epoch) = target.epoch.lock() else {
        return Ok(false);
    };
    if *epoch != used {
        return Ok(true);
    }
    let taken_by: Option<String> = client
        .query_one(
            "SELECT taken_by FROM lb_instances WHERE instance = $1",
            &[&target.instance],
        )?
        .try_get(0)?;
    if taken_by.is_none() {
        return Ok(false);
    }
    *epoch = claim(client, target)?;
    Ok(true)
}

/// Takes over the copies of one instance whose lease ran out more than a lease ago (so an
/// lb that lost the database for a moment renews its own first), if there is one: its
/// name and its jobs, now this instance's.
pub fn take_over(
    client: &mut Client,
    target: &Target,
    epoch: i64,
) -> Result<Option<(String, Vec<Replayed>)>, Failure> {
    let mut tx = client.transaction()?;
    let Some(row) = tx.query_opt(
        "SELECT instance FROM lb_instances i \
         WHERE expires < now() - make_interval(secs => $2) AND instance <> $1 \
         AND EXISTS (SELECT 1 FROM lb_jobs j WHERE j.instance = i.instance) \
         ORDER BY expires LIMIT 1 FOR UPDATE SKIP LOCKED",
        &[&target.instance, &seconds(target.lease)],
    )?
    else {
        return Ok(None);
    };
    let dead: String = row.try_get(0)?;
    renew(&mut tx, target, epoch)?;
    tx.execute(
        "UPDATE lb_instances SET epoch = epoch + 1, taken_by = $2 WHERE instance = $1",
        &[&dead, &target.instance],
    )?;
    let ids: Vec<Vec<u8>> = tx
        .query(
            "UPDATE lb_jobs SET instance = $1 WHERE instance = $2 RETURNING id",
            &[&target.instance, &dead],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let jobs = replay::jobs(&mut tx, &target.instance, Some(&ids), &target.shown)?;
    tx.commit()?;
    Ok(Some((dead, jobs)))
}
