#![doc = include_str!("../README.md")]

use std::sync::Arc;

use mad_core::Registry;

mod chart;
pub mod csv;
mod deflate;
pub mod html;
mod labels;
pub mod pdf;
pub mod protect;
pub mod template;
pub mod xlsx;

pub use csv::CsvRenderer;
pub use html::{ChartImages, HtmlRenderer};
pub use pdf::PdfRenderer;
pub use xlsx::XlsxRenderer;

/// Registers the four renderers with their default settings.
pub fn register(registry: &mut Registry) {
    registry
        .register_renderer(Arc::new(PdfRenderer::default()))
        .register_renderer(Arc::new(XlsxRenderer::default()))
        .register_renderer(Arc::new(HtmlRenderer::default()))
        .register_renderer(Arc::new(CsvRenderer::default()));
    registry.register_protector(Arc::new(protect::DocumentProtector::default()));
}
