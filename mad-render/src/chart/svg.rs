//! A scene written as an SVG document.

use std::f32::consts::TAU;
use std::fmt::Write;

use mad_core::Color;

use super::scene::{Anchor, Scene, Shape};
use crate::html::escape_into;

/// The font family the SVG names; the rasteriser is given exactly this font.
pub(crate) const FONT_FAMILY: &str = "DejaVu Sans";

/// `scene` as a standalone SVG document on a white background, one unit per point.
pub(crate) fn write(scene: &Scene) -> String {
    let mut out = String::with_capacity(4096 + scene.shapes.len() * 96);
    let (w, h) = (scene.width, scene.height);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.1}\" height=\"{h:.1}\" \
         viewBox=\"0 0 {w:.1} {h:.1}\" font-family=\"{FONT_FAMILY}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    for shape in &scene.shapes {
        shape_into(&mut out, shape);
    }
    out.push_str("</svg>");
    out
}

fn shape_into(out: &mut String, shape: &Shape) {
    match shape {
        Shape::Rect {
            x,
            y,
            width,
            height,
            fill,
        } => {
            let _ = write!(
                out,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{width:.2}\" height=\"{height:.2}\" \
                 fill=\"{fill}\"/>"
            );
        }
        Shape::Line {
            points,
            stroke,
            width,
        } => {
            out.push_str("<polyline fill=\"none\" points=\"");
            for (x, y) in points {
                let _ = write!(out, "{x:.2},{y:.2} ");
            }
            let _ = write!(
                out,
                "\" stroke=\"{stroke}\" stroke-width=\"{width:.2}\" stroke-linejoin=\"round\"/>"
            );
        }
        Shape::Circle { cx, cy, r, fill } => {
            let _ = write!(
                out,
                "<circle cx=\"{cx:.2}\" cy=\"{cy:.2}\" r=\"{r:.2}\" fill=\"{fill}\"/>"
            );
        }
        Shape::Wedge {
            cx,
            cy,
            r,
            start,
            end,
            fill,
        } => wedge_into(out, (*cx, *cy, *r), *start, *end, *fill),
        Shape::Text {
            x,
            y,
            size,
            bold,
            anchor,
            color,
            text,
        } => {
            let anchor = match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let weight = if *bold { " font-weight=\"bold\"" } else { "" };
            let _ = write!(
                out,
                "<text x=\"{x:.2}\" y=\"{y:.2}\" font-size=\"{size:.2}\" text-anchor=\"{anchor}\" \
                 fill=\"{color}\"{weight}>"
            );
            escape_into(out, text);
            out.push_str("</text>");
        }
    }
}

fn wedge_into(out: &mut String, (cx, cy, r): (f32, f32, f32), start: f32, end: f32, fill: Color) {
    if end - start >= TAU - 1e-4 {
        let _ = write!(
            out,
            "<circle cx=\"{cx:.2}\" cy=\"{cy:.2}\" r=\"{r:.2}\" fill=\"{fill}\"/>"
        );
        return;
    }
    let point = |a: f32| (cx + r * a.sin(), cy - r * a.cos());
    let ((x1, y1), (x2, y2)) = (point(start), point(end));
    let large = u8::from(end - start > TAU / 2.0);
    let _ = write!(
        out,
        "<path d=\"M{cx:.2},{cy:.2} L{x1:.2},{y1:.2} A{r:.2},{r:.2} 0 {large} 1 {x2:.2},{y2:.2} Z\" \
         fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"0.75\"/>"
    );
}
