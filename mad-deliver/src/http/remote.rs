//! Remote folder paths and file names: a base folder from the options, a subfolder from a
//! placeholder pattern, and a safe name per document. Nothing a recipient's values contain can
//! make a path leave the base folder.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Component;
use std::sync::{Arc, Mutex};

use mad_core::{Delivery, Error, Result};

use super::IfExists;
use crate::common::{Claims, render_path, sanitize_file_name, versioned_file_name};

/// The parts of a base folder such as `Reports/Monthly` (leading and trailing `/` ignored).
/// A `.` or `..` part, a backslash or a control character is refused.
pub(crate) fn base_folder(backend: &'static str, option: &str, value: &str) -> Result<Vec<String>> {
    let mut parts = Vec::new();
    for part in value.split('/').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains('\\') || part.chars().any(char::is_control)
        {
            return Err(Error::invalid_config(format!(
                "the {option} \"{value}\" may not contain '.', '..', backslashes or control \
                 characters; write a plain folder path such as \"Reports/Monthly\""
            ))
            .with_backend(backend));
        }
        parts.push(part.to_string());
    }
    Ok(parts)
}

/// The folder parts a subfolder pattern gives for one delivery: each a safe file name, none
/// climbing.
pub(crate) fn subfolder(
    backend: &'static str,
    template: Option<&str>,
    delivery: &Delivery,
) -> Result<Vec<String>> {
    let Some(template) = template else {
        return Ok(Vec::new());
    };
    let path = render_path(
        backend,
        "subfolder pattern",
        template,
        &delivery.placeholders,
    )?;
    path.components()
        .map(|c| match c {
            Component::Normal(part) => Ok(part.to_string_lossy().into_owned()),
            _ => Err(Error::internal(format!(
                "the subfolder {} is not a plain relative path",
                path.display()
            ))
            .with_backend(backend)),
        })
        .collect()
}

/// A safe file name per document, in order; a repeated name (compared without case, as the
/// providers do) is numbered so two documents never land on one file.
pub(crate) fn file_names(delivery: &Delivery) -> Vec<String> {
    let mut seen = HashSet::new();
    delivery
        .documents
        .iter()
        .map(|doc| {
            let name = sanitize_file_name(&doc.file_name);
            let mut candidate = name.clone();
            let mut n = 1;
            while !seen.insert(candidate.to_lowercase()) {
                n += 1;
                candidate = versioned_file_name(&name, n);
            }
            candidate
        })
        .collect()
}

/// Claims `targets` for `delivery` in its run, refusing with `AlreadyExists` when one holds
/// another recipient's or report's document of the run, unless the channel puts a document
/// beside a taken name (`Rename`), where nothing can be replaced. Cloud folders compare names
/// without case (Google Drive does not, so two names differing only in case are refused there
/// too: wrongly refused is better than one recipient's report replacing another's).
pub(crate) fn claim(
    claims: &Claims,
    backend: &'static str,
    if_exists: IfExists,
    delivery: &Delivery,
    targets: &[String],
) -> Result<()> {
    if if_exists == IfExists::Rename {
        return Ok(());
    }
    claims.claim(backend, delivery, targets)
}

/// Folder ids by parent id and name, so a channel creates or finds each folder once, also when
/// several deliveries need the same new folder at the same time.
#[derive(Debug, Default)]
pub(crate) struct FolderIds {
    ids: Mutex<HashMap<FolderKey, String>>,
    /// A lock per folder name, held while the folder is looked up or created.
    locks: Mutex<HashMap<FolderKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// A folder's parent id and name.
type FolderKey = (String, String);

impl FolderIds {
    /// The id of the folder `name` in `parent`, when it was found or created before.
    pub(crate) fn get(&self, parent: &str, name: &str) -> Option<String> {
        lock(&self.ids)
            .get(&(parent.to_string(), name.to_string()))
            .cloned()
    }

    /// Remembers `id` as the folder `name` in `parent`.
    pub(crate) fn insert(&self, parent: &str, name: &str, id: &str) {
        lock(&self.ids).insert((parent.to_string(), name.to_string()), id.to_string());
    }

    /// The id of the folder `name` in `parent`: remembered, or from `find_or_create`, which
    /// runs for one caller at a time per folder while the others wait for its answer.
    pub(crate) async fn get_or<F, Fut>(
        &self,
        parent: &str,
        name: &str,
        find_or_create: F,
    ) -> Result<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String>>,
    {
        if let Some(id) = self.get(parent, name) {
            return Ok(id);
        }

        let key = (parent.to_string(), name.to_string());
        let folder_lock = Arc::clone(lock(&self.locks).entry(key).or_default());
        let _held = folder_lock.lock().await;
        if let Some(id) = self.get(parent, name) {
            return Ok(id);
        }

        let id = find_or_create().await?;
        self.insert(parent, name, &id);
        Ok(id)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_folders_are_plain() {
        assert_eq!(
            base_folder("t", "folder", "/Reports/Monthly/").unwrap(),
            ["Reports", "Monthly"]
        );
        assert!(base_folder("t", "folder", "").unwrap().is_empty());
        for bad in ["a/../b", "./a", "a\\b", "a/\u{1}"] {
            assert!(base_folder("t", "folder", bad).is_err(), "{bad}");
        }
    }
}
