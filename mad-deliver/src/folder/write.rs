//! The file system work of the folder channel, run on a blocking thread.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mad_core::{Document, Error, ErrorKind, Result};

use super::config::{FolderOptions, IfExists};
use super::error::{self, BACKEND};
use crate::common::{
    Claims, Owner, STALE_TEMPORARY, StagedFile, remove_stale_temporaries, versioned_file_name,
};

/// How many numbered versions `if_exists = "version"` tries before giving up.
const MAX_VERSIONS: u32 = 9_999;

/// What one delivery left in the folder.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// The files written or kept, as full paths.
    pub locations: Vec<String>,
    /// Bytes written (kept files add none).
    pub bytes: u64,
}

/// One document's place in the folder.
enum Placed {
    /// A new file this delivery created.
    Created(PathBuf, u64),
    /// An existing file this delivery replaced.
    Replaced(PathBuf, u64),
    /// An existing file left as it was.
    Kept(PathBuf),
}

/// What the channel remembers between deliveries.
#[derive(Debug)]
pub(super) struct Memory {
    /// The configured folder, made absolute with links resolved when it was first written
    /// into: resolving it costs a system call per path component, which a burst of small
    /// reports would pay twice per recipient.
    root: Mutex<Option<PathBuf>>,
    /// The folders written into, each cleared once of what interrupted writes of earlier runs
    /// left.
    swept: Mutex<HashSet<PathBuf>>,
    /// The files the current run wrote or kept, and whose documents they hold.
    pub claims: Claims,
    /// How long deliveries take to write.
    pub write_times: WriteTimes,
}

/// A running average of how long writing one delivery takes.
#[derive(Debug, Default)]
pub(super) struct WriteTimes {
    /// In microseconds, each new time weighing an eighth.
    average: AtomicU64,
}

impl WriteTimes {
    /// Above this average, writing is taken for slow (a network share rather than a local
    /// disk, where a delivery takes well under a millisecond).
    const QUICK: Duration = Duration::from_millis(4);

    pub(super) fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // Racing updates may lose one time, which an average can spare.
        let average = self.average.load(Ordering::Relaxed);
        let next = average - average / 8 + took / 8;
        self.average.store(next, Ordering::Relaxed);
    }

    /// Whether writing has been quick so far (it is taken to be until measured).
    pub(super) fn quick(&self) -> bool {
        Duration::from_micros(self.average.load(Ordering::Relaxed)) < Self::QUICK
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            root: Mutex::default(),
            swept: Mutex::default(),
            // Windows and macOS file systems take names differing only in case for one file.
            claims: Claims::new(cfg!(any(windows, target_vendor = "apple"))),
            write_times: WriteTimes::default(),
        }
    }
}

impl Memory {
    /// The configured folder, resolved at the first delivery (and created if allowed).
    fn root(&self, options: &FolderOptions) -> Result<PathBuf> {
        let mut root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = root.as_ref() {
            return Ok(path.clone());
        }
        let path = open_root(&options.path, options.create)?;
        *root = Some(path.clone());
        Ok(path)
    }

    /// Forgets the resolved folder, so the next delivery resolves it again. Returns whether
    /// one was remembered.
    fn forget_root(&self) -> bool {
        let mut root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        root.take().is_some()
    }

    /// Runs `work` in the configured folder. When something it needs is missing and the
    /// folder was resolved by an earlier delivery, the folder may have been removed or
    /// replaced since: it is resolved again (and created again if allowed) and `work` runs
    /// once more.
    fn in_root<T>(&self, options: &FolderOptions, work: impl Fn(&Path) -> Result<T>) -> Result<T> {
        let remembered = self.root.lock().map(|r| r.is_some()).unwrap_or(false);
        match work(&self.root(options)?) {
            Err(err) if err.kind() == ErrorKind::NotFound && remembered && self.forget_root() => {
                work(&self.root(options)?)
            }
            done => done,
        }
    }
}

/// Writes `files` (sanitised names and their documents) of `owner`'s delivery in `run` into
/// `options.path`/`subfolder`: all of them, or none when one fails.
pub(super) fn write_files(
    options: &FolderOptions,
    subfolder: &Path,
    files: Vec<(String, Arc<Document>)>,
    (run, owner): (&str, &Owner),
    memory: &Memory,
) -> Result<Written> {
    memory.in_root(options, |root| {
        write_in(root, options, subfolder, &files, (run, owner), memory)
    })
}

