//! The HTML renderer: one self-contained page that also reads well as an e-mail body.

mod escape;
pub(crate) mod page;

use std::sync::Arc;

use mad_core::{Layout, OutputFormat, RenderJob, Renderer, Result};

use crate::template::TemplateCache;

pub use self::escape::{escape, escape_into};

pub(crate) const BACKEND: &str = "html";

/// Renders reports as one self-contained UTF-8 HTML page.
///
/// The page has the title, subtitle and a line naming the filters, then the table with group
/// headers, subtotals and the grand total; numbers align right. Styles are both in a `<style>`
/// element and inline on each element, so mail clients that drop `<style>` show the same
/// table. Every value and every text a placeholder produced is escaped. No scripts, no external
/// resources. A report with an `.html` or `.jinja` template is rendered through that template
/// instead (see [`crate::template::html`]).
#[derive(Debug, Clone, Default)]
pub struct HtmlRenderer {
    templates: Arc<TemplateCache>,
}

impl HtmlRenderer {
    pub fn new() -> Self {
        HtmlRenderer::default()
    }
}

impl Renderer for HtmlRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Html
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        if let Some(path) = job.report.template_for(OutputFormat::Html) {
            return crate::template::html::render(&self.templates, path, job);
        }
        let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
        let title = job
            .placeholders
            .render(&job.report.title)
            .map_err(|e| e.with_backend(BACKEND))?;
        let subtitle = match &job.report.subtitle {
            Some(s) => Some(
                job.placeholders
                    .render(s)
                    .map_err(|e| e.with_backend(BACKEND))?,
            ),
            None => None,
        };

        let heading = page::Heading {
            title: &title,
            subtitle: subtitle.as_deref(),
            filters: job.filters,
        };
        Ok(page::write(&layout, &heading, job.locale).into_bytes())
    }
}
