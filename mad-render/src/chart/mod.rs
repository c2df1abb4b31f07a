//! Charts of a report's rows: bars, a line or a pie of a measure aggregated per value of a
//! dimension.
//!
//! A chart is computed once ([`data`]), laid out once as shapes and texts ([`scene`]), then
//! drawn by each renderer: the PDF renderer as vector graphics with extractable text, the HTML
//! renderer as an SVG ([`svg`]) rasterised to a PNG image ([`raster`]) that e-mail clients
//! show.

pub(crate) mod data;
pub(crate) mod raster;
pub(crate) mod scene;
pub(crate) mod svg;

pub(crate) use data::charts_of;
pub(crate) use scene::{Anchor, Scene, Shape, bars_that_fit, lay_out};
