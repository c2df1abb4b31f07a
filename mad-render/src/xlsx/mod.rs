//! The xlsx renderer.

use mad_core::{Error, OutputFormat, RenderJob, Renderer, Result};

/// Renders reports as xlsx.
#[derive(Debug, Clone, Default)]
pub struct XlsxRenderer {}

impl Renderer for XlsxRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Xlsx
    }

    fn render(&self, _job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Err(Error::unsupported("xlsx", "rendering (not built yet)"))
    }
}
