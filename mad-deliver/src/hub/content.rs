//! Where the hub keeps documents' bytes: a folder or an object store, each document under its
//! entry's id (`ab/abcdef...`), written whole or not at all.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use mad_core::{Error, Result};

use super::error::{self, BACKEND};
use crate::common::StagedFile;
use crate::s3::Bucket;

/// The length of an entry id: 128 bits as hex.
pub(super) const ID_LEN: usize = 32;

/// Whether `id` has the shape of an entry id (and so is safe as a path part).
pub(super) fn is_entry_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The store of the hub's documents.
#[derive(Debug)]
pub(super) enum Content {
    Disk { root: PathBuf },
    S3 { bucket: Bucket, prefix: Vec<String> },
}

impl Content {
    /// Stores `bytes` as the document `id`, replacing an earlier copy in one step.
    pub async fn put(&self, id: &str, bytes: Bytes, media_type: &str, sha256: &str) -> Result<()> {
        match self {
            Content::Disk { root } => {
                let (dir, target) = disk_place(root, id);
                blocking(move || {
                    fs::create_dir_all(&dir)
                        .map_err(|e| error::io(format!("creating {}", dir.display()), e))?;
                    let mut staged = StagedFile::write(&dir, &bytes)
                        .map_err(|e| error::io(format!("writing into {}", dir.display()), e))?;
                    staged.replace(&target).map_err(|e| {
                        error::io(format!("moving {} into place", target.display()), e)
                    })
                })
                .await
            }
            Content::S3 { bucket, prefix } => {
                let key = s3_key(bucket, prefix, id)?;
                bucket.put(&key, bytes, media_type, sha256).await
            }
        }
    }

    /// The size of the stored document `id`, or `None` when there is none.
    pub async fn size(&self, id: &str) -> Result<Option<u64>> {
        match self {
            Content::Disk { root } => {
                let (_, path) = disk_place(root, id);
                blocking(move || match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(error::io(format!("looking up {}", path.display()), e)),
                })
                .await
            }
            Content::S3 { bucket, prefix } => {
                let key = s3_key(bucket, prefix, id)?;
                Ok(bucket.head(&key).await?.map(|stored| stored.size))
            }
        }
    }

    /// The bytes of document `id`, or `None` when there are none.
    pub async fn get(&self, id: &str) -> Result<Option<Bytes>> {
        match self {
            Content::Disk { root } => {
                let (_, path) = disk_place(root, id);
                blocking(move || match fs::read(&path) {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(error::io(format!("reading {}", path.display()), e)),
                })
                .await
            }
            Content::S3 { bucket, prefix } => {
                let key = s3_key(bucket, prefix, id)?;
                match bucket.get(&key).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == mad_core::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Deletes document `id`; one already gone is fine.
    pub async fn delete(&self, id: &str) -> Result<()> {
        match self {
            Content::Disk { root } => {
                let (_, path) = disk_place(root, id);
                blocking(move || remove_file(&path)).await
            }
            Content::S3 { bucket, prefix } => {
                let key = s3_key(bucket, prefix, id)?;
                bucket.delete(&key).await
            }
        }
    }

    /// Every stored document id with its last change, for finding orphans; on disk, also
    /// removes temporary files of interrupted writes older than `before`.
    pub async fn stored(&self, before: SystemTime) -> Result<Vec<(String, SystemTime)>> {
        match self {
            Content::Disk { root } => {
                let root = root.clone();
                blocking(move || scan_disk(&root, before)).await
            }
            Content::S3 { bucket, prefix } => {
                let base = bucket.key(prefix.iter().map(String::as_str))?;
                let listed = bucket.list(&base).await?;
                Ok(listed
                    .into_iter()
                    .filter_map(|item| {
                        let parts: Vec<String> = item
                            .key
                            .parts()
                            .skip(prefix.len())
                            .map(|p| p.as_ref().to_string())
                            .collect();
                        match parts.as_slice() {
                            [shard, id] if is_entry_id(id) && id.starts_with(shard.as_str()) => {
                                Some((id.clone(), item.modified))
                            }
                            _ => None,
                        }
                    })
                    .collect())
            }
        }
    }
}

fn disk_place(root: &Path, id: &str) -> (PathBuf, PathBuf) {
    let dir = root.join(&id[..2]);
    let file = dir.join(id);
    (dir, file)
}

fn s3_key(bucket: &Bucket, prefix: &[String], id: &str) -> Result<object_store::path::Path> {
    let parts = prefix.iter().map(String::as_str).chain([&id[..2], id]);
    bucket.key(parts)
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error::io(format!("deleting {}", path.display()), e)),
    }
}

fn scan_disk(root: &Path, before: SystemTime) -> Result<Vec<(String, SystemTime)>> {
    let read = |dir: &Path| {
        fs::read_dir(dir).map_err(|e| error::io(format!("listing {}", dir.display()), e))
    };
    let mut found = Vec::new();
    for shard in read(root)? {
        let shard = shard.map_err(|e| error::io(format!("listing {}", root.display()), e))?;
        let name = shard.file_name().to_string_lossy().into_owned();
        let is_shard = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_shard || !shard.path().is_dir() {
            continue;
        }
        for file in read(&shard.path())? {
            let file = file.map_err(|e| error::io(format!("listing {name}"), e))?;
            let file_name = file.file_name().to_string_lossy().into_owned();
            let modified = file
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if is_entry_id(&file_name) && file_name.starts_with(&name) {
                found.push((file_name, modified));
            } else if crate::common::is_temporary_name(&file_name) && modified < before {
                remove_file(&file.path())?;
            }
        }
    }
    Ok(found)
}

async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        Error::internal(format!("the hub's file worker stopped: {e}")).with_backend(BACKEND)
    })?
}
