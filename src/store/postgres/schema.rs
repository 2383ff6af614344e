//! The store's tables, made and migrated by lb. `lb_schema` holds one row: the version of
//! the tables. Each step below takes the tables one version up, in the transaction that
//! records it, under an advisory lock so that two lbs starting together migrate once. An
//! lb that finds a version newer than it knows refuses to start: an lb of a later release
//! has changed the tables, and this one would misread them.

use postgres::Client;

use super::connect::Why;

/// The steps from version 0 (nothing) up; the version is the number of steps.
const STEPS: &[&str] = &[
    // 1: a job per owed POST and a row per copy still owed. A copy's key leads with the
    // instance, so the copies an instance owes are one index range: read back at its start,
    // and what another instance would claim once a lease lapses.
    "CREATE TABLE lb_jobs (
         instance text NOT NULL,
         id bytea NOT NULL,
         request_id bytea NOT NULL,
         request bytea NOT NULL,
         created timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (instance, id)
     );
     CREATE TABLE lb_copies (
         instance text NOT NULL,
         job bytea NOT NULL,
         backend text NOT NULL,
         PRIMARY KEY (instance, job, backend),
         FOREIGN KEY (instance, job) REFERENCES lb_jobs ON DELETE CASCADE
     );",
    // 2: leases. An instance's row says until when it is alive, under which epoch it may
    // commit, and which instance took its copies over, if one did; a job's rows move to
    // another instance when that one takes them over.
    "CREATE TABLE lb_instances (
         instance text PRIMARY KEY,
         epoch bigint NOT NULL,
         expires timestamptz NOT NULL,
         taken_by text
     );
     ALTER TABLE lb_copies DROP CONSTRAINT lb_copies_instance_job_fkey,
         ADD FOREIGN KEY (instance, job) REFERENCES lb_jobs
             ON DELETE CASCADE ON UPDATE CASCADE;",
    // 3: for operators. `lb_owed`: the copies owed per instance and backend, and since
    // when the oldest is; `lb_given_up`: each copy given up, kept until an operator
    // deletes it (lb only adds to it).
    "CREATE VIEW lb_owed AS
         SELECT c.instance, c.backend, count(*) AS copies, min(j.created) AS oldest
         FROM lb_copies c JOIN lb_jobs j ON j.instance = c.instance AND j.id = c.job
         GROUP BY c.instance, c.backend;
     CREATE TABLE lb_given_up (
         instance text NOT NULL,
         job bytea NOT NULL,
         backend text NOT NULL,
         request_id bytea NOT NULL,
         at timestamptz NOT NULL DEFAULT now()
     );
     CREATE INDEX ON lb_given_up (at);",
    // 4: runtime API changes, for every instance on the store to apply. Ids are taken
    // under a lock held to the commit (`changes.rs`), so they are committed in their order
    // and an instance that read up to one id has missed none below it.
    "CREATE TABLE lb_changes (
         id bigserial PRIMARY KEY,
         at timestamptz NOT NULL DEFAULT now(),
         instance text NOT NULL,
         pool text NOT NULL,
         backend text NOT NULL,
         action text NOT NULL,
         weight integer,
         address text
     );",
    // 5: for the cluster view, each instance's release and its last renewal.
    "ALTER TABLE lb_instances ADD COLUMN version text, ADD COLUMN renewed timestamptz;",
    // 6: a cheaper commit. lb deletes a job's copies and then the job itself, and moves
    // a job's copies with it when it takes an instance over (`lease.rs`), so the foreign
    // key goes: its check ran for every copy inserted, its cascade for every job deleted.
    // Every row of the two tables is deleted moments after its insert: autovacuum cleans
    // them after a few hundred dead rows rather than a fifth of the table, at full speed.
    // The lease row is updated by every commit: room on its page keeps those updates HOT.
    "DO $$ DECLARE c name; BEGIN
         FOR c IN SELECT conname FROM pg_constraint
                  WHERE conrelid = 'lb_copies'::regclass AND contype = 'f' LOOP
             EXECUTE format('ALTER TABLE lb_copies DROP CONSTRAINT %I', c);
         END LOOP;
     END $$;
     ALTER TABLE lb_jobs SET (autovacuum_vacuum_scale_factor = 0,
         autovacuum_vacuum_threshold = 500, autovacuum_vacuum_cost_delay = 0);
     ALTER TABLE lb_copies SET (autovacuum_vacuum_scale_factor = 0,
         autovacuum_vacuum_threshold = 500, autovacuum_vacuum_cost_delay = 0);
     ALTER TABLE lb_instances SET (fillfactor = 50);",
    // 7: for the cluster view, where each instance listens for clients.
    "ALTER TABLE lb_instances ADD COLUMN address text;",
    // 8: a job's owed copies are an array in its own row, not a row each. A POST then
    // costs the store one row inserted and one deleted, where it cost a row per copy
    // too, each with its wide primary key to maintain: about 28% less WAL per POST, which
    // is what a synchronous standby must receive before lb answers. A copy that finishes
    // while others of its job are still owed rewrites the job's row. `lb_copies` stays,
    // as a view, for operators and for `lb_owed`.
    "ALTER TABLE lb_jobs ADD COLUMN owed text[] NOT NULL DEFAULT '{}';
     UPDATE lb_jobs j SET owed = c.backends
         FROM (SELECT instance, job, array_agg(backend ORDER BY backend) AS backends
               FROM lb_copies GROUP BY instance, job) c
         WHERE c.instance = j.instance AND c.job = j.id;
     DELETE FROM lb_jobs WHERE owed = '{}';
     ALTER TABLE lb_jobs ALTER COLUMN owed DROP DEFAULT;
     DROP VIEW lb_owed;
     DROP TABLE lb_copies;
     CREATE VIEW lb_copies AS
         SELECT instance, id AS job, unnest(owed) AS backend FROM lb_jobs;
     CREATE VIEW lb_owed AS
         SELECT instance, backend, count(*) AS copies, min(created) AS oldest
         FROM (SELECT instance, created, unnest(owed) AS backend FROM lb_jobs) c
         GROUP BY instance, backend;",
];

/// Any number, the same for every lb: held while the tables are made or migrated.
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"lb-store");

/// The version this lb reads and writes.
pub fn current() -> i32 {
    STEPS.len() as i32
}

/// Makes or migrates the tables to `current()`; refuses a newer version.
pub fn migrate(client: &mut Client, shown: &str) -> Result<(), String> {
    let failed = |e: postgres::Error| {
        format!(
            "PostgreSQL at {shown}: cannot set up lb's tables: {}",
            Why(&e)
        )
    };
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lb_schema (
             one boolean PRIMARY KEY DEFAULT true CHECK (one),
             version integer NOT NULL
         )",
    )
    .map_err(failed)?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM lb_schema", &[])
        .map_err(failed)?
    {
        Some(row) => row.try_get(0).map_err(failed)?,
        None => 0,
    };
    if found > current() {
        return Err(format!(
            "PostgreSQL at {shown}: lb's tables are at version {found}, newer than this lb's \
             {}: an lb of a later release has used this database. Run that release (or a \
             later one); this lb changed nothing",
            current()
        ));
    }
    for step in &STEPS[usize::try_from(found).unwrap_or(0)..] {
        tx.batch_execute(step).map_err(failed)?;
    }
    tx.execute(
        "INSERT INTO lb_schema (version) VALUES ($1) \
         ON CONFLICT (one) DO UPDATE SET version = excluded.version",
        &[&current()],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)
}
