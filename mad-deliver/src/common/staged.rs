//! Files written under a temporary name and moved into place once complete, so no reader ever
//! sees half a file under its final name.

use std::collections::hash_map::RandomState;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A short token that differs between calls, processes and machines, for temporary file names
/// and message ids. It is not a secret.
pub fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// How old a temporary file must be before it is taken for what a killed process left behind:
/// a write takes milliseconds, so an hour leaves any write still under way alone.
pub const STALE_TEMPORARY: Duration = Duration::from_secs(60 * 60);

/// Whether `name` is a temporary name [`StagedFile`] writes under.
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with(".mad-") && name.ends_with(".tmp")
}

/// Removes the temporary files in `dir` (not below it) last written before `before`: what
/// writes interrupted by a killed process left. Returns how many were removed.
pub fn remove_stale_temporaries(dir: &Path, before: SystemTime) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !is_temporary_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() && meta.modified()? < before {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Another run's sweep was first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// The contents of a file, written and flushed to disk under a hidden temporary name in the
/// folder where it will live.
///
/// Place it with [`StagedFile::place_new`] or [`StagedFile::replace`]; dropping it unplaced
/// removes the temporary file. A failed placement leaves it staged, so it can be tried under
/// another name.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    len: u64,
    placed: bool,
}

impl StagedFile {
    /// Writes `bytes` to a new temporary file in `dir`.
    pub fn write(dir: &Path, bytes: &[u8]) -> io::Result<StagedFile> {
        let temp = dir.join(format!(".mad-{}.tmp", unique_token()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let mut staged = StagedFile {
            temp,
            len: bytes.len() as u64,
            placed: false,
        };

        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(err) = written {
            staged.discard();
            return Err(err);
        }
        Ok(staged)
    }

    /// The number of bytes staged.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives the file its final name, failing with [`io::ErrorKind::AlreadyExists`] (and
    /// touching nothing) when `target` exists, even if another process creates it at the same
    /// moment.
    ///
    /// The check and the move are one step where the file system supports hard links; on one
    /// that does not (FAT, some network shares) there is a short window between checking and
    /// moving in which a file created by someone else would be replaced.
    pub fn place_new(&mut self, target: &Path) -> io::Result<()> {
        match fs::hard_link(&self.temp, target) {
            Ok(()) => {
                self.discard();
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
            Err(link_err) => {
                if fs::symlink_metadata(target).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "the file already exists",
                    ));
                }
                tracing::trace!(error = %link_err, "hard link refused, moving instead");
                self.replace(target)
            }
        }
    }

    /// Gives the file its final name, replacing whatever is there in one step. A symbolic
    /// link at `target` is replaced itself, never followed.
    pub fn replace(&mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.temp, target)?;
        self.placed = true;
        Ok(())
    }

    fn discard(&mut self) {
        if let Err(err) = fs::remove_file(&self.temp)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(path = %self.temp.display(), error = %err, "could not remove a temporary file");
        }
        self.placed = true;
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.placed {
            self.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn place_new_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        fs::write(&target, "old").unwrap();

        let mut staged = StagedFile::write(dir.path(), b"new").unwrap();
        let err = staged.place_new(&target).unwrap_err();
        drop(staged);

        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(names(dir.path()), ["a.txt"]);
    }

    #[test]
    fn replace_and_place_leave_only_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        fs::write(&a, "old").unwrap();

        StagedFile::write(dir.path(), b"new")
            .unwrap()
            .replace(&a)
            .unwrap();
        StagedFile::write(dir.path(), b"bee")
            .unwrap()
            .place_new(&b)
            .unwrap();

        assert_eq!(fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(fs::read_to_string(&b).unwrap(), "bee");
        assert_eq!(names(dir.path()), ["a.txt", "b.txt"]);
    }

    #[test]
    fn dropping_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let staged = StagedFile::write(dir.path(), b"x").unwrap();
        assert_eq!(names(dir.path()).len(), 1);
        drop(staged);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(unique_token(), unique_token());
    }
}
