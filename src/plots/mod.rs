//! Diagnostic plots (plotters), each written as SVG and PNG, with an embedded font so that they
//! render identically on machines without system font libraries.
//!
//! Every chart is 800x500 and is written to `<stem>.svg` and `<stem>.png` through a temporary
//! file that is renamed into place, so a reader never sees a half-written plot.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Pixel size of every chart.
const SIZE: (u32, u32) = (800, 500);

/// Writes `<$stem>.svg` and `<$stem>.png`, evaluating `$body` (a `Result<(), String>`) once per
/// backend with `$root` bound to that backend's drawing area; evaluates to
/// `Ok(vec![svg, png])` from the enclosing function.
macro_rules! write_svg_png {
    ($stem:expr, $root:ident => $body:expr) => {{
        register_font();
        let svg = $stem.with_extension("svg");
        let png = $stem.with_extension("png");
        write_plot(&svg, |p| {
            let $root = SVGBackend::new(p, SIZE).into_drawing_area();
            $body
        })?;
        write_plot(&png, |p| {
            let $root = BitMapBackend::new(p, SIZE).into_drawing_area();
            $body
        })?;
        Ok(vec![svg, png])
    }};
}

mod charts;
mod topomap;

pub use charts::{bar_chart, heatmap, paired_scatter, scatter_chart, scatter_panels};
pub use topomap::{scalp_maps, ScalpPanel};

/// Why a plot cannot be drawn or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Drawing or encoding failed.
    #[error("{}: cannot draw plot: {reason}", path.display())]
    Draw {
        /// The target file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One named line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points (x, y); non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// The Okabe-Ito palette (Okabe & Ito 2008), told apart with every common colour-vision
/// deficiency; black last, since axes and text are black.
const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// The colour of the `i`-th series or bar.
fn series_colour(i: usize) -> RGBAColor {
    OKABE_ITO[i % OKABE_ITO.len()].to_rgba()
}

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in and known to parse; a failure would only lose the text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn error(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn bounds(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in finite {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = |lo: f64, hi: f64| {
        if hi > lo {
            (lo, hi + (hi - lo) * 0.05)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    };
    (pad(x0, x1), pad(y0, y1))
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ((x0, x1), (y0, y1)) = bounds(series);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = series_colour(i);
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A temporary sibling that keeps the extension (plotters picks the image format from it).
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp.{ext}", std::process::id()))
}

/// Draws with `render` into a temporary file, then renames it into place.
fn write_plot(
    path: &Path,
    render: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), PlotError> {
    let tmp = temporary(path);
    let result = render(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| error(path, e))
}

/// Draws a line chart to `<stem>.svg` and `<stem>.png` and returns both paths.
pub fn line_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<Vec<PathBuf>, PlotError> {
    write_svg_png!(stem, root => draw(root, title, x_label, y_label, series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png_with_text() {
        let dir = std::env::temp_dir().join(format!("eegadapt-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series = vec![Series {
            name: "train".into(),
            points: (0..10)
                .map(|i| (f64::from(i), 1.0 / (1.0 + f64::from(i))))
                .collect(),
        }];
        let files = line_chart(&dir.join("loss"), "Loss", "epoch", "loss", &series).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("Loss") && svg.contains("train"));
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
