//! Bar charts, scatter panels and heatmaps, written like [`super::line_chart`].

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{bounds, error, register_font, series_colour, write_plot, PlotError, Series, SIZE};

/// Light grey used for cell borders.
const GRID: RGBColor = RGBColor(200, 200, 200);
/// The darkest heatmap colour (the maximum value).
const DARK_BLUE: (u8, u8, u8) = (8, 81, 156);

/// `v` with no decimals when it is an integer, otherwise with `decimals` decimals.
fn format_value(v: f64, decimals: usize) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        // `+ 0.0` turns -0 into 0.
        format!("{:.0}", v + 0.0)
    } else {
        format!("{v:.decimals$}")
    }
}

/// The end of the `i`-th of `n` segments of a segmented axis over `0..=n-1`.
fn segment_end(i: usize, n: usize) -> SegmentValue<usize> {
    if i + 1 < n {
        SegmentValue::Exact(i + 1)
    } else {
        SegmentValue::Last
    }
}

/// The label of a segment centre, empty for every other key point.
fn segment_label(v: &SegmentValue<usize>, label: impl Fn(usize) -> Option<String>) -> String {
    match v {
        SegmentValue::CenterOf(i) => label(*i).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Pixels for a label area holding `labels` in a 14-pixel font plus an axis description.
fn label_area(labels: &[String]) -> u32 {
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    u32::try_from(chars * 8 + 34)
        .unwrap_or(u32::MAX)
        .clamp(50, 220)
}

/// Draws one vertical bar per `(label, value)` to `<stem>.svg` and `<stem>.png` and returns both
/// paths.
///
/// The labels go along the x axis and each finite value is printed above its bar: integers
/// without decimals, others with three decimals below one and two from one up. Non-finite values
/// leave their slot empty. The y axis spans `y_range` when given (for example `(0.0, 1.0)` for
/// accuracies), otherwise zero to 110% of the largest value (and down to 110% of the smallest
/// when some are negative); bars outside a fixed range are cut at its edge.
///
/// # Errors
///
/// [`PlotError::Draw`] if `y_range` is not finite and increasing, or drawing or writing fails.
pub fn bar_chart(
    stem: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    y_range: Option<(f64, f64)>,
) -> Result<Vec<PathBuf>, PlotError> {
    let range = bar_range(bars, y_range).map_err(|e| error(&stem.with_extension("svg"), e))?;
    write_svg_png!(stem, root => draw_bars(root, title, y_label, bars, range))
}

/// The y range of a bar chart: `fixed` when valid, otherwise one that holds zero and every
/// finite value with 10% head room.
fn bar_range(bars: &[(String, f64)], fixed: Option<(f64, f64)>) -> Result<(f64, f64), String> {
    if let Some((lo, hi)) = fixed {
        return if lo.is_finite() && hi.is_finite() && lo < hi {
            Ok((lo, hi))
        } else {
            Err(format!("invalid y range {lo}..{hi}"))
        };
    }
    let (lo, hi) = bars
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let grow = |v: f64| if (v * 1.1).is_finite() { v * 1.1 } else { v };
    Ok(if hi > lo {
        (grow(lo), grow(hi))
    } else {
        (0.0, 1.0)
    })
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    (y0, y1): (f64, f64),
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..n - 1).into_segmented(), y0..y1)
        .map_err(|e| e.to_string())?;
    let x_format =
        |v: &SegmentValue<usize>| segment_label(v, |i| bars.get(i).map(|(l, _)| l.clone()));
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&x_format)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;

    let base = 0.0_f64.clamp(y0, y1);
    let finite = || {
        bars.iter()
            .enumerate()
            .filter(|(_, (_, v))| v.is_finite())
            .map(|(i, (_, v))| (i, *v))
    };
    let gap = u32::try_from(60 / n).unwrap_or(0).clamp(2, 20);
    chart
        .draw_series(finite().map(|(i, v)| {
            let color = series_colour(i);
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), base),
                    (segment_end(i, n), v.clamp(y0, y1)),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, gap, gap);
            bar
        }))
        .map_err(|e| e.to_string())?;
    let font = ("sans-serif", 14).into_font();
    chart
        .draw_series(finite().map(|(i, v)| {
            let top = v.clamp(y0, y1);
            let (anchor, color) = if v < base {
                // Below a downward bar.
                (VPos::Top, BLACK)
            } else if (top - y0) / (y1 - y0) > 0.93 {
                // Inside a bar that reaches the top of the chart.
                (VPos::Top, WHITE)
            } else {
                (VPos::Bottom, BLACK)
            };
            let style = font.color(&color).pos(Pos::new(HPos::Center, anchor));
            let decimals = if v.abs() < 1.0 { 3 } else { 2 };
            Text::new(
                format_value(v, decimals),
                (SegmentValue::CenterOf(i), top),
                style,
            )
        }))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Draws each group of points as filled circles of its own colour, with a legend, to
