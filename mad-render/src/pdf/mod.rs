//! The pdf renderer.

use mad_core::{Error, OutputFormat, RenderJob, Renderer, Result};

/// Renders reports as pdf.
#[derive(Debug, Clone, Default)]
pub struct PdfRenderer {}

impl Renderer for PdfRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Pdf
    }

    fn render(&self, _job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Err(Error::unsupported("pdf", "rendering (not built yet)"))
    }
}
