//! Headless Chromium for the tests that load pages in a real browser.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A browser to load the page with, from PATH.
fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

static PROFILES: AtomicUsize = AtomicUsize::new(0);

/// Runs headless Chromium on `url` with `args` in a fresh profile, and returns its stdout.
/// Chromium runs in its own process group, so that a hang is ended with all its helpers.
pub fn chromium(browser: &Path, args: &[&str], url: &str) -> String {
    use std::os::unix::process::CommandExt;
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-profile-{}-{}",
        std::process::id(),
        PROFILES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let group = child.id();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let end_group = || {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                end_group();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!("{} {args:?} {url} hung for 60 s", browser.display());
            }
        }
    };
    // Helpers that outlive the browser would hold stdout open.
    end_group();
    let out = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.success(),
        "{} exited with {status}",
        browser.display()
    );
    out
}

/// The browser a test runs, or `None` (and a note) outside CI when there is none; in CI,
/// where .ci/run installs it, a missing browser fails the test.
pub fn browser_or_skip() -> Option<PathBuf> {
    let found = find_browser();
    if found.is_none() {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("no chromium found on PATH in CI, where .ci/run installs it");
        }
        eprintln!("skipped: no chromium found (apt-get install chromium)");
    }
    found
}
