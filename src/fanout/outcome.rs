//! What one attempt of a copy comes to. This is the one place that decides it:
//!
//! | the backend                                   | outcome     | what follows                                  |
//! |-----------------------------------------------|-------------|-----------------------------------------------|
//! | answers a status in `--success-status` (2xx)  | delivered   | never sent again; the first one answers the client |
//! | answers a status `--retry-on` names (5xx)     | retryable   | sent again after a backoff, until attempts run out |
//! | connect failure, timeout, reset, bad response | retryable   | the same, for each one `--retry-on` names     |
//! | answers any other status (4xx, 3xx)           | refused     | final: logged once, counted, never sent again |
//! | a failure `--retry-on` does not name          | given up    | final, as when attempts run out               |

use crate::config::model::Fanout;
use crate::config::{RetryOn, StatusSet};
use crate::metrics::Failure;

/// How an attempt ended, as far as the backend is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole answer with this status.
    Status(u16),
    ConnectFailure,
    /// No answer within --server-timeout (or no connection within --connect-timeout).
    Timeout,
    /// The connection was lost after the request went out, before a whole answer.
    Reset,
    BadResponse,
    /// lb itself was out of descriptors or ports: retried, and never the backend's fault.
    Exhausted,
}

impl Answer {
    /// The failure to count, when the backend did not answer at all.
    pub fn failure(self) -> Option<Failure> {
        match self {
            Answer::Status(_) => None,
            Answer::ConnectFailure => Some(Failure::Connect),
            Answer::Timeout => Some(Failure::Timeout),
            Answer::Reset => Some(Failure::Reset),
            Answer::BadResponse => Some(Failure::BadResponse),
            Answer::Exhausted => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retryable,
    Refused,
    /// A failure that is not to be retried: final, like a copy whose attempts are spent.
    GivenUp,
}

/// The flags that decide outcomes, copied out of the config.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    success: StatusSet,
    retry_on: RetryOn,
    /// The largest refused answer kept for the client.
    pub max_response: u64,
    /// --max-buffered-bytes, which kept answers count against.
    pub max_buffered: u64,
}

impl Rules {
    pub fn of(fanout: &Fanout, max_buffered: u64) -> Self {
        Rules {
            success: fanout.success_status,
            retry_on: fanout.retry_on,
            max_response: fanout.max_response,
            max_buffered,
        }
    }

    pub fn classify(&self, answer: Answer) -> Outcome {
        let r = &self.retry_on;
        let retried = match answer {
            Answer::Status(s) if self.success.contains(s) => return Outcome::Delivered,
            Answer::Status(s) if r.statuses.contains(s) => true,
            Answer::Status(_) => return Outcome::Refused,
            Answer::ConnectFailure => r.connect_failure,
            Answer::Timeout => r.timeout,
            Answer::Reset => r.reset,
            Answer::BadResponse => r.bad_response,
            Answer::Exhausted => true,
        };
        if retried {
            Outcome::Retryable
        } else {
            Outcome::GivenUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Answer::*;
    use super::Outcome::*;
    use super::*;
    use crate::config::{Command, parse_args};

    fn rules(flags: &str) -> Rules {
        let mut args = vec!["-b".to_string(), "127.0.0.1:1".to_string()];
        args.extend(flags.split_whitespace().map(String::from));
        let Ok(Command::Run(cfg)) = parse_args(&args) else {
            panic!("config {flags}");
        };
        Rules::of(&cfg.site().pools[0].fanout, cfg.max_buffered_bytes)
    }

    #[test]
    fn defaults_deliver_2xx_retry_5xx_and_failures_refuse_the_rest() {
        let r = rules("");
        for (answer, outcome) in [
            (Status(200), Delivered),
            (Status(201), Delivered),
            (Status(204), Delivered),
            (Status(500), Retryable),
            (Status(503), Retryable),
            (Status(404), Refused),
            (Status(409), Refused),
            (Status(301), Refused),
            (ConnectFailure, Retryable),
            (Timeout, Retryable),
            (Reset, Retryable),
            (BadResponse, Retryable),
        ] {
            assert_eq!(r.classify(answer), outcome, "{answer:?}");
        }
    }

    #[test]
    fn flags_move_answers_between_outcomes() {
        let r = rules("--success-status 201 --retry-on 503,429,timeout");
        assert_eq!(r.classify(Status(200)), Refused);
        assert_eq!(r.classify(Status(429)), Retryable);
        assert_eq!(r.classify(Status(500)), Refused);
        assert_eq!(r.classify(Timeout), Retryable);
        assert_eq!(r.classify(ConnectFailure), GivenUp);
        assert_eq!(r.classify(Reset), GivenUp);
        let all = rules("--success-status 201 --retry-on all");
        assert_eq!(all.classify(Status(201)), Delivered);
        for answer in [Status(200), Status(404), Status(500), Reset, BadResponse] {
            assert_eq!(all.classify(answer), Retryable, "{answer:?}");
        }
    }
}
