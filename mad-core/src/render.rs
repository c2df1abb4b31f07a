//! Renderers: turning a report and its rows into a document.

use std::fmt;

use crate::error::Result;
use crate::filter::FilterSet;
use crate::format::Locale;
use crate::placeholder::Placeholders;
use crate::report::{OutputFormat, ReportDef};
use crate::secret::Secret;
use crate::table::Table;

/// A rendered document.
#[derive(Clone, PartialEq, Eq)]
pub struct Document {
    pub format: OutputFormat,
    /// The file name, with extension, as the report's pattern produced it (not yet sanitised
    /// for any particular channel).
    pub file_name: String,
    pub bytes: bytes::Bytes,
}

impl Document {
    pub fn media_type(&self) -> &'static str {
        self.format.media_type()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("format", &self.format)
            .field("file_name", &self.file_name)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Everything a renderer gets for one document.
#[derive(Debug, Clone, Copy)]
pub struct RenderJob<'a> {
    pub report: &'a ReportDef,
    /// The rows this recipient may see, already filtered.
    pub table: &'a Table,
    /// Values for the placeholders in titles and headers.
    pub placeholders: &'a Placeholders,
    pub locale: &'a Locale,
    /// The filters that produced `table`, for "filters applied" lines.
    pub filters: &'a FilterSet,
    /// Fixed timestamps and ids, so equal input gives byte-equal output.
    pub deterministic: bool,
}

/// The passwords resolved for one recipient's documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passwords {
    pub open: Option<Secret>,
    pub edit: Option<Secret>,
}

/// Puts passwords on finished documents and bundles them.
///
/// # Contract
/// - `protect` returns the document's bytes protected with the given passwords, or an
///   `Unsupported` error for a format it cannot protect; it never returns them unprotected.
/// - `bundle` packs documents into one zip archive, AES-encrypted when `passwords.open` is set.
/// - Passwords never appear in errors or logs.
pub trait Protector: Send + Sync + fmt::Debug {
    fn protect(&self, document: &Document, passwords: &Passwords) -> Result<Vec<u8>>;

    fn bundle(&self, documents: &[Document], passwords: &Passwords) -> Result<Vec<u8>>;
}

/// Turns a report and its rows into a document of one format.
///
/// # Contract
/// - Renders exactly the rows of `job.table`, in report order; never fetches data.
/// - Fills placeholders with `job.placeholders`; an unknown one is an `InvalidConfig` error.
/// - An option of the report the format cannot honour is an `Unsupported` error.
/// - Pure CPU work: the engine calls it on its rendering pool.
pub trait Renderer: Send + Sync + fmt::Debug {
    fn format(&self) -> OutputFormat;

    /// Renders the document's bytes; the engine names the file.
    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>>;
}
