//! SVG pictures: trajectories over the contour lines of a 2-D function, and loss
//! against step.
//!
//! plotters draws; this module computes what it cannot: contour lines (marching squares
//! with the segments joined into polylines), clipping of trajectories to the view
//! (a diverging run leaves the picture at its edge instead of producing pixel
//! coordinates past `i32`), and thinning of long series to what the picture can show.

use std::collections::HashMap;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Failure;

/// Series colours: matplotlib's `tab10` without its grey (the contours' colour): nine
/// colours that stay apart for the colour-blind too. Series 10–18 reuse them dashed,
/// 19–27 dotted, so up to 27 series differ in colour or line style.
pub const PALETTE: [RGBColor; 9] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The SVG dash patterns of the second and third rounds through the palette.
const DASHES: [&str; 2] = ["9 5", "2 4"];

/// The colour of the `i`-th series. From the tenth on, the colour is the palette's with
/// its blue channel moved by 1 or 2 (no one sees that): [`apply_dashes`] finds the
/// series' lines by that colour and dashes or dots them.
pub fn colour(i: usize) -> RGBColor {
    let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
    let round = ((i / PALETTE.len()) % 3) as u8;
    RGBColor(r, g, b + round)
}

/// Adds `stroke-dasharray` to the polylines drawn in a dashed or dotted series colour.
fn apply_dashes(svg: &str) -> String {
    let mut out = svg.to_string();
    for (round, dash) in DASHES.iter().enumerate() {
        for base in PALETTE {
            let c = RGBColor(base.0, base.1, base.2 + round as u8 + 1);
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
            out = out.replace(
                &format!("<polyline fill=\"none\" opacity=\"1\" {stroke}"),
                &format!(
                    "<polyline fill=\"none\" opacity=\"1\" stroke-dasharray=\"{dash}\" {stroke}"
                ),
            );
        }
    }
    out
}

/// One line of a legend.
#[derive(Clone, Debug)]
struct Key {
    label: String,
    mark: Mark,
}

/// What a legend line shows before its text.
#[derive(Clone, Copy, Debug)]
enum Mark {
    /// A line in the colour, with a dot if the series has them.
    Line(RGBColor, bool),
    /// A thin grey line (contours).
    Contour,
    /// The start point's ring.
    Start,
    /// The minimum's cross.
    Minimum,
}

/// Legend text size (SVG font-size = size / 1.24) and line height.
const KEY_FONT: f64 = 15.0;
const KEY_LINE: i32 = 22;
/// About the width of a character of the legend's text, in pixels (DejaVu Sans at
/// 12 px averages 7.2; a little more keeps labels inside).
const KEY_CHAR: f64 = 7.2;

/// The width of the legend column for `keys`: the longest label, 36 px of mark and
/// margins; at most 460 (longer labels wrap).
fn legend_width(keys: &[Key]) -> u32 {
    let longest = keys
        .iter()
        .map(|k| k.label.chars().count())
        .max()
        .unwrap_or(0);
    ((longest as f64 * KEY_CHAR) as u32 + 72).clamp(140, 560)
}

/// Splits `label` into lines of at most `chars` characters, at spaces.
fn wrap(label: &str, chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in label.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > chars {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    lines.push(line);
    lines
}

/// The legend, in its own column beside the plot: never over the data. A framed box
/// (background `#FBFBFB`) holding one line per key.
fn draw_keys(area: &DrawingArea<SVGBackend<'_>, Shift>, keys: &[Key]) -> DrawResult {
    if keys.is_empty() {
        return Ok(());
    }
    let (width, _) = area.dim_in_pixel();
    let width = i32::try_from(width).unwrap_or(i32::MAX);
    let chars = (((width - 64).max(40)) as f64 / KEY_CHAR) as usize + 1;
    let lines: Vec<Vec<String>> = keys.iter().map(|k| wrap(&k.label, chars)).collect();
    let rows: i32 = lines.iter().map(|l| l.len() as i32).sum();
    let (top, left) = (40, 6);
    let frame = [(left, top), (width - 10, top + rows * KEY_LINE + 14)];
    area.draw(&Rectangle::new(frame, RGBColor(0xfb, 0xfb, 0xfb).filled()))?;
    area.draw(&Rectangle::new(frame, BLACK.mix(0.5).stroke_width(1)))?;
    let style = TextStyle::from((FONT, KEY_FONT)).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = top + 7 + KEY_LINE / 2;
    for (key, text) in keys.iter().zip(&lines) {
        let (x0, x1, xm) = (left + 8, left + 32, left + 20);
        match key.mark {
            Mark::Line(c, dot) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?;
                if dot {
                    area.draw(&Circle::new((xm, y), 3, c.filled()))?;
                }
            }
            Mark::Contour => area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                CONTOUR.stroke_width(1),
            ))?,
            Mark::Start => area.draw(&Circle::new((xm, y), 6, BLACK.stroke_width(2)))?,
            Mark::Minimum => area.draw(&Cross::new((xm, y), 7, BLACK.stroke_width(2)))?,
        }
        for line in text {
            area.draw(&Text::new(line.clone(), (left + 40, y), style.clone()))?;
            y += KEY_LINE;
        }
    }
    Ok(())
}

/// Draws panel `i` into an area and returns its legend's keys.
type PanelFn<'f> = dyn Fn(
        usize,
        &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<Vec<Key>, DrawingAreaErrorKind<std::io::Error>>
    + 'f;

/// `area` cut into rows of `heights` pixels.
fn split_rows<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    heights: &[u32],
) -> Vec<DrawingArea<SVGBackend<'a>, Shift>> {
    let mut breaks = Vec::new();
    let mut y = 0u32;
    for h in &heights[..heights.len().saturating_sub(1)] {
        y += h;
        breaks.push(y);
    }
    area.split_by_breakpoints(Vec::<u32>::new(), breaks)
}

/// A picture of panels stacked vertically (`heights` in pixels, `width` each), each
/// with its legend in a column to its right. `draw(i, area)` draws panel `i` and returns
/// its keys; it runs twice, first to measure the legend column.
fn render_panels(width: u32, heights: &[u32], draw: &PanelFn<'_>) -> Result<String, Failure> {
    let total: u32 = heights.iter().sum();
    let mut legend = 0;
    {
        let mut scratch = String::new();
        let root = SVGBackend::with_string(&mut scratch, (width, total)).into_drawing_area();
        for (i, panel) in split_rows(&root, heights).iter().enumerate() {
            let keys = draw(i, panel).map_err(draw_error)?;
            legend = legend.max(legend_width(&keys));
        }
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width + legend, total)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        for (i, row) in split_rows(&root, heights).iter().enumerate() {
            let (plot, side) = row.split_horizontally(width);
            let keys = draw(i, &plot).map_err(draw_error)?;
            draw_keys(&side, &keys).map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(apply_dashes(&svg))
}

const CONTOUR: RGBColor = RGBColor(0x9a, 0xa8, 0xb8);
const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 720);
/// Grid nodes per axis for the contour computation.
const GRID: usize = 241;
/// Series are thinned to points at least this fraction of the view apart.
const THIN: f64 = 1.0 / 1000.0;

/// The rectangle of the (x1, x2) plane a picture shows.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// x1 from, to.
    pub x: (f64, f64),
    /// x2 from, to.
    pub y: (f64, f64),
}

/// What a trajectory picture shows besides the trajectories.
pub struct Surface<'a> {
    /// The function whose contour lines are drawn.
    pub f: &'a dyn Fn([f64; 2]) -> f64,
    /// The values of f at which contour lines are drawn.
    pub levels: &'a [f64],
    /// The legend entry for the contour lines.
    pub levels_label: &'a str,
    /// The rectangle shown.
    pub view: View,
    /// The start point, marked and labelled.
    pub start: [f64; 2],
    /// The minimizer, if there is one, marked and labelled.
    pub minimum: Option<[f64; 2]>,
}

