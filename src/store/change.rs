//! A runtime API change to one backend, as instances sharing a store tell each other of
//! it: the instance whose API took it records it, and the others apply it as their own
//! API would (`admin/peers.rs`).

use std::fmt;
use std::net::SocketAddr;

use crate::config::parse_weight;

/// What the API did to a listed backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Drain,
    Maint,
    Ready,
    Weight(u32),
    Remove,
    /// Removed, and the POST copies it still owes given up.
    GiveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Edit(Edit),
    /// Added (PUT), at the address its name had where it was added.
    Add {
        addr: SocketAddr,
        weight: Option<u32>,
    },
}

/// A change to backend `backend` (its label) of pool `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendChange {
    pub pool: String,
    pub backend: String,
    pub action: Action,
}

/// An action as a row keeps it: its name, a weight, an address.
pub type Row = (&'static str, Option<i32>, Option<String>);

impl Action {
    pub fn to_row(self) -> Row {
        let weight = |w: u32| i32::try_from(w).ok();
        match self {
            Action::Edit(Edit::Drain) => ("drain", None, None),
            Action::Edit(Edit::Maint) => ("maint", None, None),
            Action::Edit(Edit::Ready) => ("ready", None, None),
            Action::Edit(Edit::Weight(w)) => ("weight", weight(w), None),
            Action::Edit(Edit::Remove) => ("remove", None, None),
            Action::Edit(Edit::GiveUp) => ("give-up", None, None),
            Action::Add { addr, weight: w } => ("add", w.and_then(weight), Some(addr.to_string())),
        }
    }

    /// `None` for a row this lb cannot read (written by hand, or by a later release).
    pub fn from_row(name: &str, weight: Option<i32>, addr: Option<&str>) -> Option<Action> {
        let weight = match weight {
            Some(w) => Some(parse_weight(&w.to_string())?),
            None => None,
        };
        Some(match (name, weight) {
            ("drain", None) => Action::Edit(Edit::Drain),
            ("maint", None) => Action::Edit(Edit::Maint),
            ("ready", None) => Action::Edit(Edit::Ready),
            ("weight", Some(w)) => Action::Edit(Edit::Weight(w)),
            ("remove", None) => Action::Edit(Edit::Remove),
            ("give-up", None) => Action::Edit(Edit::GiveUp),
            ("add", weight) => Action::Add {
                addr: addr?.parse().ok()?,
                weight,
            },
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Edit(Edit::Weight(w)) => write!(f, "weight {w}"),
            Action::Edit(Edit::GiveUp) => f.write_str("remove, giving up its owed copies"),
            Action::Add { addr, .. } => write!(f, "add at {addr}"),
            other => f.write_str(other.to_row().0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_as_written_and_odd_rows_are_refused() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let all = [
            Action::Edit(Edit::Drain),
            Action::Edit(Edit::Maint),
            Action::Edit(Edit::Ready),
            Action::Edit(Edit::Weight(7)),
            Action::Edit(Edit::Remove),
            Action::Edit(Edit::GiveUp),
            Action::Add { addr, weight: None },
            Action::Add {
                addr,
                weight: Some(3),
            },
        ];
        for a in all {
            let (name, weight, addr) = a.to_row();
            assert_eq!(Action::from_row(name, weight, addr.as_deref()), Some(a));
        }
        assert_eq!(Action::from_row("weight", None, None), None);
        assert_eq!(Action::from_row("weight", Some(0), None), None);
        assert_eq!(Action::from_row("drain", Some(2), None), None);
        assert_eq!(Action::from_row("add", None, Some("nowhere")), None);
        assert_eq!(Action::from_row("explode", None, None), None);
        assert_eq!(Action::Edit(Edit::Weight(4)).to_string(), "weight 4");
        assert_eq!(Action::Edit(Edit::Drain).to_string(), "drain");
    }
}
