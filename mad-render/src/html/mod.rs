//! The html renderer.

use mad_core::{Error, OutputFormat, RenderJob, Renderer, Result};

/// Renders reports as html.
#[derive(Debug, Clone, Default)]
pub struct HtmlRenderer {}

impl Renderer for HtmlRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Html
    }

    fn render(&self, _job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Err(Error::unsupported("html", "rendering (not built yet)"))
    }
}
