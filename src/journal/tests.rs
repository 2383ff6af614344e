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

/// What the fan-out does with the jobs a writer resumes: carries them forward at once.
fn carry_resumed(j: &mut Journal, owed: &[Replayed]) {
    assert_eq!(j.carry_due(Instant::now()), Some(INHERITED));
    for r in owed {
        let backends: Vec<&str> = r.owed.iter().map(String::as_str).collect();
        let record = JobRecord {
            id: r.id,
            request_id: &r.request_id,
            request: &r.request,
            backends: &backends,
        };
        j.carry(&record, INHERITED);
    }
    j.end_turn();
    assert!(j.take_done().unwrap().result.is_ok());
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

fn job<'a>(id: u128, request: &'a [u8], backends: &'a [&'a str]) -> JobRecord<'a> {
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
            durable: true,
            uncarried: Vec::new(),
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
        if let Some(segment) = j.carry_due(Instant::now()) {
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
    let (mut j, replayed) = open(&dir, JournalSync::Off);
    let owed: Vec<(u128, Vec<String>)> = replayed.iter().map(|r| (r.id, r.owed.clone())).collect();
    assert_eq!(owed, [(pinned, vec!["b".to_string()])]);
    carry_resumed(&mut j, &replayed);
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
        uncarried: Vec::new(),
    };
    assert_eq!(j.take_done(), Some(written), "written now, synced later");
    assert_eq!(j.stats.syncs, 0);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    j.poll_thread();
    let durable = Done {
        batch: t.batch,
        result: Ok(()),
        durable: true,
        uncarried: Vec::new(),
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
        "the segments read stay until the shares are carried forward"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn open_err(dir: &Path) -> String {
    match Journal::open(dir, JournalSync::Off, 1) {
        Err(why) => why,
        Ok(_) => panic!("{} opened", dir.display()),
    }
}

#[test]
fn a_new_directory_gets_a_key_of_its_own_before_its_first_record() {
    use std::os::unix::fs::PermissionsExt;
    let mut keys = Vec::new();
    for name in ["key-a", "key-b"] {
        let dir = temp_dir(name);
        let (mut j, _) = open(&dir, JournalSync::Off);
        assert!(
            !dir.join(KEY_FILE).exists(),
            "no key before a record needs it"
        );
        let id = j.next_id();
        j.append(&job(id, b"POST", &["a"]));
        j.end_turn();
        assert!(j.take_done().unwrap().result.is_ok());
        let key = std::fs::read_to_string(dir.join(KEY_FILE)).unwrap();
        assert_eq!(key.len(), 33, "{key:?}");
        assert!(key.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.join("key.tmp").exists());
        keys.push(key);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert_ne!(keys[0], keys[1], "each directory has a key of its own");
}

#[test]
fn segments_are_not_read_without_their_own_key() {
    let dir = temp_dir("lost-key");
    let (mut j, _) = open(&dir, JournalSync::Off);
    let id = j.next_id();
    j.append(&job(id, b"POST", &["a"]));
    j.end_turn();
    drop(j);
    let key = std::fs::read(dir.join(KEY_FILE)).unwrap();
    let segments = files_in(&dir);
    std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
    let why = open_err(&dir);
    assert!(why.contains("but not their key"), "{why}");
    assert!(
        !dir.join(KEY_FILE).exists(),
        "no new key replaces the lost one"
    );
    std::fs::write(dir.join(KEY_FILE), "00112233445566778899aabbccddeeff\n").unwrap();
    let why = open_err(&dir);
    assert!(why.contains("not the key they were written with"), "{why}");
    std::fs::write(dir.join(KEY_FILE), "not a key\n").unwrap();
    let why = open_err(&dir);
    assert!(why.contains("is not a journal key"), "{why}");
    assert_eq!(files_in(&dir), segments, "nothing was deleted");
    std::fs::write(dir.join(KEY_FILE), key).unwrap();
    let (_, replayed) = open(&dir, JournalSync::Off);
    assert_eq!(replayed.len(), 1, "the right key reads them again");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_old_format_directory_is_read_once_and_written_anew_with_a_key() {
    let dir = temp_dir("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let mut old = Vec::new();
    legacy::write::job(&mut old, 5, &["a", "b"], b"POST /old HTTP/1.1\r\n\r\n");
    legacy::write::delivered(&mut old, 5, "a");
    legacy::write::job(&mut old, 6, &["a"], b"POST /done HTTP/1.1\r\n\r\n");
    legacy::write::delivered(&mut old, 6, "a");
    std::fs::write(dir.join("w0-000000000003.journal"), &old).unwrap();
    let (mut j, replayed) = open(&dir, JournalSync::Batch);
    let owed: Vec<(u128, Vec<String>)> = replayed.iter().map(|r| (r.id, r.owed.clone())).collect();
    assert_eq!(owed, [(5, vec!["b".to_string()])]);
    assert_eq!(replayed[0].request, b"POST /old HTTP/1.1\r\n\r\n");
    j.start(Box::new(|| {})).unwrap();
    carry_resumed(&mut j, &replayed);
    j.flush();
    let names = files_in(&dir);
    assert_eq!(names, [KEY_FILE, "lock", "w0-000000000004.journal"]);
    let new = std::fs::read(dir.join(&names[2])).unwrap();
    assert_eq!(&new[..4], b"LBJ2");
    drop(j);
    let (_, again) = open(&dir, JournalSync::Off);
    assert_eq!(again, replayed, "the same write, now in the new format");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_segments_read_at_start_stay_until_every_writer_has_carried_its_share() {
    let dir = temp_dir("inherited");
    let (mut j, _) = open(&dir, JournalSync::Off);
    for _ in 0..2 {
        let id = j.next_id();
        j.append(&job(id, b"POST", &["a"]));
    }
    j.end_turn();
    drop(j);
    let old = files_in(&dir);
    let mut writers = open_writers(&dir, JournalSync::Off, 2);
    let (first, second) = writers.split_at_mut(1);
    let (w0, w1) = (&mut first[0], &mut second[0]);
    carry_resumed(&mut w0.journal, &w0.owed);
    let now = files_in(&dir);
    assert!(old.iter().all(|f| now.contains(f)), "{now:?}");
    carry_resumed(&mut w1.journal, &w1.owed);
    // A job of the first writer finishes: its segments may go now.
    w0.journal.record(w0.owed[0].id, "a", Outcome::Delivered);
    let segment = w0.journal.current().number;
    w0.journal.finished(segment);
    w0.journal.end_turn();
    let now = files_in(&dir);
    assert!(
        old.iter()
            .all(|f| !f.ends_with(".journal") || !now.contains(f)),
        "{now:?}"
    );
    drop(writers);
    let (_, replayed) = open(&dir, JournalSync::Off);
    assert_eq!(replayed.len(), 1, "the job still owed, once");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_carry_that_fails_leaves_its_jobs_where_they_were_until_the_disk_is_tried_again() {
    let dir = temp_dir("uncarried");
    let (mut j, _) = open(&dir, JournalSync::Off);
    let id = j.next_id();
    j.append(&job(id, b"POST", &["a"]));
    j.end_turn();
    drop(j);
    let (mut j, owed) = open(&dir, JournalSync::Off);
    // The segment the carry is written to cannot be made.
    let segment = j.current().number;
    let blocked = j.files.path(segment);
    std::fs::create_dir(&blocked).unwrap();
    j.carry(&job(id, &owed[0].request, &["a"]), INHERITED);
    j.end_turn();
    let done = j.take_done().unwrap();
    assert!(done.result.is_err());
    let to = j.segments[1].number;
    let lost = Uncarried {
        id,
        from: INHERITED,
        to,
    };
    assert_eq!(done.uncarried, [lost]);
    j.uncarried(lost, true);
    let now = Instant::now();
    assert_eq!(j.carry_due(now), None, "not while the disk is refused");
    assert!(j.refusing(now).is_some());
    assert_eq!(j.carry_due(now + BACKOFF), Some(INHERITED));
    std::fs::remove_dir(&blocked).unwrap();
    j.carry(&job(id, &owed[0].request, &["a"]), INHERITED);
    j.end_turn();
    assert!(j.take_done().unwrap().result.is_ok());
    let segments = segments_in(&dir);
    assert_eq!(segments, 1, "{:?}", files_in(&dir));
    drop(j);
    let (_, again) = open(&dir, JournalSync::Off);
    assert_eq!(again, owed);
    std::fs::remove_dir_all(&dir).unwrap();
}