fn write_in(
    root: &Path,
    options: &FolderOptions,
    subfolder: &Path,
    files: &[(String, Arc<Document>)],
    (run, owner): (&str, &Owner),
    memory: &Memory,
) -> Result<Written> {
    let dir = open_subfolder(root, subfolder)?;
    sweep_once(&dir, &memory.swept);
    let names = unique_names(files.iter().map(|(name, _)| name.as_str()));
    for name in &names {
        check_single_name(name)?;
    }
    if options.if_exists != IfExists::Version {
        // Named as the receipt names them.
        let targets: Vec<String> = names
            .iter()
            .map(|name| dir.join(name).display().to_string())
            .collect();
        memory.claims.claim_for(BACKEND, run, owner, &targets)?;
    }

    let mut kept = Vec::new();
    let mut pending = Vec::new();
    for (name, (_, doc)) in names.into_iter().zip(files) {
        if options.if_exists == IfExists::Overwrite {
            pending.push((name, doc));
            continue;
        }
        let target = dir.join(&name);
        let exists = fs::symlink_metadata(&target).is_ok();
        match (exists, options.if_exists) {
            (true, IfExists::Fail) => return Err(error::already_exists(&target)),
            (true, IfExists::Keep) => kept.push(Placed::Kept(target)),
            _ => pending.push((name, doc)),
        }
    }

    let mut staged = Vec::with_capacity(pending.len());
    for (name, doc) in pending {
        let file = StagedFile::write(&dir, &doc.bytes)
            .map_err(|e| error::io(format!("writing {name} into {}", dir.display()), e))?;
        staged.push((name, file));
    }

    let mut placed = Vec::with_capacity(staged.len() + kept.len());
    for (name, mut file) in staged {
        match place(&mut file, &dir, &name, options.if_exists) {
            Ok(p) => placed.push(p),
            Err(err) => {
                roll_back(&placed);
                return Err(err);
            }
        }
    }
    placed.extend(kept);
    Ok(summarise(placed))
}

/// Removes, the first time this channel writes into `dir`, the temporary files a killed run
/// left there. A failure only costs the tidying, so it is logged rather than returned.
fn sweep_once(dir: &Path, swept: &Mutex<HashSet<PathBuf>>) {
    let first = swept
        .lock()
        .map(|mut seen| seen.insert(dir.to_path_buf()))
        .unwrap_or(false);
    if !first {
        return;
    }
    let before = SystemTime::now()
        .checked_sub(STALE_TEMPORARY)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match remove_stale_temporaries(dir, before) {
        Ok(0) => {}
        Ok(removed) => {
            tracing::info!(folder = %dir.display(), removed, "removed temporary files of interrupted writes");
        }
        Err(e) => {
            tracing::warn!(folder = %dir.display(), error = %e, "could not look for temporary files of interrupted writes");
        }
    }
}

/// The configured folder, made absolute with links resolved; created when allowed.
fn open_root(path: &Path, create: bool) -> Result<PathBuf> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(error::not_a_folder(path)),
        Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
            fs::create_dir_all(path)
                .map_err(|e| error::io(format!("creating the folder {}", path.display()), e))?;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(error::missing_folder(path));
        }
        Err(err) => {
            return Err(error::io(
                format!("opening the folder {}", path.display()),
                err,
            ));
        }
    }
    fs::canonicalize(path)
        .map_err(|e| error::io(format!("opening the folder {}", path.display()), e))
}

/// `root`/`relative`, creating missing folders and refusing symbolic links that lead out of
/// `root`.
fn open_subfolder(root: &Path, relative: &Path) -> Result<PathBuf> {
    if relative.as_os_str().is_empty() {
        // `root` was resolved just now.
        return Ok(root.to_path_buf());
    }
    let mut dir = root.to_path_buf();
    for part in relative.components() {
        let Component::Normal(part) = part else {
            return Err(Error::internal(format!(
                "the subfolder {} is not a plain relative path",
                relative.display()
            ))
            .with_backend(BACKEND));
        };
        let next = dir.join(part);
        dir = match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let real = fs::canonicalize(&next)
                    .map_err(|e| error::io(format!("following {}", next.display()), e))?;
                if !real.starts_with(root) {
                    return Err(error::outside(&next, root));
                }
                real
            }
            Ok(meta) if meta.is_dir() => next,
            Ok(_) => return Err(error::not_a_folder(&next)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&next) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(error::io(
                            format!("creating the folder {}", next.display()),
                            e,
                        ));
                    }
                }
                next
            }
            Err(err) => return Err(error::io(format!("opening {}", next.display()), err)),
        };
    }

    // Whatever happened between the checks above, the folder written to is inside root.
    let real = fs::canonicalize(&dir)
        .map_err(|e| error::io(format!("opening the folder {}", dir.display()), e))?;
    if !real.starts_with(root) {
        return Err(error::outside(&dir, root));
    }
    if !real.is_dir() {
        return Err(error::not_a_folder(&real));
    }
    Ok(real)
}

/// The names in order, with a repeated one numbered so two documents never share a file.
fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .map(|name| {
            let mut n = 1;
            let mut candidate = name.to_string();
            while !seen.insert(candidate.to_lowercase()) {
                n += 1;
                candidate = versioned_file_name(name, n);
            }
            candidate
        })
        .collect()
}

/// A sanitised name is one plain path component; anything else is a bug.
fn check_single_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(Error::internal(format!(
            "the file name \"{name}\" is not a single plain name"
        ))
        .with_backend(BACKEND)),
    }
}

