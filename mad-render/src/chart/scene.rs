//! A chart laid out as shapes and texts in a box whose origin is the top left corner, with y
//! growing downwards (as in SVG). The PDF renderer draws a scene as vector graphics; the HTML
//! renderer writes it as SVG.

use std::f32::consts::TAU;

use mad_core::{ChartKind, Color};

use super::data::ChartData;
use crate::pdf::font::Style;

/// The series colours, in order.
pub(crate) const PALETTE: [Color; 10] = [
    Color::rgb(0x4e, 0x79, 0xa7),
    Color::rgb(0xf2, 0x8e, 0x2b),
    Color::rgb(0x59, 0xa1, 0x4f),
    Color::rgb(0xe1, 0x57, 0x59),
    Color::rgb(0x76, 0xb7, 0xb2),
    Color::rgb(0xed, 0xc9, 0x48),
    Color::rgb(0xb0, 0x7a, 0xa1),
    Color::rgb(0xff, 0x9d, 0xa7),
    Color::rgb(0x9c, 0x75, 0x5f),
    Color::rgb(0xba, 0xb0, 0xac),
];
const NEGATIVE: Color = Color::rgb(0xc0, 0x39, 0x2b);
const TEXT: Color = Color::rgb(0x26, 0x26, 0x26);
const MUTED: Color = Color::rgb(0x59, 0x59, 0x59);
const GRID: Color = Color::rgb(0xd9, 0xd9, 0xd9);
const AXIS: Color = Color::rgb(0x80, 0x80, 0x80);

/// How a text sits on its x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing drawn. Angles are in radians, clockwise from twelve o'clock.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        fill: Color,
    },
    Line {
        points: Vec<(f32, f32)>,
        stroke: Color,
        width: f32,
    },
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
        fill: Color,
    },
    Wedge {
        cx: f32,
        cy: f32,
        r: f32,
        start: f32,
        end: f32,
        fill: Color,
    },
    /// `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        anchor: Anchor,
        color: Color,
        text: String,
    },
}

/// A laid-out chart.
#[derive(Debug, Clone)]
pub(crate) struct Scene {
    pub width: f32,
    pub height: f32,
    pub shapes: Vec<Shape>,
}

/// The width of `text` at `size` points in the renderers' font.
pub(crate) fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let style = if bold { Style::Bold } else { Style::Regular };
    match style.face() {
        Ok(face) => face.width(text, size),
        Err(_) => text.chars().count() as f32 * size * 0.6,
    }
}

/// `text` cut with an ellipsis to fit in `max` points.
fn fit(text: &str, size: f32, bold: bool, max: f32) -> String {
    if text_width(text, size, bold) <= max {
        return text.to_string();
    }
    let mut kept: String = text.to_string();
    while !kept.is_empty() && text_width(&kept, size, bold) + text_width("…", size, bold) > max {
        kept.pop();
    }
    format!("{}…", kept.trim_end())
}

/// The rows of bars a chart `height` points tall can show at body `size`.
pub(crate) fn bars_that_fit(height: f32, size: f32) -> usize {
    ((height - chrome_height(size)) / band(size))
        .floor()
        .max(1.0) as usize
}

fn band(size: f32) -> f32 {
    size * 1.9
}

/// Title, legend and axis.
fn chrome_height(size: f32) -> f32 {
    size * 7.0
}

/// Lays out `data` in a box `width` points wide with body text of `size` points; the scene's
/// height follows from the content (and for lines and pies from the width).
pub(crate) fn lay_out(data: &ChartData, width: f32, size: f32) -> Scene {
    let mut scene = Scene {
        width,
        height: 0.0,
        shapes: Vec::new(),
    };
    let title_size = size * 1.25;
    scene.text(0.0, title_size, title_size, true, Anchor::Start, TEXT, {
        fit(&data.title, title_size, true, width)
    });
    let top = title_size * 1.6;
    if data.is_empty() {
        scene.text(0.0, top + size * 1.2, size, false, Anchor::Start, MUTED, {
            "No values to chart.".to_string()
        });
        scene.height = (top + size * 2.0).ceil();
        return scene;
    }
    match data.kind {
        ChartKind::Bar => bars(&mut scene, data, top, size),
        ChartKind::Line => line(&mut scene, data, top, size),
        ChartKind::Pie => pie(&mut scene, data, top, size),
    }
    // Whole units, so an image of the scene has exactly its size times its scale.
    scene.height = scene.height.ceil();
    scene
}

