//! The instances sharing a PostgreSQL store in Prometheus text format: each one's last
//! heartbeat, release and owed copies, and the copies owed per backend over all of them.

use std::fmt::Write;

use super::prometheus::{LabelValue, family};
use crate::store::cluster::{Cluster, pool_and_label};

pub fn render(c: &Cluster, out: &mut String) {
    family(
        out,
        "lb_cluster_instance_last_heartbeat_timestamp_seconds",
        "gauge",
        "When each instance sharing the store last renewed its lease, in seconds since the Unix epoch.",
    );
    for i in c.instances.iter() {
        if let Some(at) = i.heartbeat {
            let name = LabelValue(&i.name);
            let _ = writeln!(
                out,
                "lb_cluster_instance_last_heartbeat_timestamp_seconds{{instance=\"{name}\"}} {at}"
            );
        }
    }
    family(
        out,
        "lb_cluster_instance_info",
        "gauge",
        "Always 1 for each instance sharing the store; its release, where it listens for clients and whether its lease runs are labels.",
    );
    for i in &c.instances {
        let _ = writeln!(
            out,
            "lb_cluster_instance_info{{instance=\"{}\",version=\"{}\",address=\"{}\",alive=\"{}\"}} 1",
            LabelValue(&i.name),
            LabelValue(i.version.as_deref().unwrap_or("")),
            LabelValue(i.address.as_deref().unwrap_or("")),
            i.alive
        );
    }
    family(
        out,
        "lb_cluster_instance_owed_copies",
        "gauge",
        "POST copies each instance sharing the store still owes.",
    );
    for i in &c.instances {
        let name = LabelValue(&i.name);
        let _ = writeln!(
            out,
            "lb_cluster_instance_owed_copies{{instance=\"{name}\"}} {}",
            i.owed
        );
    }
    family(
        out,
        "lb_cluster_owed_copies",
        "gauge",
        "POST copies owed to each backend by all the instances sharing the store.",
    );
    for (key, n) in &c.owed {
        let (pool, label) = pool_and_label(key);
        let pool = pool.map_or(String::new(), |p| format!(",pool=\"{}\"", LabelValue(p)));
        let _ = writeln!(
            out,
            "lb_cluster_owed_copies{{backend=\"{}\"{pool}}} {n}",
            LabelValue(label)
        );
    }
}
