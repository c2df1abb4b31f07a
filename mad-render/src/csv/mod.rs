//! The csv renderer.

use mad_core::{Error, OutputFormat, RenderJob, Renderer, Result};

/// Renders reports as csv.
#[derive(Debug, Clone, Default)]
pub struct CsvRenderer {}

impl Renderer for CsvRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn render(&self, _job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Err(Error::unsupported("csv", "rendering (not built yet)"))
    }
}
