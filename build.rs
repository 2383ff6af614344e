//! Puts the commit lb is built from into the binary as `LB_COMMIT`, for `lb --version`:
//! a bug report then names the exact source, not only the crate version.
//!
//! From `git rev-parse --short HEAD` when the crate sits in its own checkout. A build from
//! a .crate or a tarball has no `.git`: then the `LB_COMMIT` environment variable, which a
//! packager who knows the commit may set, else `unknown`. Nothing here fails the build: a
//! missing or broken git only makes the commit `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LB_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_git(&dir)
        .or_else(from_env)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=LB_COMMIT={commit}");
}

/// The short commit of HEAD, if this directory is the top of a git checkout (a `.git`
/// directory, or a `.git` file in a worktree). Asking only there keeps a tarball
/// unpacked inside some other repository from taking that repository's commit.
fn from_git(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short", "HEAD"]).filter(|c| is_commit(c))?;
    watch_head(dir);
    Some(commit)
}

/// Reruns this script when HEAD moves: on a checkout of another branch (HEAD itself
/// changes) and on a commit (the branch's ref changes). Paths come from `git rev-parse
/// --git-path`, which knows where a worktree keeps HEAD and where the shared refs are.
fn watch_head(dir: &Path) {
    // A path that does not exist would make cargo rerun this script at every build, so
    // only existing ones are named.
    let watch = |rel: &str| {
        let p = dir.join(git(dir, &["rev-parse", "--git-path", rel])?);
        p.exists()
            .then(|| println!("cargo:rerun-if-changed={}", p.display()))
    };
    watch("HEAD");
    // HEAD names a branch (`ref: refs/heads/x`) unless it is detached, when it holds the
    // commit itself and watching it is enough.
    let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) else {
        return;
    };
    if watch(&branch).is_none() {
        // Packed by `git gc`: the ref is a line of packed-refs until the next commit
        // writes it as a loose file again, in the branch's directory. That directory is
        // watched only then: other branches' commits land there too, and each would
        // rebuild lb for nothing.
        watch("packed-refs");
        if let Some((parent, _)) = branch.rsplit_once('/') {
            watch(parent);
        }
    }
}

/// A commit a packager passed in, if it looks like one: the version line must stay
/// `lb X.Y.Z (COMMIT)` whatever the environment holds.
fn from_env() -> Option<String> {
    let value = std::env::var("LB_COMMIT").ok()?;
    let value = value.trim();
    if is_commit(value) {
        return Some(value.to_ascii_lowercase());
    }
    if !value.is_empty() {
        println!(
            "cargo:warning=LB_COMMIT={value:?} is not a commit hash (7-40 hex digits); using `unknown`"
        );
    }
    None
}

fn is_commit(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One git command's trimmed output; None if git is missing or the command fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string())
}