/// One optimizer's path or loss curve.
pub struct Series<'a> {
    /// The legend text.
    pub label: &'a str,
    /// The points, in order. A non-finite value ends the series.
    pub points: &'a [[f64; 2]],
    /// The colour.
    pub colour: RGBColor,
}

fn draw_error<E: std::fmt::Display>(e: E) -> Failure {
    Failure::io(format!("cannot draw the picture: {e}"))
}

/// Renders the trajectories over the contour lines of `surface.f` as an SVG document.
/// With `markers`, every iterate gets a dot (for short runs such as the demo's 20 steps).
pub fn trajectories_svg(
    title: &str,
    surface: &Surface<'_>,
    series: &[Series<'_>],
    markers: bool,
) -> Result<String, Failure> {
    // f once per grid node for every level and both drawing passes: a typed f can be
    // a thousand operations.
    let grid = Grid::new(surface.f, surface.view);
    render_panels(SIZE.0, &[SIZE.1], &|_, area| {
        draw_trajectories(area, title, surface, &grid, series, markers, None)
    })
}

/// Each run's iterates in picture coordinates, filled in while drawing.
type PixelPaths = std::cell::RefCell<Vec<Vec<(i32, i32)>>>;

/// Most frames of an animation: longer runs show every k-th iterate.
const FRAMES: usize = 240;

/// A self-contained HTML page (no network) animating the trajectories: the picture of
/// [`trajectories_svg`] with the paths faint, a dot per run moving along its path and
/// leaving a trail, and a step counter; about 12 s per loop.
pub fn animation_html(
    title: &str,
    surface: &Surface<'_>,
    series: &[Series<'_>],
) -> Result<String, Failure> {
    let pixels = std::cell::RefCell::new(Vec::new());
    let grid = Grid::new(surface.f, surface.view);
    let svg = render_panels(SIZE.0, &[SIZE.1], &|_, area| {
        draw_trajectories(area, title, surface, &grid, series, false, Some(&pixels))
    })?;
    let pixels = pixels.into_inner();
    let steps = pixels
        .iter()
        .map(|p| p.len())
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let stride = steps.div_ceil(FRAMES).max(1);
    let frames: Vec<usize> = (0..=steps)
        .step_by(stride)
        .chain(std::iter::once(steps))
        .collect();
    let mut data = String::from("[");
    for (i, (path, s)) in pixels.iter().zip(series).enumerate() {
        if i > 0 {
            data.push(',');
        }
        let RGBColor(r, g, b) = s.colour;
        data += &format!("{{\"colour\":\"#{r:02x}{g:02x}{b:02x}\",\"points\":[");
        for (k, &t) in frames.iter().enumerate() {
            // A run that stopped early (diverged) stays at its last point.
            let (x, y) = path[t.min(path.len() - 1)];
            if k > 0 {
                data.push(',');
            }
            data += &format!("[{x},{y}]");
        }
        data += "]}";
    }
    data.push(']');
    // Paths faint under the moving dots.
    let svg = svg.replacen("<svg ", "<svg id=\"picture\" ", 1);
    let steps_json: Vec<String> = frames.iter().map(|t| t.to_string()).collect();
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
#picture polyline[stroke-width="2"] {{ opacity: 0.25; }}
</style>
</head>
<body>
<p id="counter">step 0 of {steps}</p>
{svg}
<script>
"use strict";
const runs = {data};
const steps = [{steps_list}];
const svg = document.getElementById("picture");
const ns = "http://www.w3.org/2000/svg";
const marks = runs.map(run => {{
  const trail = document.createElementNS(ns, "polyline");
  trail.setAttribute("fill", "none");
  trail.setAttribute("stroke", run.colour);
  trail.setAttribute("stroke-width", "3");
  trail.setAttribute("class", "trail");
  const dot = document.createElementNS(ns, "circle");
  dot.setAttribute("r", "6");
  dot.setAttribute("fill", run.colour);
  dot.setAttribute("stroke", "black");
  dot.setAttribute("class", "dot");
  svg.appendChild(trail);
  svg.appendChild(dot);
  return {{ trail, dot }};
}});
let frame = 0;
function show() {{
  runs.forEach((run, i) => {{
    const [x, y] = run.points[frame];
    marks[i].dot.setAttribute("cx", x);
    marks[i].dot.setAttribute("cy", y);
    marks[i].trail.setAttribute("points", run.points.slice(0, frame + 1).map(p => p.join(",")).join(" "));
  }});
  document.getElementById("counter").textContent = "step " + steps[frame] + " of {steps}";
  svg.setAttribute("data-frame", frame);
}}
show();
// 50 ms a frame, a second's pause at the end, then again.
let pause = 0;
setInterval(() => {{
  if (frame + 1 < steps.length) {{ frame += 1; show(); }}
  else if (++pause > 20) {{ pause = 0; frame = 0; show(); }}
}}, 50);
</script>
</body>
</html>
"#,
        steps_list = steps_json.join(","),
    ))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_trajectories(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    surface: &Surface<'_>,
    grid: &Grid,
    series: &[Series<'_>],
    markers: bool,
    pixels: Option<&PixelPaths>,
) -> Result<Vec<Key>, DrawingAreaErrorKind<std::io::Error>> {
    let mut keys = Vec::new();
    let view = surface.view;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, title_size(title, root.dim_in_pixel().0)))
        .margin(18)
        .margin_right(30)
        .x_label_area_size(52)
        .y_label_area_size(64)
        .build_cartesian_2d(view.x.0..view.x.1, view.y.0..view.y.1)?;
    if let Some(pixels) = pixels {
        // Every iterate in picture coordinates, for the animation: a point outside the
        // view (or not finite) is pinned to the view's edge.
        let clamp = |p: &[f64; 2]| {
            let x = if p[0].is_nan() {
                view.x.1
            } else {
                p[0].clamp(view.x.0, view.x.1)
            };
            let y = if p[1].is_nan() {
                view.y.1
            } else {
                p[1].clamp(view.y.0, view.y.1)
            };
            chart.backend_coord(&(x, y))
        };
        *pixels.borrow_mut() = series
            .iter()
            .map(|s| s.points.iter().map(clamp).collect())
            .collect();
    }
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x1")
        .y_desc("x2")
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .draw()?;

    let mut lines = Vec::new();
    for &level in surface.levels {
        lines.extend(contour(grid, level));
    }
    chart.draw_series(
        lines
            .into_iter()
            .map(|l| PathElement::new(l, CONTOUR.stroke_width(1))),
    )?;
    keys.push(Key {
        label: surface.levels_label.to_string(),
        mark: Mark::Contour,
    });

    let mut ends = Vec::with_capacity(series.len());
    for s in series {
        let style = s.colour.stroke_width(2);
        // A run that ends outside the view (or not finite) is drawn until it first
        // leaves: the rest would only be lines crossing the whole picture.
        let finite = finite_prefix(s.points);
        let ends_inside =
            finite.len() == s.points.len() && finite.last().is_some_and(|p| inside(*p, view));
        let (points, label) = match finite.iter().position(|p| !inside(*p, view)) {
            Some(k) if !ends_inside => (
                &finite[..=k],
                format!("{} (leaves the plot at step {k})", s.label),
            ),
            _ => (s.points, s.label.to_string()),
        };
        let pieces = clip(points, view);
        let dots: Vec<(f64, f64)> = if markers {
            visible_points(points, view)
        } else {
            // Long runs: only the final point, if it is finite and in view.
            let prefix = finite_prefix(points);
            visible_points(&prefix[prefix.len().saturating_sub(1)..], view)
        };
        let colour = s.colour;
        chart.draw_series(pieces.into_iter().map(|p| PathElement::new(p, style)))?;
        keys.push(Key {
            label,
            mark: Mark::Line(colour, true),
        });
        ends.push((dots, colour));
    }
    // Dots on top of every line, so that no run hides where another ended.
    let radius = if markers { 3 } else { 5 };
    for (dots, colour) in ends {
        chart.draw_series(
            dots.into_iter()
                .map(|p| Circle::new(p, radius, colour.filled())),
        )?;
    }

    let [sx, sy] = surface.start;
    chart.draw_series(std::iter::once(Circle::new(
        (sx, sy),
        6,
        BLACK.stroke_width(2),
    )))?;
    keys.push(Key {
        label: format!("start ({}, {})", num(sx), num(sy)),
        mark: Mark::Start,
    });
    if let Some([mx, my]) = surface.minimum {
        chart.draw_series(std::iter::once(Cross::new(
            (mx, my),
            7,
            BLACK.stroke_width(2),
        )))?;
        keys.push(Key {
            label: format!("minimum ({}, {})", num(mx), num(my)),
            mark: Mark::Minimum,
        });
    }
    Ok(keys)
}

