//! User templates: an existing workbook filled with the report (`.xlsx`), or an HTML page
//! written in Jinja syntax (`.html`, `.jinja`).
//!
//! A report names its template in [`mad_core::ReportDef::template`]; the renderer of the
//! template's format uses it, the other renderers ignore it. Templates are read once and kept
//! while the file is unchanged (same size and modification time), so a burst of a thousand
//! recipients parses each template once.

pub mod html;
mod refs;
mod stable;
pub mod xlsx;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mad_core::{Error, Result};

/// Parsed templates, keyed by path and checked against the file on every use.
#[derive(Default)]
pub struct TemplateCache {
    xlsx: Mutex<HashMap<PathBuf, Cached<umya_spreadsheet::Workbook>>>,
    html: Mutex<HashMap<PathBuf, Cached<html::HtmlTemplate>>>,
}

impl fmt::Debug for TemplateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateCache")
            .field("xlsx", &count(&self.xlsx))
            .field("html", &count(&self.html))
            .finish()
    }
}

fn count<T>(cache: &Mutex<HashMap<PathBuf, Cached<T>>>) -> usize {
    cache.lock().map_or(0, |c| c.len())
}

struct Cached<T> {
    stamp: (Option<SystemTime>, u64),
    value: Arc<T>,
}

impl TemplateCache {
    pub(crate) fn xlsx(
        &self,
        path: &Path,
        backend: &'static str,
    ) -> Result<Arc<umya_spreadsheet::Workbook>> {
        load(&self.xlsx, path, backend, xlsx::parse)
    }

    pub(crate) fn html(
        &self,
        path: &Path,
        backend: &'static str,
    ) -> Result<Arc<html::HtmlTemplate>> {
        load(&self.html, path, backend, html::HtmlTemplate::parse)
    }
}

/// The cached template at `path`, or the file parsed by `parse` when it is new or changed.
fn load<T>(
    cache: &Mutex<HashMap<PathBuf, Cached<T>>>,
    path: &Path,
    backend: &'static str,
    parse: impl FnOnce(&Path, Vec<u8>) -> Result<T>,
) -> Result<Arc<T>> {
    let metadata = std::fs::metadata(path).map_err(|e| template_io(path, e, backend))?;
    let stamp = (metadata.modified().ok(), metadata.len());
    if let Some(cached) = cache.lock().ok().and_then(|c| {
        c.get(path)
            .filter(|c| c.stamp == stamp)
            .map(|c| c.value.clone())
    }) {
        return Ok(cached);
    }

    let bytes = std::fs::read(path).map_err(|e| template_io(path, e, backend))?;
    let value = Arc::new(parse(path, bytes).map_err(|e| e.with_backend(backend))?);
    if let Ok(mut cache) = cache.lock() {
        let cached = Cached {
            stamp,
            value: value.clone(),
        };
        cache.insert(path.to_path_buf(), cached);
    }
    Ok(value)
}

fn template_io(path: &Path, err: std::io::Error, backend: &'static str) -> Error {
    let kind = Error::io("", std::io::Error::from(err.kind())).kind();
    Error::new(
        kind,
        format!(
            "cannot read the template {} ({err}); check the report's template path, which is \
             relative to the definitions file's folder",
            path.display()
        ),
    )
    .with_source(err)
    .with_backend(backend)
}
