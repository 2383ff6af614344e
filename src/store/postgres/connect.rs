//! What `--journal postgres://...` names: the database, with timeouts that keep an
//! unreachable one from holding the store thread for long, the instance whose rows this
//! lb owns (`?instance=NAME`, else the host's name), and its lease (`?lease=DURATION`).
//! Both parameters are lb's: they are taken off before the URL reaches PostgreSQL.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

/// A connection attempt gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Sent data unacknowledged this long means the database is gone (a cut network would
/// otherwise hold a commit for the kernel's 15 minutes of retransmissions).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest instance name: it is a key in every row.
const MAX_INSTANCE: usize = 128;
/// How long an instance that stopped renewing its lease is taken for alive.
const LEASE: Duration = Duration::from_secs(10);
const MIN_LEASE: Duration = Duration::from_secs(1);
const MAX_LEASE: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Target {
    config: Config,
    pub instance: String,
    pub lease: Duration,
    /// The epoch this lb claimed the instance under, shared by its workers' threads.
    pub epoch: Arc<Mutex<i64>>,
    /// The database for messages: host, port and name, never the password.
    pub shown: String,
    /// Where this lb listens for clients, shown to the other instances.
    pub address: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut instance = None;
        let mut lease = LEASE;
        let mut rest = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            if let Some(name) = param.strip_prefix("instance=") {
                instance = Some(name.to_string());
            } else if let Some(d) = param.strip_prefix("lease=") {
                lease = crate::config::parse_duration(d).map_err(|e| format!("lease: {e}"))?;
                if !(MIN_LEASE..=MAX_LEASE).contains(&lease) {
                    return Err(format!("lease {d}: from {MIN_LEASE:?} to {MAX_LEASE:?}"));
                }
            } else {
                rest.push(param);
            }
        }
        let url = match rest.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", rest.join("&")),
        };
        let mut config =
            Config::from_str(&url).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config
            .tcp_user_timeout(TCP_USER_TIMEOUT)
            .keepalives(true)
            .application_name("lb");
        // A session left in the middle of a transaction (its lb frozen, or cut off while
        // the connection stays up) would hold its instance's row locked, and no other lb
        // could take that instance over; PostgreSQL ends such a session after a lease.
        let idle = format!(
            "-c idle_in_transaction_session_timeout={}",
            lease.as_millis()
        );
        let options = match config.get_options() {
            Some(given) => format!("{given} {idle}"),
            None => idle,
        };
        config.options(&options);
        let instance = match instance {
            Some(name) => name,
            None => host_name()?,
        };
        if instance.is_empty()
            || instance.len() > MAX_INSTANCE
            || !instance.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "instance {instance:?}: 1 to {MAX_INSTANCE} visible ASCII characters"
            ));
        }
        let shown = shown(&config);
        Ok(Target {
            config,
            instance,
            lease,
            epoch: Arc::new(Mutex::new(0)),
            shown,
            address: String::new(),
        })
    }

    pub fn connect(&self) -> Result<Client, String> {
        self.config
            .connect(NoTls)
            .map_err(|e| format!("cannot reach PostgreSQL at {}: {}", self.shown, Why(&e)))
    }
}

fn shown(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{host}:{port}/{db}")
}

/// This machine's name: an instance's rows are its own unless `?instance=` says otherwise.
fn host_name() -> Result<String, String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(|e| {
        format!("cannot read the host's name for the instance ({e}): give ?instance=NAME")
    })?;
    Ok(name.trim().to_string())
}

/// A PostgreSQL error as an operator needs to read it. The client library shows an error
/// the server sent as "db error" and nothing more; this shows the server's own message,
/// with its detail and hint when it gave them.
pub struct Why<'a>(pub &'a postgres::Error);

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(db) = self.0.as_db_error() else {
            return write!(f, "{}", self.0);
        };
        write!(f, "{}: {}", db.severity(), db.message())?;
        if let Some(detail) = db.detail() {
            write!(f, " ({detail})")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_is_taken_off_the_url() {
        let t = Target::parse("postgres://lb@127.0.0.1:5433/store?instance=edge-1").unwrap();
        assert_eq!(t.instance, "edge-1");
        assert_eq!(t.shown, "127.0.0.1:5433/store");
        let t = Target::parse("postgresql://lb:secret@db/x?connect_timeout=9&instance=a").unwrap();
        assert_eq!((t.instance.as_str(), t.shown.as_str()), ("a", "db:5432/x"));
        assert!(Target::parse("postgres://lb@h/x?instance=").is_err());
        assert!(Target::parse("postgres://lb@h/x?instance=a%20b").is_ok());
        assert!(Target::parse("postgres://lb@h/x?nonsense=1").is_err());
        let t = Target::parse("postgres://lb@h/x?lease=3s&instance=b").unwrap();
        assert_eq!(
            (t.lease, t.instance.as_str()),
            (Duration::from_secs(3), "b")
        );
        assert_eq!(
            Target::parse("postgres://h/x?instance=a").unwrap().lease,
            LEASE
        );
        assert!(Target::parse("postgres://lb@h/x?lease=100ms").is_err());
    }
}