/// Renders loss against step as an SVG document: the gap `f(x) − f*` on a log scale
/// when the function has a minimum (`log`), else `f(x)` on a symmetric log scale
/// (`sign(f)·log10(1 + |f|)`: the saddle's f falls without bound).
pub fn loss_svg(title: &str, series: &[Series<'_>], log: bool) -> Result<String, Failure> {
    let (scale, y) = if log {
        (Scale::Log, "f(x) − f*  (log scale)")
    } else {
        (Scale::SymLog, "f(x)  (symmetric log scale)")
    };
    let axes = Axes {
        title: Some(title),
        x: "step",
        y,
        markers: false,
    };
    render_panels(SIZE.0, &[SIZE.1], &|_, area| {
        draw_loss(area, &axes, series, scale)
    })
}

/// [`loss_svg`] above, and below it the learning rate each run used at each step (a
/// schedule's shape, one curve per rule since each starts from its own lr).
pub fn loss_and_lr_svg(
    title: &str,
    series: &[Series<'_>],
    log: bool,
    lrs: &[Series<'_>],
) -> Result<String, Failure> {
    let (scale, y) = if log {
        (Scale::Log, "f(x) − f*  (log scale)")
    } else {
        (Scale::SymLog, "f(x)  (symmetric log scale)")
    };
    let axes = Axes {
        title: Some(title),
        x: "step",
        y,
        markers: false,
    };
    let lr_axes = Axes {
        title: None,
        x: "step",
        y: "learning rate",
        markers: false,
    };
    render_panels(SIZE.0, &[560, 340], &|i, area| {
        if i == 0 {
            draw_loss(area, &axes, series, scale)
        } else {
            draw_linear(area, &lr_axes, lrs)
        }
    })
}

/// Renders curves on linear axes (e.g. learning rate against epoch).
pub fn lines_svg(title: &str, x: &str, y: &str, series: &[Series<'_>]) -> Result<String, Failure> {
    let axes = Axes {
        title: Some(title),
        x,
        y,
        markers: false,
    };
    // Narrower than the other pictures: with its legend it fits the width of a rustdoc
    // page (about 960 px), where the kernel crate shows it at its natural size.
    render_panels(620, &[SIZE.1], &|_, area| draw_linear(area, &axes, series))
}

/// Renders curves of positive values against `x` on a log scale (e.g. an effective
/// learning rate against step).
pub fn log_lines_svg(
    title: &str,
    x: &str,
    y: &str,
    series: &[Series<'_>],
) -> Result<String, Failure> {
    let axes = Axes {
        title: Some(title),
        x,
        y,
        markers: false,
    };
    render_panels(SIZE.0, &[SIZE.1], &|_, area| {
        draw_loss(area, &axes, series, Scale::Log)
    })
}

/// Renders a training run: `losses` against epoch on a log scale above, `metrics`
/// (accuracy or R²) against epoch on a linear scale below, sharing the epoch axis.
/// Each point is marked when there are at most 60 epochs.
pub fn training_svg(
    title: &str,
    losses: &[Series<'_>],
    loss_desc: &str,
    metrics: &[Series<'_>],
    metric_desc: &str,
    lrs: &[Series<'_>],
) -> Result<String, Failure> {
    let epochs = losses.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let markers = epochs <= 61;
    let loss = Axes {
        title: Some(title),
        x: "epoch",
        y: loss_desc,
        markers,
    };
    let metric = Axes {
        title: None,
        x: "epoch",
        y: metric_desc,
        markers,
    };
    let lr = Axes {
        title: None,
        x: "epoch",
        y: "learning rate",
        markers,
    };
    render_panels(SIZE.0, &[480, 320, 260], &|i, area| match i {
        0 => draw_loss(area, &loss, losses, Scale::Log),
        1 => draw_linear(area, &metric, metrics),
        _ => draw_linear(area, &lr, lrs),
    })
}

/// Draws into an SVG document of `size` pixels.
fn render(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<String, Failure> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// A chart's title and axis descriptions.
struct Axes<'a> {
    /// The caption, if the chart has one.
    title: Option<&'a str>,
    /// Horizontal axis description.
    x: &'a str,
    /// Vertical axis description.
    y: &'a str,
    /// A dot at every point.
    markers: bool,
}

/// Ticks at whole numbers for a horizontal axis from 0 to `max`: every 1, 2, 5, 10,
/// 20, 50, ... so that there are at most about ten.
fn whole_ticks(max: f64) -> Vec<(f64, String)> {
    let mut stride = 1.0;
    'search: for decade in 0..18 {
        for m in [1.0, 2.0, 5.0] {
            stride = m * 10f64.powi(decade);
            if max / stride <= 10.0 {
                break 'search;
            }
        }
    }
    (0..)
        .map(|k| f64::from(k) * stride)
        .take_while(|&v| v <= max)
        .map(|v| (v, format!("{v:.0}")))
        .collect()
}

/// The smallest positive value shown on a log axis: anything below is drawn there.
const LOG_FLOOR: f64 = 1e-300;

/// How loss values map to the vertical axis. Both scales are drawn on a linear axis
/// holding the transformed value, with ticks at powers of ten.
#[derive(Clone, Copy)]
enum Scale {
    /// log10(v), for v > 0.
    Log,
    /// sign(v)·log10(1 + |v|), for any v.
    SymLog,
}

impl Scale {
    fn to_axis(self, v: f64) -> f64 {
        match self {
            Scale::Log => v.max(LOG_FLOOR).log10(),
            Scale::SymLog => v.signum() * v.abs().ln_1p() / std::f64::consts::LN_10,
        }
    }

    /// Ticks at ±10^k (and 0 for the symmetric scale) covering `lo..=hi` (axis units),
    /// at most about a dozen: (axis position, label).
    fn ticks(self, lo: f64, hi: f64) -> Vec<(f64, String)> {
        let label = |k: i32| match k {
            0 => "1".to_string(),
            1 => "10".to_string(),
            _ => format!("1e{k}"),
        };
        let mut ticks = Vec::new();
        match self {
            Scale::Log => {
                // Within 0.001..100000 the labels are plain numbers. An axis of
                // fewer than 2.5 decades gets ticks at 2× and 5×, one of less than a
                // decade at every multiple.
                let plain = lo >= -3.0 && hi < 5.0;
                let label = |m: f64, k: i32| {
                    if plain {
                        format!("{}", m * 10f64.powi(k))
                    } else if m == 1.0 {
                        label(k)
                    } else {
                        format!("{m}e{k}")
                    }
                };
                let (a, b) = (lo.ceil() as i32, hi.floor() as i32);
                let stride = ((b - a) / 10 + 1).max(1);
                let mut k = b;
                while k >= a {
                    ticks.push((f64::from(k), label(1.0, k)));
                    k -= stride;
                }
                let between: &[f64] = if hi - lo < 1.0 {
                    &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
                } else if hi - lo < 2.5 {
                    &[2.0, 5.0]
                } else {
                    &[]
                };
                if !between.is_empty() {
                    for k in lo.floor() as i32..=hi.ceil() as i32 {
                        for &m in between {
                            let at = f64::from(k) + m.log10();
                            if (lo..=hi).contains(&at) {
                                ticks.push((at, label(m, k)));
                            }
                        }
                    }
                }
            }
            Scale::SymLog => {
                let top = lo.abs().max(hi.abs()).floor() as i32;
                let stride = (top / 5 + 1).max(1);
                ticks.push((0.0, "0".to_string()));
                let mut k = 0;
                while k <= top {
                    let at = self.to_axis(10f64.powi(k));
                    if at <= hi {
                        ticks.push((at, label(k)));
                    }
                    if -at >= lo {
                        ticks.push((-at, format!("−{}", label(k))));
                    }
                    k += stride;
                }
                // ±1 and ±10 crowd 0 when the scale spans many decades.
                let gap = (hi - lo) / 30.0;
                let mut kept: Vec<(f64, String)> = Vec::with_capacity(ticks.len());
                for t in ticks {
                    if kept.iter().all(|k| (k.0 - t.0).abs() >= gap) {
                        kept.push(t);
                    }
                }
                ticks = kept;
            }
        }
        ticks
    }
}

fn draw_loss(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    axes: &Axes<'_>,
    series: &[Series<'_>],
    scale: Scale,
) -> Result<Vec<Key>, DrawingAreaErrorKind<std::io::Error>> {
    let steps = series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p[0])
        .fold(1.0, f64::max);
    let mut curves: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            thin_steps(finite_prefix(s.points))
                .into_iter()
                .map(|(t, v)| (t, scale.to_axis(v)))
                .collect()
        })
        .collect();
    let mut labels: Vec<String> = series.iter().map(|s| s.label.to_string()).collect();
    if let Scale::Log = scale {
        // A diverging run would squeeze every other curve into the bottom of the
        // picture: the scale stops 4 decades above the highest start, and a curve that
        // passes that is drawn up to the top edge and said so in the legend.
        let cap = curves
            .iter()
            .filter_map(|c| c.first())
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            + 4.0;
        for ((curve, label), s) in curves.iter_mut().zip(&mut labels).zip(series) {
            if cut(curve, cap, true) {
                let at = s
                    .points
                    .iter()
                    .find(|p| !p[1].is_finite() || scale.to_axis(p[1]) > cap)
                    .map_or(0.0, |p| p[0]);
                *label += &format!(" (above 1e{cap} from {} {at})", axes.x);
            }
        }
    }
    note_non_finite(series, &mut labels, axes.x);
    let (lo, hi) = padded_range(&curves, 0.04, 1.0, (-1.0, 1.0));
    let axis = TickAxis {
        range: (lo, hi),
        ticks: scale.ticks(lo, hi),
    };
    let x_axis = TickAxis {
        range: (0.0, steps),
        ticks: whole_ticks(steps),
    };
    let mut builder = ChartBuilder::on(root);
    if let Some(title) = axes.title {
        builder.caption(title, (FONT, title_size(title, root.dim_in_pixel().0)));
    }
    let mut chart = builder
        .margin(18)
        .margin_right(36)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x_axis, axis)?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    let mut keys = Vec::with_capacity(series.len());
    for ((s, curve), label) in series.iter().zip(curves).zip(labels) {
        keys.push(draw_curve(
            &mut chart,
            s.colour,
            curve,
            label,
            axes.markers,
        )?);
    }
    Ok(keys)
}

/// Ends `curve` where it first passes `limit` (goes above it if `upper`, else below),
/// on the limit itself; returns whether it did.
fn cut(curve: &mut Vec<(f64, f64)>, limit: f64, upper: bool) -> bool {
    let beyond = |y: f64| if upper { y > limit } else { y < limit };
    let Some(j) = curve.iter().position(|p| beyond(p.1)) else {
        return false;
    };
    if j > 0 {
        let ((t0, y0), (t1, y1)) = (curve[j - 1], curve[j]);
        curve.truncate(j);
        curve.push((t0 + (limit - y0) / (y1 - y0) * (t1 - t0), limit));
    } else {
        curve.clear();
    }
    true
}

/// Says in the legend where a series stops being finite (its curve ends there), unless
/// the legend already says where it left the picture.
fn note_non_finite(series: &[Series<'_>], labels: &mut [String], x_desc: &str) {
    for (s, label) in series.iter().zip(labels) {
        if label.ends_with(')') && label.contains(" from ") {
            continue;
        }
        if let Some(p) = s.points.iter().find(|p| !p[1].is_finite()) {
            *label += &format!(" (not finite from {x_desc} {})", p[0]);
        }
    }
}

/// One curve, with a dot at every point if `markers`; returns its legend entry.
fn draw_curve<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<TickAxis, TickAxis>>,
    colour: RGBColor,
    curve: Vec<(f64, f64)>,
    label: String,
    markers: bool,
) -> Result<Key, DrawingAreaErrorKind<DB::ErrorType>> {
    if markers {
        chart.draw_series(curve.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    chart.draw_series(LineSeries::new(curve, colour.stroke_width(2)))?;
    Ok(Key {
        label,
        mark: Mark::Line(colour, markers),
    })
}

/// Curves on a linear vertical axis fitted to their finite values down to −1.
fn draw_linear(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    axes: &Axes<'_>,
    series: &[Series<'_>],
) -> Result<Vec<Key>, DrawingAreaErrorKind<std::io::Error>> {
    let steps = series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p[0])
        .fold(1.0, f64::max);
    let mut curves: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            finite_prefix(s.points)
                .iter()
                .map(|p| (p[0], p[1]))
                .collect()
        })
        .collect();
    let mut labels: Vec<String> = series.iter().map(|s| s.label.to_string()).collect();
    // R² of a diverging regression falls without bound: the axis stops at −1.
    let floor = -1.0;
    for ((curve, label), s) in curves.iter_mut().zip(&mut labels).zip(series) {
        if cut(curve, floor, false) {
            let at = s
                .points
                .iter()
                .find(|p| p[1].is_nan() || p[1] < floor)
                .map_or(0.0, |p| p[0]);
            *label += &format!(" (below −1 from {} {at})", axes.x);
        }
    }
    note_non_finite(series, &mut labels, axes.x);
    let (lo, hi) = padded_range(&curves, 0.05, 0.5, (0.0, 1.0));
    let y_axis = TickAxis {
        range: (lo, hi),
        ticks: linear_ticks(lo, hi),
    };
    let x_axis = TickAxis {
        range: (0.0, steps),
        ticks: whole_ticks(steps),
    };
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(18)
        .margin_right(36)
        .x_label_area_size(52)
        .y_label_area_size(72);
    if let Some(title) = axes.title {
        builder.caption(title, (FONT, title_size(title, root.dim_in_pixel().0)));
    }
    let mut chart = builder.build_cartesian_2d(x_axis, y_axis)?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    let mut keys = Vec::with_capacity(series.len());
    for ((s, curve), label) in series.iter().zip(curves).zip(labels) {
        keys.push(draw_curve(
            &mut chart,
            s.colour,
            curve,
            label,
            axes.markers,
        )?);
    }
    Ok(keys)
}

/// About six ticks at round numbers (1, 2 or 5 times a power of ten apart) in `lo..=hi`.
/// Total for any finite `lo ≤ hi`: a range with no round numbers to show (a height
/// below the smallest normal number, or none at all) gets ticks at its two ends.
fn linear_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    round_ticks(lo, hi).unwrap_or_else(|| {
        let mut ticks = vec![(lo, end_label(lo))];
        if hi > lo {
            ticks.push((hi, end_label(hi)));
        }
        ticks
    })
}

/// The round ticks of [`linear_ticks`], if `lo..hi` has a normal, finite height.
fn round_ticks(lo: f64, hi: f64) -> Option<Vec<(f64, String)>> {
    let height = hi - lo;
    // hi − lo overflows for ends near ±f64::MAX; the halves' difference cannot.
    let raw = if height.is_finite() {
        height / 6.0
    } else {
        (hi / 2.0 - lo / 2.0) / 3.0
    };
    if !(raw.is_finite() && raw >= f64::MIN_POSITIVE) {
        return None;
    }
    let power = 10f64.powf(raw.log10().floor());
    let stride = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * power);
    let (first, last) = ((lo / stride).ceil(), (hi / stride).floor());
    // At most about seven; k·stride is exact for |k| < 2^53.
    if !(stride.is_finite()
        && first <= last
        && last - first <= 12.0
        && first.abs().max(last.abs()) < 2f64.powi(53))
    {
        return None;
    }
    let (first, last) = (first as i64, last as i64);
    let stride_exponent = stride.log10().floor();
    let top_exponent = (first.unsigned_abs().max(last.unsigned_abs()) as f64 * stride)
        .log10()
        .floor();
    // Plain decimals where they stay short; beyond, as many significant digits in
    // scientific notation as the stride needs.
    let plain = stride >= 1e-4 && top_exponent < 6.0;
    let decimals = (-stride_exponent).max(0.0) as usize;
    let digits = (top_exponent - stride_exponent).clamp(0.0, 17.0) as usize;
    Some(
        (first..=last)
            .map(|k| {
                let v = k as f64 * stride;
                // −0.0 would print as "-0".
                let v = if v == 0.0 { 0.0 } else { v };
                let label = if plain {
                    format!("{v:.decimals$}")
                } else if v == 0.0 {
                    "0".to_string()
                } else {
                    format!("{v:.digits$e}")
                };
                (v, label)
            })
            .collect(),
    )
}

/// The label of an axis end: the shortest text that reads back as the value.
fn end_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A table of values drawn as coloured cells: `values[row][column]`, rows from the
/// top; a non-finite value is a diverged run, drawn grey.
pub struct Heatmap<'a> {
    /// The caption.
    pub title: &'a str,
    /// Row labels, top to bottom.
    pub rows: &'a [String],
    /// Column labels, left to right.
    pub columns: &'a [String],
    /// One vector per row.
    pub values: &'a [Vec<f64>],
    /// Horizontal axis description.
    pub x_desc: &'a str,
    /// Vertical axis description.
    pub y_desc: &'a str,
    /// What the colour shows (the colour bar's description, to which the scale is
    /// added).
    pub colour_desc: &'a str,
    /// The column of each row's cell to outline (the best of the row), if any.
    pub best: &'a [Option<usize>],
    /// The top of the colour scale: larger values get its colour (their cells still
    /// show the value). A diverging run would otherwise wash out every other colour.
    pub cap: Option<f64>,
}

/// matplotlib's viridis at 0, 1/8, …, 1: dark violet (low) to yellow (high), readable
/// in grey and by the colour-blind.
const VIRIDIS: [RGBColor; 9] = [
    RGBColor(0x44, 0x01, 0x54),
    RGBColor(0x48, 0x28, 0x78),
    RGBColor(0x3e, 0x4a, 0x89),
    RGBColor(0x31, 0x68, 0x8e),
    RGBColor(0x26, 0x82, 0x8e),
    RGBColor(0x1f, 0x9e, 0x89),
    RGBColor(0x35, 0xb7, 0x79),
    RGBColor(0x6d, 0xcd, 0x59),
    RGBColor(0xfd, 0xe7, 0x25),
];

/// Width of the colour bar with its ticks and description.
const BAR_AREA: u32 = 140;

/// The grey of a diverged cell.
const DIVERGED: RGBColor = RGBColor(0xd4, 0xd4, 0xd4);

/// Viridis at `t` in 0..=1, interpolated linearly between the anchors.
fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let k = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + f * (f64::from(q) - f64::from(p))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `c`.
fn ink(c: RGBColor) -> RGBColor {
    let luma = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if luma > 140.0 { BLACK } else { WHITE }
}

/// A number in 3 significant digits, in at most 8 characters: `0.0523`, `2.30`, `152`,
/// `1.23e-5`.
pub fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor();
    if (-2.0..3.0).contains(&magnitude) {
        let decimals = (2.0 - magnitude).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// Renders a heatmap with a colour bar on a log scale (symmetric log if some value is
/// ≤ 0), the value printed in each cell when the cells are wide enough (84 pixels per
/// column: always, unless the picture would pass the SVG's size).
pub fn heatmap_svg(map: &Heatmap<'_>) -> Result<String, Failure> {
    let finite = || {
        map.values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
    };
    let scale = if finite().all(|v| v > 0.0) {
        Scale::Log
    } else {
        Scale::SymLog
    };
    let label_width = map
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0) as f64;
    let left = (label_width * 8.0 + 56.0).clamp(100.0, 420.0) as u32;
    // 84 × 52 pixel cells, narrower and lower when there are many.
    let columns = map.columns.len().max(4) as u32;
    let rows = map.rows.len().max(4) as u32;
    let (cell_w, cell_h) = ((2100 / columns).clamp(8, 84), (2600 / rows).clamp(8, 52));
    let size = (left + BAR_AREA + 30 + cell_w * columns, 170 + cell_h * rows);
    render(size, |root| {
        draw_heatmap(root, map, scale, left, cell_w >= 62 && cell_h >= 20)
    })
}

fn draw_heatmap(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    map: &Heatmap<'_>,
    scale: Scale,
    left: u32,
    show_values: bool,
) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(map.title, (FONT, title_size(map.title, SIZE.0)))?;
    let (width, _) = root.dim_in_pixel();
    let (main, bar) = root.split_horizontally(width.saturating_sub(BAR_AREA));
    let axis_values: Vec<f64> = map
        .values
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .map(|&v| scale.to_axis(v))
        .collect();
    let mut lo = axis_values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = axis_values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some(cap) = map.cap {
        hi = hi.min(scale.to_axis(cap)).max(lo);
    }
    // No finite value, or all equal (lo ≥ hi also when the cap is below them all).
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        (lo, hi) = if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        };
    }
    let colour_of = |v: f64| viridis((scale.to_axis(v) - lo) / (hi - lo));

    let (n_rows, n_cols) = (map.rows.len(), map.columns.len());
    let x_axis = TickAxis {
        range: (0.0, n_cols as f64),
        ticks: (0..n_cols)
            .map(|c| (c as f64 + 0.5, map.columns[c].clone()))
            .collect(),
    };
    let y_axis = TickAxis {
        range: (0.0, n_rows as f64),
        ticks: (0..n_rows)
            .map(|r| ((n_rows - 1 - r) as f64 + 0.5, map.rows[r].clone()))
            .collect(),
    };
    let mut chart = ChartBuilder::on(&main)
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(left)
        .build_cartesian_2d(x_axis, y_axis)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(map.x_desc)
        .y_desc(map.y_desc)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .draw()?;
    for (r, row) in map.values.iter().enumerate() {
        let y = (n_rows - 1 - r) as f64;
        for (c, &v) in row.iter().enumerate() {
            let x = c as f64;
            let fill = if v.is_finite() {
                colour_of(v)
            } else {
                DIVERGED
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                fill.filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                WHITE.stroke_width(1),
            )))?;
            if show_values {
                let text = if v.is_finite() {
                    short(v)
                } else {
                    "diverged".to_string()
                };
                let colour = if v.is_finite() {
                    ink(fill)
                } else {
                    RGBColor(0x55, 0x55, 0x55)
                };
                let style = TextStyle::from((FONT, 13))
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), style)))?;
            }
        }
    }

    // The best cell of each row: a thick outline in the ink that reads on its colour.
    for (r, best) in map.best.iter().enumerate() {
        let Some(c) = *best else { continue };
        let Some(&v) = map.values.get(r).and_then(|row| row.get(c)) else {
            continue;
        };
        let (x, y) = (c as f64, (n_rows - 1 - r) as f64);
        let outline = if v.is_finite() {
            ink(colour_of(v))
        } else {
            BLACK
        };
        // A closed path: the SVG backend drops the stroke width of a rectangle.
        let (a, b, c, d) = (x + 0.04, y + 0.06, x + 0.96, y + 0.94);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(a, b), (c, b), (c, d), (a, d), (a, b)],
            outline.stroke_width(3),
        )))?;
    }
    if map.values.iter().flatten().any(|v| !v.is_finite()) {
        let (_, h) = bar.dim_in_pixel();
        let y = i32::try_from(h).unwrap_or(i32::MAX) - 30;
        bar.draw(&Rectangle::new([(20, y), (44, y + 16)], DIVERGED.filled()))?;
        bar.draw(&Text::new(
            "diverged",
            (50, y + 8),
            TextStyle::from((FONT, 15)).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    if axis_values.is_empty() {
        // Every run diverged: a colour bar would explain nothing.
        return Ok(());
    }
    // The colour bar, its ticks on the scale of the values.
    let desc = match scale {
        Scale::Log => format!("{}  (log scale)", map.colour_desc),
        Scale::SymLog => format!("{}  (symmetric log scale)", map.colour_desc),
    };
    let bar_axis = TickAxis {
        range: (lo, hi),
        ticks: scale.ticks(lo, hi),
    };
    let no_ticks = TickAxis {
        range: (0.0, 1.0),
        ticks: Vec::new(),
    };
    let mut colour_bar = ChartBuilder::on(&bar)
        .margin(12)
        .margin_left(20)
        .margin_right(0)
        .x_label_area_size(56)
        .right_y_label_area_size(78)
        .build_cartesian_2d(no_ticks, bar_axis)?;
    colour_bar
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(desc)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 15))
        .draw()?;
    let slices = 120;
    colour_bar.draw_series((0..slices).map(|k| {
        let (a, b) = (
            lo + (hi - lo) * f64::from(k) / f64::from(slices),
            lo + (hi - lo) * f64::from(k + 1) / f64::from(slices),
        );
        let t = (f64::from(k) + 0.5) / f64::from(slices);
        Rectangle::new([(0.0, a), (1.0, b)], viridis(t).filled())
    }))?;
    Ok(())
}

