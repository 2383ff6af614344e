//! The codec's tests: each module's own rules, a conformance table walking RFC 9113's
//! sections with a raw-frame client, one test per limit, and a well-behaved client.

mod client;
mod conformance;
mod flow;
mod frame;
mod limits;
mod settings;
mod stream;
mod upstream;
mod well_behaved;