/// `<stem>.svg` and `<stem>.png` and returns both paths.
///
/// A single-panel [`scatter_panels`]; non-finite points are skipped.
///
/// # Errors
///
/// [`PlotError::Draw`] if drawing or writing fails.
pub fn scatter_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[Series],
) -> Result<Vec<PathBuf>, PlotError> {
    write_svg_png!(stem, root => draw_panels(root, title, &[("", groups)], x_label, y_label))
}

/// Draws scatter panels side by side under one `title`, to `<stem>.svg` and `<stem>.png`, and
/// returns both paths.
///
/// Each entry of `panels` is a panel title and its groups of points; every panel has its own
/// axis ranges and legend, and the i-th group has the same colour in every panel. Non-finite
/// points are skipped.
///
/// # Errors
///
/// [`PlotError::Draw`] if `panels` is empty, or drawing or writing fails.
pub fn scatter_panels(
    stem: &Path,
    title: &str,
    panels: &[(String, Vec<Series>)],
    x_label: &str,
    y_label: &str,
) -> Result<Vec<PathBuf>, PlotError> {
    if panels.is_empty() {
        return Err(error(&stem.with_extension("svg"), "no panels to draw"));
    }
    let panels: Vec<(&str, &[Series])> = panels
        .iter()
        .map(|(name, groups)| (name.as_str(), groups.as_slice()))
        .collect();
    write_svg_png!(stem, root => draw_panels(root, title, &panels, x_label, y_label))
}

