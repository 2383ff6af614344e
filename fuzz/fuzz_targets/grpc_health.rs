//! A gRPC health check fed arbitrary backend bytes, in pieces whose size the first byte
//! picks, after the backend's SETTINGS; and the same bytes as a framed HealthCheckResponse
//! and as a `grpc-timeout` value. Nothing panics, a call never uses more input than it
//! got, a response message is only accepted within `MAX_RESPONSE`, and a timeout only
//! within 8 digits and a unit.
#![no_main]

use std::time::{Duration, Instant};

use lb::grpc::health::HealthCall;
use lb::grpc::message::{MAX_RESPONSE, PREFIX, decode_response};
use lb::grpc::timeout;
use libfuzzer_sys::fuzz_target;

/// An empty SETTINGS frame: the backend's preface.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

fuzz_target!(|data: &[u8]| {
    if decode_response(data).is_ok() {
        assert!(data.len() <= PREFIX + MAX_RESPONSE, "{}", data.len());
    }
    if let Some(t) = timeout::parse(data) {
        assert!(data.len() <= timeout::MAX_DIGITS + 1);
        assert!(t <= Duration::from_secs(99_999_999 * 3600));
    }
    let now = Instant::now();
    let mut call = HealthCall::new("backend:50051", "app.Svc", now).expect("a call");
    let mut out = Vec::new();
    call.take_output(&mut out);
    let mut input = SETTINGS.to_vec();
    let piece = data.first().map_or(1, |&b| usize::from(b % 32) + 1);
    for chunk in data.get(1..).unwrap_or_default().chunks(piece) {
        input.extend_from_slice(chunk);
        let (used, verdict) = call.receive(&input, now);
        assert!(used <= input.len());
        input.drain(..used);
        call.take_output(&mut out);
        if verdict.is_some() {
            return;
        }
    }
});
