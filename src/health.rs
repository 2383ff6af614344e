//! Per-backend health: consecutive check results, flipping up or down only at thresholds;
//! `monitor.rs` keeps one per backend.

mod monitor;

pub use monitor::{Checks, HealthMonitor, Known, LastCheck};

/// Where one backend stands with its health checks. Starts up.
#[derive(Debug, Clone)]
pub struct HealthState {
    up: bool,
    passes: u32,
    failures: u32,
}

/// A change of state, reported by the check that caused it and by no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    CameUp,
}

impl HealthState {
    pub fn new() -> Self {
        HealthState {
            up: true,
            passes: 0,
            failures: 0,
        }
    }

    /// Up or down, with no results counted yet.
    pub fn starting(up: bool) -> Self {
        HealthState {
            up,
            passes: 0,
            failures: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Counts one check result. `fall` failures in a row take an up backend down; `rise`
    /// passes in a row bring a down one back. A threshold of 0 acts as 1.
    pub fn record(&mut self, passed: bool, rise: u32, fall: u32) -> Option<Transition> {
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
            if !self.up && self.passes >= rise {
                self.up = true;
                return Some(Transition::CameUp);
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
            if self.up && self.failures >= fall {
                self.up = false;
                return Some(Transition::WentDown);
            }
        }
        None
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    pub fn consecutive_passes(&self) -> u32 {
        self.passes
    }
}

impl Default for HealthState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Transition::{CameUp, WentDown};
    use super::*;

    /// Feeds `results` with rise 2, fall 3 and returns what each one reported.
    fn run(h: &mut HealthState, results: &[bool]) -> Vec<Option<Transition>> {
        results.iter().map(|&r| h.record(r, 2, 3)).collect()
    }

    #[test]
    fn starts_up_with_no_history() {
        let h = HealthState::default();
        assert!(h.is_up());
        assert_eq!((h.consecutive_passes(), h.consecutive_failures()), (0, 0));
    }

    #[test]
    fn goes_down_after_fall_failures_in_a_row_and_says_so_once() {
        let mut h = HealthState::new();
        let got = run(&mut h, &[false, false, false, false, false]);
        assert_eq!(got, [None, None, Some(WentDown), None, None]);
        assert!(!h.is_up());
        assert_eq!(h.consecutive_failures(), 5);
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let mut h = HealthState::new();
        let got = run(&mut h, &[false, false, true, false, false, true]);
        assert!(got.iter().all(Option::is_none));
        assert!(h.is_up());
        assert_eq!((h.consecutive_passes(), h.consecutive_failures()), (1, 0));
    }

    #[test]
    fn comes_up_after_rise_passes_in_a_row_and_says_so_once() {
        let mut h = HealthState::new();
        run(&mut h, &[false, false, false]);
        let got = run(&mut h, &[true, false, true, true, true, true]);
        assert_eq!(got, [None, None, None, Some(CameUp), None, None]);
        assert!(h.is_up());
        assert_eq!(h.consecutive_passes(), 4);
    }

    #[test]
    fn flaps_report_each_flip_exactly_once() {
        let mut h = HealthState::new();
        let mut flips = Vec::new();
        for _ in 0..3 {
            flips.extend(run(&mut h, &[false; 4]).into_iter().flatten());
            flips.extend(run(&mut h, &[true; 4]).into_iter().flatten());
        }
        assert_eq!(
            flips,
            [WentDown, CameUp, WentDown, CameUp, WentDown, CameUp]
        );
    }

    #[test]
    fn thresholds_of_one_flip_on_every_change() {
        let mut h = HealthState::new();
        assert_eq!(h.record(false, 1, 1), Some(WentDown));
        assert_eq!(h.record(true, 1, 1), Some(CameUp));
        assert_eq!(h.record(true, 0, 0), None);
        assert_eq!(h.record(false, 0, 0), Some(WentDown));
    }
}