fn place(file: &mut StagedFile, dir: &Path, name: &str, policy: IfExists) -> Result<Placed> {
    let target = dir.join(name);
    let len = file.len();
    let moving = |target: &Path, e| error::io(format!("moving {} into place", target.display()), e);

    match policy {
        IfExists::Overwrite => {
            file.replace(&target).map_err(|e| moving(&target, e))?;
            Ok(Placed::Replaced(target, len))
        }
        IfExists::Fail | IfExists::Keep => match file.place_new(&target) {
            Ok(()) => Ok(Placed::Created(target, len)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match policy {
                IfExists::Keep => Ok(Placed::Kept(target)),
                _ => Err(error::already_exists(&target)),
            },
            Err(e) => Err(moving(&target, e)),
        },
        IfExists::Version => {
            for n in 1..=MAX_VERSIONS {
                let candidate = dir.join(versioned_file_name(name, n));
                match file.place_new(&candidate) {
                    Ok(()) => return Ok(Placed::Created(candidate, len)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(moving(&candidate, e)),
                }
            }
            Err(error::too_many_versions(&target, MAX_VERSIONS))
        }
    }
}

/// Removes the files a failed delivery created; replaced files cannot be restored.
fn roll_back(placed: &[Placed]) {
    for p in placed {
        if let Placed::Created(path, _) = p
            && let Err(err) = fs::remove_file(path)
        {
            tracing::debug!(path = %path.display(), error = %err, "could not remove a file of a failed delivery");
        }
    }
}

fn summarise(placed: Vec<Placed>) -> Written {
    let mut written = Written::default();
    for p in placed {
        let (path, bytes) = match p {
            Placed::Created(path, bytes) | Placed::Replaced(path, bytes) => (path, bytes),
            Placed::Kept(path) => {
                tracing::debug!(path = %path.display(), "kept the existing file");
                (path, 0)
            }
        };
        written.locations.push(path.display().to_string());
        written.bytes += bytes;
    }
    written
}

/// After an interrupted delivery: which of `files` are in place with exactly the document's
/// bytes. All of them → the delivery is complete; none → it never happened (`None`, deliver
/// again); some → the missing ones are written now, completing it. A file with other bytes
/// under the name is left alone: `overwrite` delivers again, the other policies refuse.
pub(super) fn confirm_files(
    options: &FolderOptions,
    subfolder: &Path,
    files: Vec<(String, Arc<Document>)>,
    memory: &Memory,
) -> Result<Option<Written>> {
    if options.if_exists == IfExists::Version {
        return Err(Error::unsupported(
            BACKEND,
            "confirming an interrupted delivery with if_exists = \"version\" (its file names are not known in advance)",
        ));
    }
    memory.in_root(options, |root| confirm_in(root, options, subfolder, &files))
}

fn confirm_in(
    root: &Path,
    options: &FolderOptions,
    subfolder: &Path,
    files: &[(String, Arc<Document>)],
) -> Result<Option<Written>> {
    let dir = open_subfolder(root, subfolder)?;
    let names = unique_names(files.iter().map(|(name, _)| name.as_str()));

    let mut present = Vec::new();
    let mut missing = Vec::new();
    for (name, (_, doc)) in names.into_iter().zip(files) {
        let target = dir.join(&name);
        match fs::read(&target) {
            Ok(bytes) if bytes == doc.bytes => present.push(Placed::Kept(target)),
            Ok(_) if options.if_exists == IfExists::Overwrite => return Ok(None),
            Ok(_) if options.if_exists == IfExists::Keep => present.push(Placed::Kept(target)),
            Ok(_) => return Err(error::already_exists(&target)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => missing.push((name, doc)),
            Err(err) => return Err(error::io(format!("reading {}", target.display()), err)),
        }
    }
    if present.is_empty() {
        return Ok(None);
    }
    for (name, doc) in missing {
        let mut file = StagedFile::write(&dir, &doc.bytes)
            .map_err(|e| error::io(format!("writing {name} into {}", dir.display()), e))?;
        present.push(place(&mut file, &dir, &name, IfExists::Fail)?);
    }
    let mut written = summarise(present);
    written.bytes = files.iter().map(|(_, d)| d.bytes.len() as u64).sum();
    Ok(Some(written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_counts_as_slow_after_slow_writes_and_quick_again_after_quick_ones() {
        let times = WriteTimes::default();
        assert!(times.quick(), "quick until measured");
        for _ in 0..4 {
            times.record(Duration::from_micros(300));
        }
        assert!(times.quick());
        // A network share: 30 ms a delivery.
        for _ in 0..8 {
            times.record(Duration::from_millis(30));
        }
        assert!(!times.quick());
        // One quick write does not make it quick again; a run of them does.
        times.record(Duration::from_micros(300));
        assert!(!times.quick());
        for _ in 0..40 {
            times.record(Duration::from_micros(300));
        }
        assert!(times.quick());
    }
}