/// Draws paired scores of two methods (one point per pair, both axes 0 to 1) with the line
/// `y = x`, to `<stem>.svg` and `<stem>.png`, and returns both paths. Points above the line are
/// pairs where the y method scored higher.
///
/// # Errors
///
/// [`PlotError::Draw`] if drawing or writing fails.
pub fn paired_scatter(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> Result<Vec<PathBuf>, PlotError> {
    write_svg_png!(stem, root => draw_paired(root, title, x_label, y_label, points))
}

fn draw_paired<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.02..1.02, -0.02..1.02)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            GRID.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    // Dark blue on white: readable for every colour vision.
    let color = RGBColor(DARK_BLUE.0, DARK_BLUE.1, DARK_BLUE.2);
    chart
        .draw_series(
            points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|p| Circle::new(p, 5, color.filled())),
        )
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[(&str, &[Series])],
    x_label: &str,
    y_label: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    for (area, &(name, groups)) in areas.iter().zip(panels) {
        // `bounds` pads only the upper ends; pad the lower ends too so no circle sits on an axis.
        let widen = |(lo, hi): (f64, f64)| (lo - (hi - lo) * 0.05, hi);
        let (xs, ys) = bounds(groups);
        let ((x0, x1), (y0, y1)) = (widen(xs), widen(ys));
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        if !name.is_empty() {
            builder.caption(name, ("sans-serif", 18));
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in groups.iter().enumerate() {
            let color = series_colour(i);
            let points = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(points.map(|p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
        }
        if groups.iter().any(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws a confusion-matrix style grid to `<stem>.svg` and `<stem>.png` and returns both paths.
///
/// `values[r][c]` is the cell of row `row_labels[r]` (rows top to bottom, labels down the left)
/// and column `col_labels[c]` (labels along the bottom). Cells shade from white to blue by value
/// relative to the largest finite value, and show the value: integers without decimals, others
/// with two. Non-finite cells are left blank.
///
/// # Errors
///
/// [`PlotError::Draw`] if there are no rows or no columns, the number of rows differs from
/// `row_labels`, a row's length differs from `col_labels`, or drawing or writing fails.
pub fn heatmap(
    stem: &Path,
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
    x_label: &str,
    y_label: &str,
) -> Result<Vec<PathBuf>, PlotError> {
    let invalid = |reason: String| Err(error(&stem.with_extension("svg"), reason));
    if row_labels.is_empty() || col_labels.is_empty() {
        return invalid(format!(
            "heatmap needs rows and columns, got {} row and {} column labels",
            row_labels.len(),
            col_labels.len()
        ));
    }
    if values.len() != row_labels.len() {
        return invalid(format!(
            "{} rows of values for {} row labels",
            values.len(),
            row_labels.len()
        ));
    }
    if let Some((r, row)) = values
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != col_labels.len())
    {
        return invalid(format!(
            "row {r} has {} values for {} column labels",
            row.len(),
            col_labels.len()
        ));
    }
    write_svg_png!(stem, root => draw_heatmap(
        root, title, row_labels, col_labels, values, x_label, y_label
    ))
}

/// White blended towards [`DARK_BLUE`] by `t` in `0..=1`.
fn blue(t: f64) -> RGBColor {
    let mix = |dark: u8| {
        let v = 255.0 - (255.0 - f64::from(dark)) * t.clamp(0.0, 1.0);
        // In 0..=255 by construction.
        v.round() as u8
    };
    RGBColor(mix(DARK_BLUE.0), mix(DARK_BLUE.1), mix(DARK_BLUE.2))
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
    x_label: &str,
    y_label: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (rows, cols) = (row_labels.len().max(1), col_labels.len().max(1));
    let max = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let shade = |v: f64| if max > 0.0 { v / max } else { 0.0 };
    // Row 0 is drawn at the top, i.e. at y segment `rows - 1`.
    let y_of = |r: usize| rows - 1 - r;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(label_area(row_labels))
        .build_cartesian_2d(
            (0..cols - 1).into_segmented(),
            (0..rows - 1).into_segmented(),
        )
        .map_err(|e| e.to_string())?;
    let x_format = |v: &SegmentValue<usize>| segment_label(v, |c| col_labels.get(c).cloned());
    let y_format = |v: &SegmentValue<usize>| {
        segment_label(v, |y| {
            rows.checked_sub(y + 1)
                .and_then(|r| row_labels.get(r))
                .cloned()
        })
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;

    let cells = || {
        values.iter().enumerate().flat_map(move |(r, row)| {
            row.iter().enumerate().map(move |(c, &v)| {
                let corners = [
                    (SegmentValue::Exact(c), SegmentValue::Exact(y_of(r))),
                    (segment_end(c, cols), segment_end(y_of(r), rows)),
                ];
                (r, c, v, corners)
            })
        })
    };
    chart
        .draw_series(cells().map(|(_, _, v, corners)| {
            let fill = if v.is_finite() { blue(shade(v)) } else { WHITE };
            Rectangle::new(corners, fill.filled())
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            cells().map(|(_, _, _, corners)| Rectangle::new(corners, GRID.stroke_width(1))),
        )
        .map_err(|e| e.to_string())?;
    let font = ("sans-serif", 14).into_font();
    chart
        .draw_series(
            cells()
                .filter(|(_, _, v, _)| v.is_finite())
                .map(|(r, c, v, _)| {
                    let color = if shade(v) > 0.5 { WHITE } else { BLACK };
                    let style = font.color(&color).pos(Pos::new(HPos::Center, VPos::Center));
                    let at = (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y_of(r)));
                    Text::new(format_value(v, 2), at, style)
                }),
        )
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, so that tests running in parallel do not collide.
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eegadapt-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks the two files of a chart and that the SVG contains every one of `texts`.
    fn check_files(files: &[PathBuf], texts: &[&str]) {
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].extension().unwrap(), "svg");
        assert_eq!(files[1].extension().unwrap(), "png");
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        for text in texts {
            assert!(svg.contains(text), "{text:?} missing from the SVG");
        }
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn bar_chart_writes_svg_and_png_with_labels_and_values() {
        let dir = test_dir("bars");
        let bars = vec![
            ("subject-1".to_string(), 0.5),
            ("subject-2".to_string(), 0.875),
            ("subject-3".to_string(), f64::NAN),
            ("subject-4".to_string(), 1.0),
        ];
        let files = bar_chart(
            &dir.join("acc"),
            "Accuracy",
            "accuracy",
            &bars,
            Some((0.0, 1.0)),
        )
        .unwrap();
        check_files(
            &files,
            &["Accuracy", "subject-2", "subject-3", "0.875", "0.500"],
        );
        // Automatic range, negative values and an empty chart draw too.
        let bars = vec![("a".to_string(), -2.0), ("b".to_string(), 3.0)];
        let files = bar_chart(&dir.join("auto"), "Auto", "v", &bars, None).unwrap();
        check_files(&files, &["Auto", "-2", "3"]);
        let files = bar_chart(&dir.join("empty"), "Empty", "v", &[], None).unwrap();
        check_files(&files, &["Empty"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bar_chart_rejects_an_invalid_range() {
        let dir = test_dir("bars-range");
        let bars = vec![("a".to_string(), 1.0)];
        for range in [(1.0, 1.0), (0.0, f64::NAN)] {
            let err = bar_chart(&dir.join("bad"), "Bad", "v", &bars, Some(range));
            assert!(matches!(err, Err(PlotError::Draw { .. })));
        }
        assert!(!dir.join("bad.svg").exists() && !dir.join("bad.png").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scatter_chart_and_panels_write_svg_and_png_with_legends() {
        let dir = test_dir("scatter");
        let groups = vec![
            series("left", &[(0.0, 1.0), (1.0, 2.0), (f64::INFINITY, 0.0)]),
            series("right", &[(2.0, -1.0), (3.0, f64::NAN)]),
        ];
        let files =
            scatter_chart(&dir.join("one"), "Embedding", "dim 1", "dim 2", &groups).unwrap();
        check_files(&files, &["Embedding", "left", "right", "dim 1"]);
        let panels = vec![
            ("before alignment".to_string(), groups.clone()),
            ("after alignment".to_string(), groups),
        ];
        let files =
            scatter_panels(&dir.join("two"), "Alignment", &panels, "dim 1", "dim 2").unwrap();
        check_files(
            &files,
            &["Alignment", "before alignment", "after alignment", "left"],
        );
        let err = scatter_panels(&dir.join("none"), "None", &[], "x", "y");
        assert!(matches!(err, Err(PlotError::Draw { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn heatmap_writes_svg_and_png_with_labels_and_values() {
        let dir = test_dir("heatmap");
        let labels = vec!["left hand".to_string(), "right hand".to_string()];
        let values = vec![vec![12.0, 3.0], vec![0.25, f64::NAN]];
        let files = heatmap(
            &dir.join("confusion"),
            "Confusion",
            &labels,
            &labels,
            &values,
            "predicted",
            "true",
        )
        .unwrap();
        check_files(
            &files,
            &[
                "Confusion",
                "left hand",
                "right hand",
                "predicted",
                "\n12\n",
                "\n3\n",
                "0.25",
            ],
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn heatmap_rejects_ragged_or_mismatched_input() {
        let dir = test_dir("heatmap-ragged");
        let labels = vec!["a".to_string(), "b".to_string()];
        let ragged = vec![vec![1.0, 2.0], vec![3.0]];
        let short = vec![vec![1.0, 2.0]];
        for values in [&ragged, &short] {
            let err = heatmap(&dir.join("bad"), "Bad", &labels, &labels, values, "x", "y");
            assert!(matches!(err, Err(PlotError::Draw { .. })));
        }
        let err = heatmap(&dir.join("bad"), "Bad", &[], &[], &[], "x", "y");
        assert!(matches!(err, Err(PlotError::Draw { .. })));
        assert!(!dir.join("bad.svg").exists() && !dir.join("bad.png").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_are_formatted_as_integers_or_with_decimals() {
        assert_eq!(format_value(12.0, 2), "12");
        assert_eq!(format_value(-0.0, 2), "0");
        assert_eq!(format_value(0.256, 2), "0.26");
        assert_eq!(format_value(0.5, 3), "0.500");
    }
}
