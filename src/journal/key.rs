//! The journal directory's secret key: 16 bytes from the operating system's random source,
//! made with the directory and kept beside the segments in `DIR/key` (mode 0600, 32 hex
//! digits). Every record is authenticated with it (`record.rs`), so bytes a client sent can
//! never pass for a record; and the segments cannot be read without it, so it moves with
//! the directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::TryRng;
use rand::rngs::SysRng;

use super::siphash::SipKey;

pub const KEY_FILE: &str = "key";

/// The key, and whether it is on disk yet: a new directory's key is saved before the first
/// record is written (and a full disk may delay that), never after.
pub struct KeyFile {
    bytes: [u8; 16],
    path: PathBuf,
    saved: Mutex<bool>,
}

impl KeyFile {
    /// `DIR/key`, or a new key (to be saved before the first write) when there is none.
    /// Also whether the file was there.
    pub fn open(dir: &Path) -> Result<(KeyFile, bool), String> {
        let path = dir.join(KEY_FILE);
        let (bytes, found) = match std::fs::read_to_string(&path) {
            Ok(text) => (parse(&text).ok_or_else(|| not_a_key(&path))?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (random()?, false),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if found && let Ok(meta) = std::fs::metadata(&path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                log::warn!(
                    "{} is open to other users (mode {:o}): whoever reads it can forge \
                     journal records; chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        let key = KeyFile {
            bytes,
            path,
            saved: Mutex::new(found),
        };
        Ok((key, found))
    }

    pub fn key(&self) -> SipKey {
        SipKey::new(self.bytes)
    }

    /// Puts the key on disk durably, once: written whole to a temporary file, synced,
    /// renamed into place, and the directory synced.
    pub fn save(&self) -> Result<(), String> {
        let mut saved = self
            .saved
            .lock()
            .map_err(|_| "the key's lock is poisoned")?;
        if *saved {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let text = format!("{}\n", to_hex(&self.bytes));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .and_then(|()| std::fs::File::open(dir).and_then(|d| d.sync_all()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot write {}: {e}", self.path.display()));
        }
        *saved = true;
        Ok(())
    }
}

/// A new key: 128 bits from the operating system (getrandom(2)).
fn random() -> Result<[u8; 16], String> {
    let mut bytes = [0u8; 16];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("cannot get random bytes for the journal's key: {e}"))?;
    Ok(bytes)
}

fn parse(text: &str) -> Option<[u8; 16]> {
    let text = text.trim_end();
    if text.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_a_key(path: &Path) -> String {
    format!(
        "{} is not a journal key (32 hex digits): restore the key this directory was \
         written with",
        path.display()
    )
}