impl Scene {
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        anchor: Anchor,
        color: Color,
        text: String,
    ) {
        self.shapes.push(Shape::Text {
            x,
            y,
            size,
            bold,
            anchor,
            color,
            text,
        });
    }

    fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, fill: Color) {
        self.shapes.push(Shape::Rect {
            x,
            y,
            width,
            height,
            fill,
        });
    }

    fn line(&mut self, points: Vec<(f32, f32)>, stroke: Color, width: f32) {
        self.shapes.push(Shape::Line {
            points,
            stroke,
            width,
        });
    }

    /// A swatch and a text: the legend of a single series.
    fn legend(&mut self, y: f32, size: f32, color: Color, text: &str) {
        self.rect(0.0, y - size * 0.8, size * 0.8, size * 0.8, color);
        self.text(
            size * 1.2,
            y,
            size,
            false,
            Anchor::Start,
            MUTED,
            text.into(),
        );
    }
}

/// Axis bounds and step: round numbers covering `min..max` (and zero) in about `target` steps.
pub(crate) fn nice_scale(min: f64, max: f64, target: usize) -> (f64, f64, f64) {
    let (min, max) = (min.min(0.0), max.max(0.0));
    let range = if max > min { max - min } else { 1.0 };
    let rough = range / target.max(1) as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let low = (min / step).floor() * step;
    let high = ((max / step).ceil() * step).max(low + step);
    (low, high, step)
}

fn ticks(low: f64, high: f64, step: f64) -> impl Iterator<Item = f64> {
    let count = ((high - low) / step).round() as usize;
    (0..=count).map(move |i| low + step * i as f64)
}

/// Horizontal bars: labels on the left, a value axis below, each value at the right.
fn bars(scene: &mut Scene, data: &ChartData, top: f32, size: f32) {
    let width = scene.width;
    scene.legend(top + size * 0.8, size, PALETTE[0], &data.series);
    let top = top + size * 2.0;
    let pad = size * 0.6;
    let widest_label = data
        .labels
        .iter()
        .map(|l| text_width(l, size, false))
        .fold(0.0, f32::max);
    let label_width = widest_label.min(width * 0.3) + pad;
    let widest_value = data
        .shown
        .iter()
        .map(|v| text_width(v, size, false))
        .fold(0.0, f32::max);
    let (x0, x1) = (
        label_width,
        (width - widest_value - pad).max(label_width + size * 4.0),
    );

    let min = data.values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = data
        .values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let target = ((x1 - x0) / (size * 8.0)).floor().max(2.0) as usize;
    let (low, high, step) = nice_scale(min, max, target);
    let x_of = |v: f64| x0 + ((v - low) / (high - low)) as f32 * (x1 - x0);

    let rows = data.values.len() as f32;
    let bottom = top + rows * band(size);
    for tick in ticks(low, high, step) {
        let x = x_of(tick);
        let color = if tick == 0.0 { AXIS } else { GRID };
        scene.line(vec![(x, top), (x, bottom)], color, 0.5);
        let label = data.format_tick(tick, step);
        scene.text(
            x,
            bottom + size * 1.3,
            size * 0.9,
            false,
            Anchor::Middle,
            MUTED,
            label,
        );
    }
    for (i, ((label, value), shown)) in data
        .labels
        .iter()
        .zip(&data.values)
        .zip(&data.shown)
        .enumerate()
    {
        let y = top + i as f32 * band(size);
        let (a, b) = (x_of(0.0), x_of(*value));
        let color = if *value < 0.0 { NEGATIVE } else { PALETTE[0] };
        let thickness = band(size) * 0.7;
        let bar_top = y + (band(size) - thickness) / 2.0;
        scene.rect(a.min(b), bar_top, (b - a).abs(), thickness, color);
        let baseline = y + band(size) / 2.0 + size * 0.35;
        let label = fit(label, size, false, label_width - pad);
        scene.text(
            label_width - pad,
            baseline,
            size,
            false,
            Anchor::End,
            TEXT,
            label,
        );
        scene.text(
            width,
            baseline,
            size,
            false,
            Anchor::End,
            TEXT,
            shown.clone(),
        );
    }
    scene.height = bottom + size * 2.0;
}

