use super::*;

fn job(id: u128, backends: &[&str]) -> Op {
    Op::Job {
        id,
        request_id: format!("r{id}").into_bytes(),
        request: b"POST / HTTP/1.1\r\n\r\n".to_vec(),
        backends: backends.iter().map(|b| b.to_string()).collect(),
    }
}

fn finished(id: u128, backend: &str, given_up: bool) -> Op {
    Op::Finished {
        id,
        backend: backend.into(),
        given_up,
    }
}

#[test]
fn new_jobs_owe_every_copy_and_earlier_jobs_copies_are_finished() {
    let ops = [
        job(1, &["a", "b"]),
        finished(9, "a", false),
        finished(9, "b", true),
    ];
    let keyed = keyed(&ops);
    let c = Columns::of(&keyed);
    let (one, nine) = (&1u128.to_le_bytes()[..], &9u128.to_le_bytes()[..]);
    assert_eq!(c.jobs.0, [one]);
    assert_eq!(c.jobs.1, [&b"r1"[..]]);
    assert_eq!((c.jobs.3, c.jobs.4), (vec![1], vec![2]));
    assert_eq!(c.owed, ["a", "b"]);
    assert_eq!(
        c.finished,
        (vec![nine, nine], vec!["a", "b"], vec![false, true])
    );
    assert!(c.given_up_new.0.is_empty());
}

#[test]
fn a_copy_finished_in_its_jobs_batch_is_never_inserted() {
    let ops = [
        job(1, &["a", "b"]),
        job(2, &["a"]),
        finished(1, "a", false),
        finished(2, "a", true),
    ];
    let keyed = keyed(&ops);
    let c = Columns::of(&keyed);
    let (one, two) = (&1u128.to_le_bytes()[..], &2u128.to_le_bytes()[..]);
    // Job 1 still owes b; job 2 owes nothing, so it is not inserted, but its copy given
    // up is noted for operators with its request id.
    assert_eq!(c.jobs.0, [one]);
    assert_eq!((c.jobs.3, c.jobs.4), (vec![1], vec![1]));
    assert_eq!(c.owed, ["b"]);
    assert!(c.finished.0.is_empty());
    assert_eq!(c.given_up_new, (vec![two], vec!["a"], vec![&b"r2"[..]]));
}

#[test]
fn changes_are_not_columns() {
    let ops = [Op::Change(crate::store::BackendChange {
        pool: "p".into(),
        backend: "b".into(),
        action: crate::store::change::Action::Edit(crate::store::change::Edit::Drain),
    })];
    let keyed = keyed(&ops);
    assert_eq!(Columns::of(&keyed), Columns::default());
}

/// A failed batch leaves its finished copies to commit again, and its jobs (refused to
/// their clients) as withdrawals, which insert nothing.
#[test]
fn a_failed_batch_keeps_its_finished_copies_and_withdraws_its_jobs() {
    let ops = [job(1, &["a"]), finished(9, "a", false)];
    let again: Vec<Op> = ops.iter().map(Op::if_failed).collect();
    assert_eq!(again, [Op::Withdrawn { id: 1 }, finished(9, "a", false)]);
    let keyed = keyed(&again);
    let c = Columns::of(&keyed);
    assert!(c.jobs.0.is_empty() && c.owed.is_empty());
    assert_eq!(c.finished.1, ["a"]);
}

/// Each new job's owed copies are its own slice of one column, in order.
#[test]
fn each_job_owes_its_own_slice_of_the_owed_column() {
    let ops = [
        job(1, &["a", "b"]),
        job(2, &["c"]),
        job(3, &["a", "b", "c"]),
        finished(3, "b", false),
    ];
    let keyed = keyed(&ops);
    let c = Columns::of(&keyed);
    assert_eq!(c.owed, ["a", "b", "c", "a", "c"]);
    assert_eq!((c.jobs.3, c.jobs.4), (vec![1, 3, 4], vec![2, 3, 5]));
}
