//! The instances sharing a PostgreSQL store, as worker 0's store thread last read them,
//! for `/metrics` and `/stats`: each one's version, last heartbeat and owed copies, and
//! the copies owed per backend over all of them.

/// One instance with a row in `lb_instances`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    /// `None` for a row an lb before the cluster view wrote.
    pub version: Option<String>,
    /// When it last renewed its lease, in seconds since the Unix epoch.
    pub heartbeat: Option<f64>,
    /// Whether its lease still runs.
    pub alive: bool,
    pub owed: i64,
    /// Where it listens for clients (`None` for a row an lb before schema 7 wrote).
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    pub instances: Vec<Instance>,
    /// Copies owed per backend, as the store names it (`journal_key`: `POOL LABEL`, or the
    /// label alone in the flags' pool), over every instance.
    pub owed: Vec<(String, i64)>,
}

/// A backend's name in the store, as its pool and its label.
pub fn pool_and_label(key: &str) -> (Option<&str>, &str) {
    match key.split_once(' ') {
        Some((pool, label)) => (Some(pool), label),
        None => (None, key),
    }
}
