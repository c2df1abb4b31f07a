//! The HTML renderer: one self-contained page that also reads well as an e-mail body.

mod escape;
pub(crate) mod page;

use std::sync::Arc;

use base64::Engine as _;
use mad_core::{
    ChartPlacement, InlinePart, Layout, OutputFormat, RenderJob, Rendered, Renderer,
    RendererCapabilities, Result,
};

use crate::chart::{charts_of, lay_out, raster, svg};
use crate::template::TemplateCache;

pub use self::escape::{escape, escape_into};

pub(crate) const BACKEND: &str = "html";

/// The width of a chart in CSS pixels, and the body text size it is laid out with.
const CHART_WIDTH: f32 = 640.0;
const CHART_TEXT: f32 = 12.0;
/// Image pixels per CSS pixel, so charts stay sharp on high-density screens.
const CHART_SCALE: f32 = 2.0;

/// How a page carries its chart images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChartImages {
    /// As inline parts referred to by `cid:` URLs, which e-mail clients show (the e-mail
    /// channel sends the parts with the page). A page rendered with [`Renderer::render`]
    /// alone has nowhere to put parts, so it embeds the images as `data:` URLs instead.
    #[default]
    ContentId,
    /// As `data:` URLs inside the page, for a page saved as a file or opened in a browser.
    DataUri,
}

/// Renders reports as one self-contained UTF-8 HTML page.
///
/// The page has the title, subtitle and a line naming the filters, then the table with group
/// headers, subtotals and the grand total; numbers align right. Styles are both in a `<style>`
/// element and inline on each element, so mail clients that drop `<style>` show the same
/// table. Every value and every text a placeholder produced is escaped. No scripts, no external
/// resources. Charts are PNG images, drawn from SVG with the crate's own fonts. A report with
/// an `.html` or `.jinja` template is rendered through that template instead (see
/// [`crate::template::html`]).
#[derive(Debug, Clone, Default)]
pub struct HtmlRenderer {
    images: ChartImages,
    templates: Arc<TemplateCache>,
}

impl HtmlRenderer {
    pub fn new() -> Self {
        HtmlRenderer::default()
    }

    /// How [`Renderer::render_document`] carries chart images; `cid:` parts by default.
    pub fn with_chart_images(mut self, images: ChartImages) -> Self {
        self.images = images;
        self
    }

    pub fn chart_images(&self) -> ChartImages {
        self.images
    }

    fn page(&self, job: &RenderJob<'_>, images: ChartImages) -> Result<Rendered> {
        if let Some(path) = job.report.template_for(OutputFormat::Html) {
            let (charts, inline) = chart_images(job, images)?;
            let bytes = crate::template::html::render(&self.templates, path, job, &charts)?;
            return Ok(Rendered { bytes, inline });
        }
        let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
        let fill = |template: &str| {
            job.placeholders
                .render(template)
                .map_err(|e| e.with_backend(BACKEND))
        };
        let title = fill(&job.report.title)?;
        let subtitle = job.report.subtitle.as_deref().map(fill).transpose()?;
        let filters = job.filters.to_string();
        let mut bands = job.placeholders.clone();
        bands
            .set("title", title.as_str())
            .set("filters", filters.as_str())
            .set("page", "1")
            .set("pages", "1");
        let band = |band: Option<&mad_core::PageBand>| -> Result<Option<[String; 3]>> {
            let Some(band) = band else { return Ok(None) };
            let part = |p: &Option<String>| -> Result<String> {
                let text = p.as_deref().map(|t| bands.render(t)).transpose();
                Ok(text
                    .map_err(|e| e.with_backend(BACKEND))?
                    .unwrap_or_default())
            };
            Ok(Some([
                part(&band.left)?,
                part(&band.center)?,
                part(&band.right)?,
            ]))
        };
        let header = band(job.report.header.as_ref())?;
        let footer = band(job.report.footer.as_ref())?;

        let (charts, inline) = chart_images(job, images)?;

        let heading = page::Heading {
            title: &title,
            subtitle: subtitle.as_deref(),
            filters: job.filters,
            header,
            footer,
            charts,
            page_breaks: job
                .report
                .group_levels()
                .iter()
                .map(|g| g.page_break)
                .collect(),
        };
        Ok(Rendered {
            bytes: page::write(&layout, &heading, job.locale).into_bytes(),
            inline,
        })
    }
}

/// The report's charts as PNG images, carried as `images` says, with the inline parts that
/// `cid:` URLs refer to. An empty table has no charts.
fn chart_images(
    job: &RenderJob<'_>,
    images: ChartImages,
) -> Result<(Vec<page::Chart>, Vec<InlinePart>)> {
    let mut inline = Vec::new();
    let mut charts = Vec::new();
    if job.table.is_empty() {
        return Ok((charts, inline));
    }

    for (i, (data, placement)) in charts_of(job, BACKEND)?.into_iter().enumerate() {
        let scene = lay_out(&data, CHART_WIDTH, CHART_TEXT);
        let (png, _, _) = raster::png(&svg::write(&scene), CHART_SCALE, BACKEND)?;
        let src = match images {
            ChartImages::DataUri => format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&png)
            ),
            ChartImages::ContentId => {
                let id = content_id(i, &png);
                inline.push(InlinePart {
                    content_id: id.clone(),
                    media_type: "image/png".into(),
                    bytes: png.into(),
                });
                format!("cid:{id}")
            }
        };
        charts.push(page::Chart {
            src,
            alt: data.title.clone(),
            width: scene.width.round() as u32,
            height: scene.height.round() as u32,
            before: placement == ChartPlacement::Before,
        });
    }
    Ok((charts, inline))
}

/// A content id unique to the image: its position and a hash of its bytes.
fn content_id(index: usize, png: &[u8]) -> String {
    let mut hash = crate::pdf::StableHash::new();
    hash.write(png);
    format!("chart{}.{:016x}@mad-render", index + 1, hash.finish())
}

impl Renderer for HtmlRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Html
    }

    fn capabilities(&self) -> RendererCapabilities {
        RendererCapabilities {
            charts: true,
            templates: true,
            pages: false,
        }
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Ok(self.page(job, ChartImages::DataUri)?.bytes)
    }

    fn render_document(&self, job: &RenderJob<'_>) -> Result<Rendered> {
        self.page(job, self.images)
    }
}