/// A linear axis with given ticks and labels (plotters' `with_key_points` cannot be
/// given labels).
struct TickAxis {
    range: (f64, f64),
    ticks: Vec<(f64, String)>,
}

impl Ranged for TickAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.range;
        let height = hi - lo;
        // Halved where the height overflows (an axis from −f64::MAX to f64::MAX).
        let t = if height.is_finite() {
            (v - lo) / height
        } else {
            (v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0)
        };
        let t = t.clamp(-1.0, 2.0);
        limit.0 + (f64::from(limit.1 - limit.0) * t + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        self.ticks.iter().map(|t| t.0).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.0..self.range.1
    }
}

impl ValueFormatter<f64> for TickAxis {
    fn format_ext(&self, v: &f64) -> String {
        self.ticks
            .iter()
            .find(|t| t.0 == *v)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// A title's font size: 22, smaller for a long title so that it fits the width. The
/// SVG backend writes `font-size = size / 1.24`; a sans-serif title with formulas
/// measures about 0.52 of that per character (DejaVu Sans), 0.56 leaves a margin.
fn title_size(title: &str, width: u32) -> f64 {
    let chars = title.chars().count() as f64;
    (0.92 * f64::from(width) * 1.24 / (0.56 * chars)).clamp(12.0, 22.0)
}

/// A number as a short label: `-1.2`, `1`, `0.5`.
fn num(v: f64) -> String {
    format!("{v}")
}

/// The points up to (not including) the first one with a non-finite coordinate.
fn finite_prefix(points: &[[f64; 2]]) -> &[[f64; 2]] {
    let end = points
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
        .unwrap_or(points.len());
    &points[..end]
}

fn inside(p: [f64; 2], view: View) -> bool {
    (view.x.0..=view.x.1).contains(&p[0]) && (view.y.0..=view.y.1).contains(&p[1])
}

fn visible_points(points: &[[f64; 2]], view: View) -> Vec<(f64, f64)> {
    finite_prefix(points)
        .iter()
        .filter(|p| inside(**p, view))
        .map(|p| (p[0], p[1]))
        .collect()
}

/// The part of segment `a`–`b` inside `view` (Liang–Barsky), or `None`.
///
/// A diverging run has points near ±1e300: the crossing with an edge of the view is
/// placed exactly on that edge, and its other coordinate is interpolated from the
/// endpoint nearer to the edge, so that no huge value cancels against another.
fn clip_segment(a: [f64; 2], b: [f64; 2], view: View) -> Option<([f64; 2], [f64; 2])> {
    // Half the difference, and t in [0, 2]: finite for any finite endpoints.
    let h = [b[0] / 2.0 - a[0] / 2.0, b[1] / 2.0 - a[1] / 2.0];
    let bounds = [(0, view.x.0), (0, view.x.1), (1, view.y.0), (1, view.y.1)];
    let (mut t0, mut t1) = ((0.0f64, None), (2.0f64, None));
    for (k, (p, q)) in [
        (-h[0], a[0] - view.x.0),
        (h[0], view.x.1 - a[0]),
        (-h[1], a[1] - view.y.0),
        (h[1], view.y.1 - a[1]),
    ]
    .into_iter()
    .enumerate()
    {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 && r > t0.0 {
                t0 = (r, Some(k));
            } else if p > 0.0 && r < t1.0 {
                t1 = (r, Some(k));
            }
        }
    }
    if t0.0 > t1.0 {
        return None;
    }
    let range = [view.x, view.y];
    let at = |(t, edge): (f64, Option<usize>), end: [f64; 2]| {
        let Some(k) = edge else { return Some(end) };
        let (axis, bound) = bounds[k];
        let other = 1 - axis;
        let near = if (bound - a[axis]).abs() <= (bound - b[axis]).abs() {
            a
        } else {
            b
        };
        let mut v = near[other] + (bound - near[axis]) * (h[other] / h[axis]);
        if !v.is_finite() {
            v = a[other] + t * h[other];
        }
        if !v.is_finite() {
            return None;
        }
        let mut p = [0.0; 2];
        p[axis] = bound;
        p[other] = v.clamp(range[other].0, range[other].1);
        Some(p)
    };
    Some((at(t0, a)?, at(t1, b)?))
}

/// The visible pieces of a polyline, thinned; it ends at its first non-finite point.
fn clip(points: &[[f64; 2]], view: View) -> Vec<Vec<(f64, f64)>> {
    let points = finite_prefix(points);
    let mut pieces: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut current: Vec<[f64; 2]> = Vec::new();
    if let [only] = points
        && inside(*only, view)
    {
        current.push(*only);
    }
    for w in points.windows(2) {
        match clip_segment(w[0], w[1], view) {
            Some((c, d)) => {
                if current.last() != Some(&c) {
                    if !current.is_empty() {
                        pieces.push(std::mem::take(&mut current));
                    }
                    current.push(c);
                }
                current.push(d);
            }
            None => {
                if !current.is_empty() {
                    pieces.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    let scale = [
        1.0 / (view.x.1 - view.x.0).abs().max(f64::MIN_POSITIVE),
        1.0 / (view.y.1 - view.y.0).abs().max(f64::MIN_POSITIVE),
    ];
    pieces
        .into_iter()
        .map(|p| thin(&p, scale).into_iter().map(|q| (q[0], q[1])).collect())
        .collect()
}

/// Drops points closer than [`THIN`] of the view to the last kept one; keeps the ends.
/// Short paths are kept whole: every iterate of the demo's 20 steps gets its dot.
fn thin(points: &[[f64; 2]], scale: [f64; 2]) -> Vec<[f64; 2]> {
    if points.len() <= 500 {
        return points.to_vec();
    }
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(points.len());
    for (i, &p) in points.iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(q) => {
                i + 1 == points.len()
                    || ((p[0] - q[0]) * scale[0]).hypot((p[1] - q[1]) * scale[1]) >= THIN
            }
        };
        if keep {
            out.push(p);
        }
    }
    out
}

/// Loss curves: at most about 2000 points per series, always including the last.
fn thin_steps(points: &[[f64; 2]]) -> Vec<(f64, f64)> {
    let stride = points.len().div_ceil(2000).max(1);
    let mut out: Vec<(f64, f64)> = points
        .iter()
        .step_by(stride)
        .map(|p| (p[0], p[1]))
        .collect();
    if let Some(last) = points.last()
        && !(points.len() - 1).is_multiple_of(stride)
    {
        out.push((last[0], last[1]));
    }
    out
}

/// Where a contour line crosses the grid: the edge from node (i, j) to its right
/// neighbour (`horizontal`) or to the node above.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Edge {
    i: usize,
    j: usize,
    horizontal: bool,
}

/// f on a [`GRID`]² grid over a view, for the contour lines (of `surface.f` over
/// `surface.view` in [`draw_trajectories`]).
struct Grid {
    /// The nodes' x1.
    xs: Vec<f64>,
    /// The nodes' x2.
    ys: Vec<f64>,
    /// f at node (i, j) is `v[j · GRID + i]`.
    v: Vec<f64>,
}

impl Grid {
    /// Evaluates `f` at every node of the grid over `view`.
    fn new(f: &dyn Fn([f64; 2]) -> f64, view: View) -> Grid {
        let n = GRID;
        let xs: Vec<f64> = (0..n)
            .map(|i| view.x.0 + (view.x.1 - view.x.0) * i as f64 / (n - 1) as f64)
            .collect();
        let ys: Vec<f64> = (0..n)
            .map(|j| view.y.0 + (view.y.1 - view.y.0) * j as f64 / (n - 1) as f64)
            .collect();
        let v = (0..n * n).map(|k| f([xs[k % n], ys[k / n]])).collect();
        Grid { xs, ys, v }
    }
}

/// The contour lines `f = level` on `grid`, as polylines (marching squares, segments
/// joined through the grid edges they share).
fn contour(grid: &Grid, level: f64) -> Vec<Vec<(f64, f64)>> {
    let n = GRID;
    let (xs, ys, v) = (&grid.xs, &grid.ys, &grid.v);
    let at = |i: usize, j: usize| v[j * n + i];
    let point = |e: Edge| {
        let (i2, j2) = if e.horizontal {
            (e.i + 1, e.j)
        } else {
            (e.i, e.j + 1)
        };
        let (a, b) = (at(e.i, e.j), at(i2, j2));
        let t = ((level - a) / (b - a)).clamp(0.0, 1.0);
        (
            xs[e.i] + t * (xs[i2] - xs[e.i]),
            ys[e.j] + t * (ys[j2] - ys[e.j]),
        )
    };

    let mut segments: Vec<[Edge; 2]> = Vec::new();
    for j in 0..n - 1 {
        for i in 0..n - 1 {
            let corners = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
            if corners.iter().any(|c| !c.is_finite()) {
                continue;
            }
            let case = corners
                .iter()
                .enumerate()
                .fold(0, |acc, (k, &c)| acc | (usize::from(c >= level) << k));
            let bottom = Edge {
                i,
                j,
                horizontal: true,
            };
            let right = Edge {
                i: i + 1,
                j,
                horizontal: false,
            };
            let top = Edge {
                i,
                j: j + 1,
                horizontal: true,
            };
            let left = Edge {
                i,
                j,
                horizontal: false,
            };
            let centre_high = || corners.iter().sum::<f64>() / 4.0 >= level;
            match case {
                0 | 15 => {}
                1 | 14 => segments.push([left, bottom]),
                2 | 13 => segments.push([bottom, right]),
                3 | 12 => segments.push([left, right]),
                4 | 11 => segments.push([right, top]),
                6 | 9 => segments.push([bottom, top]),
                7 | 8 => segments.push([left, top]),
                // Saddle cells: the centre value decides which corners are connected.
                5 => {
                    if centre_high() {
                        segments.extend([[left, top], [bottom, right]]);
                    } else {
                        segments.extend([[left, bottom], [right, top]]);
                    }
                }
                10 => {
                    if centre_high() {
                        segments.extend([[left, bottom], [right, top]]);
                    } else {
                        segments.extend([[left, top], [bottom, right]]);
                    }
                }
                _ => unreachable!("four corners give cases 0..=15"),
            }
        }
    }

    // Join the segments: an interior edge is shared by the two cells beside it.
    let mut by_edge: HashMap<Edge, Vec<usize>> = HashMap::new();
    for (k, s) in segments.iter().enumerate() {
        for e in s {
            by_edge.entry(*e).or_default().push(k);
        }
    }
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    for first in 0..segments.len() {
        if used[first] {
            continue;
        }
        used[first] = true;
        let mut chain: std::collections::VecDeque<Edge> = segments[first].iter().copied().collect();
        for forward in [true, false] {
            loop {
                let end = if forward {
                    *chain.back().unwrap_or(&segments[first][1])
                } else {
                    *chain.front().unwrap_or(&segments[first][0])
                };
                let next = by_edge
                    .get(&end)
                    .and_then(|ks| ks.iter().copied().find(|&k| !used[k]));
                let Some(k) = next else { break };
                used[k] = true;
                let other = if segments[k][0] == end {
                    segments[k][1]
                } else {
                    segments[k][0]
                };
                if forward {
                    chain.push_back(other);
                } else {
                    chain.push_front(other);
                }
            }
        }
        lines.push(chain.into_iter().map(point).collect());
    }
    lines
}

/// The y range of `curves`, widened by `pad` of its height on each side; a flat range
/// at v becomes v ± max(`flat`, `pad`·|v|) (a fixed ±`flat` would vanish in the rounding
/// of a large v), and no points at all give `empty`. Total for finite values: the ends
/// stay within ±f64::MAX, and a non-empty range comes out with lo < hi when `flat` and
/// `pad` are positive.
fn padded_range(curves: &[Vec<(f64, f64)>], pad: f64, flat: f64, empty: (f64, f64)) -> (f64, f64) {
    let all = || curves.iter().flatten().map(|p| p.1);
    let (lo, hi) = (
        all().fold(f64::INFINITY, f64::min),
        all().fold(f64::NEG_INFINITY, f64::max),
    );
    if lo > hi {
        return empty;
    }
    // The halves' difference cannot overflow where hi − lo would.
    let half_height = hi / 2.0 - lo / 2.0;
    let widen = if half_height > 0.0 {
        half_height * (2.0 * pad)
    } else {
        flat.max(lo.abs().max(hi.abs()) * pad)
    };
    // A height that the pad cannot widen (a subnormal one) stays lo < hi as it was.
    ((lo - widen).max(-f64::MAX), (hi + widen).min(f64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinned_loss_curves_keep_both_ends() {
        for n in [1, 2, 1999, 2000, 2001, 4001, 4002, 10_000] {
            let points: Vec<[f64; 2]> = (0..n).map(|t| [t as f64, 1.0]).collect();
            let thinned = thin_steps(&points);
            assert!(thinned.len() <= 2001, "{n}");
            assert_eq!(thinned[0].0, 0.0);
            assert_eq!(thinned[thinned.len() - 1].0, (n - 1) as f64, "{n}");
            assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0), "{n}");
        }
    }

    const VIEW: View = View {
        x: (-1.0, 1.0),
        y: (-1.0, 1.0),
    };

    #[test]
    fn a_circle_is_one_closed_line() {
        let lines = contour(&Grid::new(&|p| p[0] * p[0] + p[1] * p[1], VIEW), 0.25);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.first(), line.last(), "closed");
        for &(x, y) in line {
            assert!(((x * x + y * y).sqrt() - 0.5).abs() < 1e-3);
        }
    }

    #[test]
    fn clipping_keeps_the_visible_part_of_a_diverging_path() {
        let path = [
            [0.0, 0.0],
            [0.5, 0.5],
            [0.5, 1e300],
            [0.5, -1e300],
            [0.0, f64::NAN],
        ];
        let pieces = clip(&path, VIEW);
        assert_eq!(
            pieces,
            // Out through the top edge and back in at the same point: one line.
            vec![vec![(0.0, 0.0), (0.5, 0.5), (0.5, 1.0), (0.5, -1.0)]]
        );
    }

    #[test]
    fn segments_outside_are_dropped() {
        assert_eq!(clip_segment([2.0, 2.0], [3.0, -3.0], VIEW), None);
        assert_eq!(
            clip_segment([-2.0, 0.0], [2.0, 0.0], VIEW),
            Some(([-1.0, 0.0], [1.0, 0.0]))
        );
        // From a huge endpoint: the crossing is placed from the near one.
        assert_eq!(
            clip_segment([0.0, 0.5], [1e300, 0.5 + 1e300], VIEW),
            Some(([0.0, 0.5], [0.5, 1.0]))
        );
    }

    /// Finite values that stress an axis: zero, the ends of the subnormals and of the
    /// normals, values whose ±0.5 vanishes in rounding, and random bit patterns.
    fn awkward_values() -> Vec<f64> {
        let mut values = vec![
            0.0,
            -0.0,
            5e-324,
            1e-323,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE * 3.0,
            1e-300,
            1e-5,
            0.1,
            1.0,
            1e6,
            5e15,
            1e16,
            1e200,
            1.7e308,
            f64::MAX,
        ];
        for v in values.clone() {
            values.push(-v);
            values.push(f64::from_bits(v.to_bits() + 1));
        }
        values.retain(|v| v.is_finite());
        let mut rng = crate::rng::Rng::new(7, crate::rng::Stream::Noise);
        while values.len() < 400 {
            let v = f64::from_bits(rng.next_u64());
            if v.is_finite() {
                values.push(v);
            }
        }
        values
    }

    /// padded_range, linear_ticks and the axis mapping are total over every pair of
    /// finite values: a range with lo < hi containing both, at most 13 ticks inside it
    /// in increasing order, with distinct labels that read back as their values.
    #[test]
    fn linear_axes_are_total_over_finite_values() {
        let values = awkward_values();
        for (i, &a) in values.iter().enumerate() {
            // Every value flat, against its neighbour, and against a random other.
            for b in [
                a,
                values[(i + 1) % values.len()],
                values[(i * 37 + 11) % values.len()],
            ] {
                for (pad, flat) in [(0.05, 0.5), (0.04, 1.0)] {
                    let curve = vec![vec![(0.0, a), (1.0, b)]];
                    let (lo, hi) = padded_range(&curve, pad, flat, (0.0, 1.0));
                    let case = format!("{a:e}, {b:e} -> {lo:e}..{hi:e}");
                    assert!(lo.is_finite() && hi.is_finite() && lo < hi, "{case}");
                    assert!(lo <= a.min(b) && hi >= a.max(b), "{case}");
                    let ticks = linear_ticks(lo, hi);
                    assert!((1..=13).contains(&ticks.len()), "{case}: {ticks:?}");
                    for (k, (v, label)) in ticks.iter().enumerate() {
                        assert!((lo..=hi).contains(v), "{case}: {ticks:?}");
                        let read: f64 = label.parse().unwrap_or_else(|_| panic!("{case}: {label}"));
                        let spacing = ticks
                            .get(k + 1)
                            .or(ticks.get(k.wrapping_sub(1)))
                            .map_or(0.0, |w| (w.0 - v).abs());
                        assert!((read - v).abs() <= spacing * 1e-6, "{case}: {ticks:?}");
                        assert!(label.len() <= 24, "{case}: {label}");
                    }
                    for w in ticks.windows(2) {
                        assert!(w[0].0 < w[1].0 && w[0].1 != w[1].1, "{case}: {ticks:?}");
                    }
                    let axis = TickAxis {
                        range: (lo, hi),
                        ticks,
                    };
                    assert_eq!(axis.map(&lo, (0, 500)), 0, "{case}");
                    assert!((499..=500).contains(&axis.map(&hi, (0, 500))), "{case}");
                }
            }
        }
    }

    #[test]
    fn large_flat_values_get_round_ticks() {
        // A learning rate of 1e16 throughout: ±0.5 would vanish in its rounding.
        let (lo, hi) = padded_range(&[vec![(0.0, 1e16), (1.0, 1e16)]], 0.05, 0.5, (0.0, 1.0));
        assert_eq!((lo, hi), (9.5e15, 1.05e16));
        let labels: Vec<String> = linear_ticks(lo, hi).into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            ["9.60e15", "9.80e15", "1.00e16", "1.02e16", "1.04e16"]
        );
        // The usual case keeps its plain labels.
        let labels: Vec<String> = linear_ticks(-0.5, 1.0).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["-0.5", "0.0", "0.5", "1.0"]);
        // Subnormal: no round numbers, the ends.
        assert_eq!(
            linear_ticks(5e-324, 1e-323),
            [
                (5e-324, "5e-324".to_string()),
                (1e-323, "1e-323".to_string())
            ]
        );
    }

    #[test]
    fn contour_lines_evaluate_f_once_per_grid_node() {
        // A typed f can cost a thousand operations: not once per level.
        let calls = std::cell::Cell::new(0usize);
        let f = |p: [f64; 2]| {
            calls.set(calls.get() + 1);
            p[0] * p[0] + p[1] * p[1]
        };
        let surface = Surface {
            f: &f,
            levels: &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            levels_label: "f",
            view: VIEW,
            start: [0.5, 0.5],
            minimum: None,
        };
        trajectories_svg("t", &surface, &[], false).unwrap();
        assert_eq!(calls.get(), GRID * GRID);
    }
}