/// A line over the dimension's values in order, with a value axis on the left.
fn line(scene: &mut Scene, data: &ChartData, top: f32, size: f32) {
    let width = scene.width;
    scene.legend(top + size * 0.8, size, PALETTE[0], &data.series);
    let top = top + size * 2.0;
    let plot_height = (width * 0.4).clamp(size * 12.0, size * 30.0);
    let bottom = top + plot_height;

    let min = data.values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = data
        .values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let (low, high, step) = nice_scale(min, max, 5);
    let tick_labels: Vec<(f64, String)> = ticks(low, high, step)
        .map(|t| (t, data.format_tick(t, step)))
        .collect();
    let axis_width = tick_labels
        .iter()
        .map(|(_, l)| text_width(l, size * 0.9, false))
        .fold(0.0, f32::max);
    let (x0, x1) = (axis_width + size * 0.8, width - size);
    let y_of = |v: f64| bottom - ((v - low) / (high - low)) as f32 * plot_height;

    for (tick, label) in tick_labels {
        let y = y_of(tick);
        let color = if tick == 0.0 { AXIS } else { GRID };
        scene.line(vec![(x0, y), (x1, y)], color, 0.5);
        scene.text(
            x0 - size * 0.4,
            y + size * 0.3,
            size * 0.9,
            false,
            Anchor::End,
            MUTED,
            label,
        );
    }
    let n = data.values.len();
    let slot = (x1 - x0) / n as f32;
    let x_of = |i: usize| x0 + slot * (i as f32 + 0.5);
    let widest = data
        .labels
        .iter()
        .map(|l| text_width(l, size * 0.9, false))
        .fold(0.0, f32::max);
    let every = ((widest + size) / slot).ceil().max(1.0) as usize;
    for (i, label) in data.labels.iter().enumerate().step_by(every) {
        let label = fit(label, size * 0.9, false, slot * every as f32 - size * 0.3);
        scene.text(
            x_of(i),
            bottom + size * 1.3,
            size * 0.9,
            false,
            Anchor::Middle,
            MUTED,
            label,
        );
    }
    let points: Vec<(f32, f32)> = data
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (x_of(i), y_of(*v)))
        .collect();
    scene.line(points.clone(), PALETTE[0], size * 0.2);
    if n <= 60 {
        for &(cx, cy) in &points {
            scene.shapes.push(Shape::Circle {
                cx,
                cy,
                r: size * 0.28,
                fill: PALETTE[0],
            });
        }
    }
    if n <= 12 {
        for ((x, y), shown) in points.iter().zip(&data.shown) {
            scene.text(
                *x,
                y - size * 0.6,
                size * 0.85,
                false,
                Anchor::Middle,
                TEXT,
                shown.clone(),
            );
        }
    }
    scene.height = bottom + size * 2.0;
}

/// A pie on the left and a legend with values and shares on the right. Values of zero or
/// below have no slice; a note says so.
fn pie(scene: &mut Scene, data: &ChartData, top: f32, size: f32) {
    let width = scene.width;
    let row = size * 1.6;
    let legend_height = data.values.len() as f32 * row;
    let diameter = (width * 0.4).clamp(size * 10.0, size * 22.0);
    let r = diameter / 2.0;
    let (cx, cy) = (r + size * 0.5, top + size * 0.5 + r);
    let total: f64 = data.values.iter().filter(|v| **v > 0.0).sum();
    let mut angle = 0.0_f32;
    let mut left_out = false;
    let legend_x = diameter + size * 2.5;
    for (i, ((label, value), shown)) in data
        .labels
        .iter()
        .zip(&data.values)
        .zip(&data.shown)
        .enumerate()
    {
        let color = PALETTE[i % PALETTE.len()];
        let share = if *value > 0.0 && total > 0.0 {
            value / total
        } else {
            0.0
        };
        if share > 0.0 {
            let end = angle + share as f32 * TAU;
            scene.shapes.push(Shape::Wedge {
                cx,
                cy,
                r,
                start: angle,
                end,
                fill: color,
            });
            angle = end;
        } else {
            left_out = true;
        }
        let y = top + size * 1.2 + i as f32 * row;
        scene.rect(legend_x, y - size * 0.8, size * 0.8, size * 0.8, color);
        let percent = data.format_share(share);
        let text = format!("{label}: {shown} ({percent})");
        let text = fit(&text, size, false, width - legend_x - size * 1.2);
        scene.text(
            legend_x + size * 1.2,
            y,
            size,
            false,
            Anchor::Start,
            TEXT,
            text,
        );
    }
    let mut bottom = (top + diameter + size).max(top + legend_height + size * 0.5);
    if left_out {
        bottom += size * 0.6;
        scene.text(0.0, bottom, size * 0.85, false, Anchor::Start, MUTED, {
            "Values of zero or below have no slice.".to_string()
        });
        bottom += size * 0.6;
    }
    scene.height = bottom + size * 0.5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round_and_cover_zero() {
        assert_eq!(nice_scale(3.0, 97.0, 5), (0.0, 100.0, 20.0));
        assert_eq!(nice_scale(-40.0, 90.0, 5), (-50.0, 100.0, 50.0));
        assert_eq!(nice_scale(0.0, 0.0, 5), (0.0, 0.2, 0.2));
        let (low, high, step) = nice_scale(120.0, 120_000.0, 4);
        assert!(
            low == 0.0 && high >= 120_000.0 && step == 50_000.0,
            "{high} {step}"
        );
    }

    #[test]
    fn long_texts_are_cut_to_fit() {
        let cut = fit(&"word ".repeat(40), 10.0, false, 100.0);
        assert!(cut.ends_with('…'));
        assert!(text_width(&cut, 10.0, false) <= 100.0);
        assert_eq!(fit("short", 10.0, false, 100.0), "short");
    }
}
