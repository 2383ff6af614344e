//! A job's finished copies are committed together. A job whose copies all finish in one
//! commit costs its row one delete; one whose copies finish across two commits cost a
//! rewrite of the row first: a new row version, an index entry, and their WAL. The copies
//! of a POST fan-out mostly finish within milliseconds of each other, but in different
//! turns of the loop, so every job whose last copy was still open paid for the rewrite.
//! Each job's finished copies are held until its last one finishes, or for `HOLD` at most
//! (a copy waiting on a backend that is down). A copy held when lb dies is sent again by
//! the lb that resumes its job, as one finished in a commit not yet made is: backends drop
//! the repeats by the write's id.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::thread::Op;

/// The longest a finished copy waits for the other copies of its job.
pub const HOLD: Duration = Duration::from_millis(100);

/// The jobs this worker committed whose copies are not all finished.
#[derive(Default)]
pub struct Held {
    jobs: HashMap<u128, Unfinished>,
    /// When each job's first finished copy was held, oldest first; a job whose copies were
    /// let go since is skipped.
    since: VecDeque<(Instant, u128)>,
}

struct Unfinished {
    /// Copies not yet finished.
    open: usize,
    /// The finished copies held (`Op::Finished`), and since when.
    finished: Vec<Op>,
    held_since: Option<Instant>,
}

impl Held {
    /// Job `id` was appended, owing `copies` copies.
    pub fn owes(&mut self, id: u128, copies: usize) {
        self.jobs.insert(
            id,
            Unfinished {
                open: copies,
                finished: Vec::new(),
                held_since: None,
            },
        );
    }

    /// A copy of job `id` finished (`op`): it goes to `out` with the job's other finished
    /// copies once the job has none open, or at once for a job not appended here (one
    /// resumed, or taken over).
    pub fn finished(&mut self, id: u128, op: Op, now: Instant, out: &mut Vec<Op>) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return out.push(op);
        };
        job.open = job.open.saturating_sub(1);
        job.finished.push(op);
        if job.open == 0 {
            if let Some(job) = self.jobs.remove(&id) {
                out.extend(job.finished);
            }
        } else if job.held_since.is_none() {
            job.held_since = Some(now);
            self.since.push_back((now, id));
        }
    }

    /// Lets go of the copies held for `HOLD` by `now`, into `out`.
    pub fn release_due(&mut self, now: Instant, out: &mut Vec<Op>) {
        while let Some(&(at, id)) = self.since.front() {
            if now.saturating_duration_since(at) < HOLD {
                break;
            }
            self.since.pop_front();
            if let Some(job) = self.jobs.get_mut(&id).filter(|j| j.held_since == Some(at)) {
                job.held_since = None;
                out.append(&mut job.finished);
            }
        }
    }

    /// When the oldest copy held is to be let go of.
    pub fn due(&self) -> Option<Instant> {
        self.since.front().map(|&(at, _)| at + HOLD)
    }

    /// Job `id` was refused to its client: no copy of it will finish.
    pub fn forget(&mut self, id: u128) {
        self.jobs.remove(&id);
    }

    /// Lets go of every copy held, into `out` (lb is stopping).
    pub fn release_all(&mut self, out: &mut Vec<Op>) {
        self.since.clear();
        for (_, mut job) in self.jobs.drain() {
            out.append(&mut job.finished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: u128, backend: &str) -> Op {
        Op::Finished {
            id,
            backend: backend.into(),
            given_up: false,
        }
    }

    #[test]
    fn a_jobs_copies_go_together_once_the_last_one_finished() {
        let (mut held, mut out, now) = (Held::default(), Vec::new(), Instant::now());
        held.owes(1, 3);
        held.finished(1, done(1, "a"), now, &mut out);
        held.finished(1, done(1, "b"), now, &mut out);
        assert!(out.is_empty());
        held.finished(1, done(1, "c"), now, &mut out);
        assert_eq!(out, [done(1, "a"), done(1, "b"), done(1, "c")]);
        assert!(held.jobs.is_empty());
    }

    #[test]
    fn copies_held_past_the_hold_go_alone_and_later_ones_are_held_again() {
        let (mut held, mut out, now) = (Held::default(), Vec::new(), Instant::now());
        held.owes(1, 3);
        held.finished(1, done(1, "a"), now, &mut out);
        held.release_due(now + HOLD / 2, &mut out);
        assert!(out.is_empty());
        held.release_due(now + HOLD, &mut out);
        assert_eq!(out, [done(1, "a")]);
        out.clear();
        let later = now + 2 * HOLD;
        held.finished(1, done(1, "b"), later, &mut out);
        held.release_due(later + HOLD / 2, &mut out);
        assert!(out.is_empty());
        held.finished(1, done(1, "c"), later, &mut out);
        assert_eq!(out, [done(1, "b"), done(1, "c")]);
    }

    #[test]
    fn copies_of_jobs_not_appended_here_go_at_once() {
        let (mut held, mut out, now) = (Held::default(), Vec::new(), Instant::now());
        held.finished(7, done(7, "a"), now, &mut out);
        assert_eq!(out, [done(7, "a")]);
    }

    #[test]
    fn a_forgotten_job_holds_nothing_and_stopping_lets_go_of_everything() {
        let (mut held, mut out, now) = (Held::default(), Vec::new(), Instant::now());
        held.owes(1, 2);
        held.owes(2, 2);
        held.forget(1);
        held.finished(2, done(2, "a"), now, &mut out);
        assert!(out.is_empty());
        held.release_all(&mut out);
        assert_eq!(out, [done(2, "a")]);
        assert!(held.jobs.is_empty() && held.since.is_empty());
    }
}
