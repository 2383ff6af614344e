//! Header rules of a route, for one side of the exchange, compiled: the names to leave out
//! when copying the message's fields (removed, or replaced by `set`), and the fields to
//! add, already written out. Applied as remove, then set, then add.
//!
//! Fields lb owns cannot be named by a rule: lb frames messages by them, routes by them,
//! or writes them itself from what it knows of the connection, and a rule that could
//! remove or forge one would break framing or let a route lie about the client.

use super::sink::{Full, Sink};
use crate::config::model::HeaderEdits;

/// Field names lb owns (lower case), and why, for the message that refuses a rule.
const OWNED: [(&str, &str); 14] = [
    ("content-length", "lb frames messages by it"),
    ("transfer-encoding", "lb frames messages by it"),
    ("connection", "it is hop-by-hop: lb sets it per connection"),
    ("keep-alive", "it is hop-by-hop: lb sets it per connection"),
    (
        "proxy-connection",
        "it is hop-by-hop: lb sets it per connection",
    ),
    ("te", "it is hop-by-hop: lb sets it per connection"),
    ("trailer", "it is hop-by-hop: lb sets it per connection"),
    ("upgrade", "lb decides which connections become tunnels"),
    (
        "host",
        "lb routes by it and forwards it as the client sent it",
    ),
    (
        "x-request-id",
        "lb assigns it and logs it to trace the request",
    ),
    (
        "x-forwarded-for",
        "lb writes it from the connection; a rule could forge the client",
    ),
    (
        "x-forwarded-proto",
        "lb writes it from the connection; a rule could forge the client",
    ),
    (
        "x-forwarded-host",
        "lb writes it from the connection; a rule could forge the client",
    ),
    (
        "forwarded",
        "lb writes it from the connection; a rule could forge the client",
    ),
];

/// Why a rule may not touch `name`, if lb owns it.
pub(super) fn owned(name: &str) -> Option<&'static str> {
    OWNED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, why)| why)
}

/// RFC 9110 §5.6.2.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What is wrong with `value` as a field value lb writes, if anything: visible ASCII with
/// inner spaces or tabs only, so that no rule can end a line or smuggle a field.
pub(super) fn field_value_problem(value: &str) -> Option<String> {
    if let Some(c) = value
        .chars()
        .find(|&c| !(c.is_ascii_graphic() || c == ' ' || c == '\t'))
    {
        return Some(format!(
            "value {value:?} holds {c:?}: a field value is visible ASCII, spaces and tabs"
        ));
    }
    if value.trim_matches([' ', '\t']).len() != value.len() {
        return Some(format!(
            "value {value:?} starts or ends with white space, which no field value keeps"
        ));
    }
    None
}

#[derive(Default)]
pub struct Edits {
    /// Lower case: removed, or replaced by `set`.
    drop: Box<[Box<str>]>,
    /// `Name: value\r\n` for each `set`, then each `add`.
    added: Box<[u8]>,
}

impl Edits {
    /// From edits already checked (`check_edits` found nothing).
    pub(super) fn new(edits: &HeaderEdits) -> Edits {
        let mut drop: Vec<Box<str>> = Vec::new();
        for name in edits.remove.iter().chain(edits.set.iter().map(|(n, _)| n)) {
            let lower = name.to_ascii_lowercase();
            if !drop.iter().any(|d| **d == lower) {
                drop.push(lower.into());
            }
        }
        let mut added = Vec::new();
        for (name, value) in edits.set.iter().chain(&edits.add) {
            added.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        Edits {
            drop: drop.into(),
            added: added.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.added.is_empty()
    }

    /// Leave out a field of this name when copying the message's fields.
    pub fn drops(&self, name: &str) -> bool {
        self.drop.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Writes the fields `set` and `add` give, each as a full line.
    pub fn write_added(&self, sink: &mut impl Sink) -> Result<(), Full> {
        sink.put(&self.added)
    }
}

/// Every problem with one side's edits: (the key it is under, the message).
pub(super) fn check_edits(edits: &HeaderEdits) -> Vec<(&'static str, Option<usize>, String)> {
    let mut problems = Vec::new();
    let mut name_problem = |key, at, verb: &str, name: &str| {
        if !is_token(name) {
            problems.push((key, at, format!("{name:?} is not a header field name")));
        } else if let Some(why) = owned(name) {
            problems.push((key, at, format!("a rule cannot {verb} {name}: {why}")));
        }
    };
    for (name, _) in &edits.set {
        name_problem("set", None, "set", name);
    }
    for (name, _) in &edits.add {
        name_problem("add", None, "add", name);
    }
    for (i, name) in edits.remove.iter().enumerate() {
        name_problem("remove", Some(i), "remove", name);
    }
    for (key, list) in [("set", &edits.set), ("add", &edits.add)] {
        for (i, (name, value)) in list.iter().enumerate() {
            if let Some(p) = field_value_problem(value) {
                problems.push((key, None, format!("{name}: {p}")));
            }
            if key == "set" && list[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                problems.push((key, None, format!("{name} is set twice")));
            }
        }
    }
    problems
}
