//! `lb`: a single-threaded event-loop load balancer for HTTP/1.1 and raw TCP.

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod buffer;
pub mod config;
pub mod conn;
pub mod drain;
pub mod event_loop;
pub mod fanout;
pub mod health;
pub mod held_sends;
pub mod http;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod probe;
pub mod reconfigure;
pub mod resolver;
pub mod roster;
pub mod signals;
pub mod state;
pub mod strategy;
pub mod tcp;
pub mod timer;
pub mod upgrade;
