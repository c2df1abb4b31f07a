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
    /// Parts the document refers to by content id (`cid:`), such as the chart images of an
    /// HTML page; a channel that shows the document as an e-mail body sends them with it.
    pub inline: Vec<InlinePart>,
}

impl Document {
    /// A document without inline parts.
    pub fn new(format: OutputFormat, file_name: impl Into<String>, bytes: bytes::Bytes) -> Self {
        Document {
            format,
            file_name: file_name.into(),
            bytes,
            inline: Vec::new(),
        }
    }

    pub fn with_inline(mut self, inline: Vec<InlinePart>) -> Self {
        self.inline = inline;
        self
    }

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
            .field("inline", &self.inline)
            .finish()
    }
}

/// A part a document refers to by content id, such as `<img src="cid:chart-1@mad">`.
#[derive(Clone, PartialEq, Eq)]
pub struct InlinePart {
    /// The id without angle brackets, as the document writes it after `cid:`.
    pub content_id: String,
    /// Such as `image/png`.
    pub media_type: String,
    pub bytes: bytes::Bytes,
}

impl fmt::Debug for InlinePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlinePart")
            .field("content_id", &self.content_id)
            .field("media_type", &self.media_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What a renderer produced: the document's bytes and the parts it refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub inline: Vec<InlinePart>,
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
    /// When the documents are made, in seconds since 1970 (the run's start), for document
    /// metadata; a resumed run renders the same bytes as the interrupted one.
    pub created_at: i64,
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
/// - `bundle` packs documents into one zip archive, AES-encrypted with `passwords.open`; without
///   a password to open it is an error, never a plain zip.
/// - Passwords never appear in errors or logs.
pub trait Protector: Send + Sync + fmt::Debug {
    fn protect(&self, document: &Document, passwords: &Passwords) -> Result<Vec<u8>>;

    fn bundle(&self, documents: &[Document], passwords: &Passwords) -> Result<Vec<u8>>;
}

/// What a renderer can make of a report besides its table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RendererCapabilities {
    /// Draws the report's charts (vector drawings, native charts or images).
    pub charts: bool,
    /// Fills a template file of its format (`ReportDef::template`).
    pub templates: bool,
    /// Lays the report out on pages: page size and margins, header and footer bands, page
    /// numbers, page breaks between sections.
    pub pages: bool,
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

    /// What it can make besides the table; the engine refuses a report whose charts or
    /// template no renderer of its formats can make, instead of leaving them out. The default
    /// is the table alone.
    fn capabilities(&self) -> RendererCapabilities {
        RendererCapabilities::default()
    }

    /// Renders the document's bytes; the engine names the file. The bytes stand alone: a
    /// renderer that can refer to inline parts embeds them instead.
    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>>;

    /// Renders the document with the parts it refers to by content id; the engine calls this.
    /// Renderers without such parts keep this default, which is `render` with none.
    fn render_document(&self, job: &RenderJob<'_>) -> Result<Rendered> {
        Ok(Rendered {
            bytes: self.render(job)?,
            inline: Vec::new(),
        })
    }
}
