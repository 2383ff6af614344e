//! Backend selection: one small struct per algorithm behind one trait.

use std::net::IpAddr;

use crate::backend::{Backend, BackendId};

mod round_robin;

pub use round_robin::RoundRobin;

/// What a strategy may look at besides the backends themselves.
#[derive(Debug, Default, Clone, Copy)]
pub struct PickContext<'a> {
    pub client_ip: Option<IpAddr>,
    /// The request path (HTTP mode); empty in TCP mode.
    pub path: &'a [u8],
}

pub trait Strategy {
    /// Chooses a backend that is up and that `accept` allows, or `None` when there is none.
    /// `accept` lets the caller skip backends already tried for this request.
    fn pick(
        &mut self,
        backends: &[Backend],
        ctx: &PickContext,
        accept: &dyn Fn(BackendId) -> bool,
    ) -> Option<BackendId>;
}

/// The names `-s` accepts, default first.
pub const NAMES: &[&str] = &["round-robin"];

/// Builds the strategy called `name` for this backend list.
pub fn by_name(name: &str, _backends: &[Backend]) -> Result<Box<dyn Strategy>, String> {
    match name {
        "round-robin" => Ok(Box::new(RoundRobin::default())),
        _ => Err(format!(
            "unknown strategy '{name}' (one of: {})",
            NAMES.join(", ")
        )),
    }
}

/// True when backend `id` may be picked at all.
pub(crate) fn eligible(backends: &[Backend], id: BackendId, accept: &dyn Fn(BackendId) -> bool) -> bool {
    backends[id].up && accept(id)
}
