use std::path::Path;

use super::*;

fn open(dir: &Path, mode: JournalSync) -> (Journal, Vec<Replayed>) {
    let mut writers = open_writers(dir, mode, 1);
    let w = writers.remove(0);
    (*w.journal, w.owed)
}

fn open_writers(dir: &Path, mode: JournalSync, n: usize) -> Vec<Writer> {
    match Journal::open(dir, mode, n) {
        Ok(Opened::Ready(writers)) => writers,
        Ok(Opened::Held(why)) | Err(why) => panic!("{why}"),
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn segments_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        })
        .count()
}

fn job<'a>(id: u64, request: &'a [u8], backends: &'a [&'a str]) -> JobRecord<'a> {
    JobRecord {
        id,
        request_id: b"r",
        request,
        backends,
    }
}

#[test]
fn finished_segments_go_and_a_pinned_job_is_carried_forward() {
    let dir = temp_dir("rotate");
    let (mut j, replayed) = open(&dir, JournalSync::Off);
    assert!(replayed.is_empty());
    j.start(Box::new(|| {})).unwrap();
    let big = vec![b'x'; 3 << 20];
    // Job 0 stays owed to "b"; the others finish at once.
    let pinned = j.next_id();
    let first = j.append(&job(pinned, &big, &["a", "b"]));
    j.record(pinned, "a", Outcome::Delivered);
    j.end_turn();
    assert_eq!(
        j.take_done(),
        Some(Done {
            batch: first.batch,
            result: Ok(()),
            durable: true
        })
    );
    let mut carried = false;
    for _ in 0..12 {
        let id = j.next_id();
        let t = j.append(&job(id, &big, &["a"]));
        j.end_turn();
        assert!(j.take_done().unwrap().result.is_ok());
        j.record(id, "a", Outcome::Delivered);
        j.finished(t.segment);
        if let Some(segment) = j.carry_due() {
            assert_eq!(segment, first.segment);
            j.carry(&job(pinned, &big, &["b"]), segment);
            carried = true;
        }
        j.end_turn();
    }
    assert!(carried, "the pinned job was carried forward");
    assert!(
        segments_in(&dir) <= MAX_SEGMENTS,
        "{} segments left",
        segments_in(&dir)
    );
    drop(j);
    let (_, replayed) = open(&dir, JournalSync::Off);
    let owed: Vec<(u64, Vec<String>)> = replayed.into_iter().map(|r| (r.id, r.owed)).collect();
    assert_eq!(owed, [(pinned, vec!["b".to_string()])]);
    assert_eq!(segments_in(&dir), 1, "replay leaves one segment");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batch_mode_syncs_on_its_thread_and_wakes_the_caller() {
    let dir = temp_dir("batch");
    let (mut j, _) = open(&dir, JournalSync::Batch);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    j.start(Box::new(move || {
        let _ = tx.lock().map(|t| t.send(()));
    }))
    .unwrap();
    let id = j.next_id();
    let t = j.append(&job(id, b"POST", &["a"]));
    j.end_turn();
    let written = Done {
        batch: t.batch,
        result: Ok(()),
        durable: false,
    };
    assert_eq!(j.take_done(), Some(written), "written now, synced later");
    assert_eq!(j.stats.syncs, 0);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    j.poll_thread();
    let durable = Done {
        batch: t.batch,
        result: Ok(()),
        durable: true,
    };
    assert_eq!(j.take_done(), Some(durable));
    assert_eq!(j.stats.syncs, 1);
    assert!(j.stats.sync_latency.count == 1);
    drop(j);
    let (_, replayed) = open(&dir, JournalSync::Batch);
    assert_eq!(replayed.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_open_of_a_locked_directory_is_refused() {
    let dir = temp_dir("lock");
    let (_held, _) = open(&dir, JournalSync::Off);
    let Ok(Opened::Held(err)) = Journal::open(&dir, JournalSync::Off, 1) else {
        panic!("a second open is refused");
    };
    assert!(err.contains("in use by another lb"), "{err}");
    assert!(err.contains(&std::process::id().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn workers_write_their_own_segments_and_share_what_is_owed() {
    let dir = temp_dir("workers");
    let mut writers = open_writers(&dir, JournalSync::Off, 2);
    let mut ids = Vec::new();
    for w in &mut writers {
        for _ in 0..3 {
            let id = w.journal.next_id();
            ids.push(id);
            w.journal.append(&job(id, b"POST /", &["a"]));
        }
        w.journal.end_turn();
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no two writers use one id: {ids:?}");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".journal"))
        .collect();
    assert!(names.iter().any(|n| n.starts_with("w0-")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("w1-")), "{names:?}");
    drop(writers);
    // Three workers now: all six jobs come back, two to each.
    let writers = open_writers(&dir, JournalSync::Off, 3);
    let shares: Vec<usize> = writers.iter().map(|w| w.owed.len()).collect();
    assert_eq!(shares, [2, 2, 2]);
    drop(writers);
    let (_, replayed) = open(&dir, JournalSync::Off);
    assert_eq!(
        replayed.len(),
        6,
        "each share was written anew before the old segments went"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
