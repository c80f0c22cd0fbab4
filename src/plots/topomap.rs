//! Topographic scalp maps: per-electrode values interpolated over a head seen from above.
//!
//! Electrodes are placed by the standard 10-05 montage ([`crate::montage`]) with an azimuthal
//! equidistant projection about the vertex, as MNE-Python's `plot_topomap` does: the distance from
//! the centre is the electrode's angle from Cz, so the circle through Fpz, T7, T8 and Oz (90°) is
//! the head outline. Values are interpolated by inverse-distance weighting (power 2) inside the
//! outline (or out to the farthest electrode), on a diverging blue-white-red scale (ColorBrewer
//! RdBu, colour-blind safe) symmetric about zero.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{register_font, write_plot, PlotError, SIZE};
use crate::montage;

/// ColorBrewer RdBu (11 classes), from the most negative (blue) to the most positive (red).
const RDBU: [(u8, u8, u8); 11] = [
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
];
/// Interpolation cells across the head's diameter.
const GRID: usize = 40;

/// One map: a title, the value's unit, and one value per channel label.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalpPanel {
    /// Title above the head.
    pub title: String,
    /// Unit or meaning of the colour scale (below it).
    pub unit: String,
    /// `(channel label, value)`; labels without a standard position and non-finite values are
    /// left out.
    pub values: Vec<(String, f64)>,
}

/// The head's centre: the mean of Fpz, Oz, T7 and T8, the electrodes on the outline (the
/// montage's origin sits about 2 cm in front of it).
fn centre() -> [f64; 3] {
    let mut sum = [0.0; 3];
    for name in ["Fpz", "Oz", "T7", "T8"] {
        if let Some(p) = montage::position(name) {
            for (s, v) in sum.iter_mut().zip(p) {
                *s += v / 4.0;
            }
        }
    }
    sum
}

/// A point on the projected head: `(x, y)` with the outline at radius 1, nose towards +y.
fn project(xyz: [f64; 3]) -> Option<(f64, f64)> {
    let c = centre();
    let [x, y, z] = [xyz[0] - c[0], xyz[1] - c[1], xyz[2] - c[2]];
    let r = (x * x + y * y + z * z).sqrt();
    if r <= 0.0 {
        return None;
    }
    let polar = (z / r).clamp(-1.0, 1.0).acos() / std::f64::consts::FRAC_PI_2;
    let azimuth = y.atan2(x);
    Some((polar * azimuth.cos(), polar * azimuth.sin()))
}

/// The projected electrodes of a panel: `(standard name, x, y, value)`.
pub fn placed(panel: &ScalpPanel) -> Vec<(&'static str, f64, f64, f64)> {
    panel
        .values
        .iter()
        .filter(|(_, v)| v.is_finite())
        .filter_map(|(label, v)| {
            let name = crate::edf::labels::electrode_name(label)?;
            let (x, y) = project(montage::position(name)?)?;
            Some((name, x, y, *v))
        })
        .collect()
}

/// Inverse-distance-weighted value at `(x, y)`.
fn interpolate(points: &[(&str, f64, f64, f64)], x: f64, y: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(_, px, py, v) in points {
        let d2 = (px - x).powi(2) + (py - y).powi(2);
        if d2 < 1e-12 {
            return v;
        }
        let w = 1.0 / d2;
        num += w * v;
        den += w;
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// The RdBu colour of `t` in `-1..=1`.
fn diverging(t: f64) -> RGBColor {
    let s = (t.clamp(-1.0, 1.0) + 1.0) / 2.0 * (RDBU.len() - 1) as f64;
    let i = (s.floor() as usize).min(RDBU.len() - 2);
    let f = s - i as f64;
    let (a, b) = (RDBU[i], RDBU[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A compact label for a colour-bar end.
fn tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &ScalpPanel,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let centred = Pos::new(HPos::Center, VPos::Top);
    area.draw(&Text::new(
        panel.title.clone(),
        ((w / 2.0) as i32, 8),
        ("sans-serif", 15).into_font().color(&BLACK).pos(centred),
    ))
    .map_err(e)?;
    let points = placed(panel);
    let reach = points
        .iter()
        .map(|&(_, x, y, _)| (x * x + y * y).sqrt())
        .fold(1.12_f64, f64::max);
    let radius_px = ((w / 2.0 - 8.0).min((h - 110.0) / 2.0) / reach).max(10.0);
    let (cx, cy) = (w / 2.0, 30.0 + reach * radius_px);
    let to_px = |x: f64, y: f64| ((cx + x * radius_px) as i32, (cy - y * radius_px) as i32);
    let scale = points
        .iter()
        .map(|&(_, _, _, v)| v.abs())
        .fold(0.0_f64, f64::max);
    if points.is_empty() {
        area.draw(&Text::new(
            "no channel with a standard position",
            ((w / 2.0) as i32, cy as i32),
            ("sans-serif", 13).into_font().color(&BLACK).pos(centred),
        ))
        .map_err(e)?;
        return Ok(());
    }
    // Interpolated cells, out to the farthest electrode.
    let cell = 2.0 * reach / GRID as f64;
    for i in 0..GRID {
        for j in 0..GRID {
            let x = -reach + (i as f64 + 0.5) * cell;
            let y = -reach + (j as f64 + 0.5) * cell;
            if x * x + y * y > reach * reach {
                continue;
            }
            let v = interpolate(&points, x, y);
            let t = if scale > 0.0 { v / scale } else { 0.0 };
            let (x0, y0) = to_px(x - cell / 2.0, y + cell / 2.0);
            let (x1, y1) = to_px(x + cell / 2.0, y - cell / 2.0);
            area.draw(&Rectangle::new(
                [(x0, y0), (x1 + 1, y1 + 1)],
                diverging(t).filled(),
            ))
            .map_err(e)?;
        }
    }
    // Head outline, nose and ears.
    let outline: Vec<(i32, i32)> = (0..=72)
        .map(|k| {
            let a = f64::from(k) / 72.0 * std::f64::consts::TAU;
            to_px(a.cos(), a.sin())
        })
        .collect();
    area.draw(&PathElement::new(outline, BLACK.stroke_width(2)))
        .map_err(e)?;
    let nose = vec![to_px(-0.12, 0.99), to_px(0.0, 1.12), to_px(0.12, 0.99)];
    area.draw(&PathElement::new(nose, BLACK.stroke_width(2)))
        .map_err(e)?;
    for side in [-1.0, 1.0] {
        let ear: Vec<(i32, i32)> = [(1.0, 0.12), (1.06, 0.1), (1.07, -0.1), (1.0, -0.14)]
            .iter()
            .map(|&(x, y)| to_px(side * x, y))
            .collect();
        area.draw(&PathElement::new(ear, BLACK.stroke_width(2)))
            .map_err(e)?;
    }
    // Electrodes; the 10-20 ones are named, in white where the map under them is dark.
    for &(name, x, y, v) in &points {
        let ink = if scale > 0.0 && (v / scale).abs() > 0.6 {
            WHITE
        } else {
            BLACK
        };
        area.draw(&Circle::new(to_px(x, y), 2, ink.filled()))
            .map_err(e)?;
        if montage::TEN_TWENTY_19.contains(&name) {
            let (px, py) = to_px(x, y);
            area.draw(&Text::new(
                name,
                (px, py + 3),
                ("sans-serif", 10)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(e)?;
        }
    }
    // Colour bar, symmetric about zero.
    let (bar_left, bar_right) = (w * 0.15, w * 0.85);
    let bar_top = cy + radius_px * reach + 12.0;
    let steps = 60;
    for k in 0..steps {
        let t = -1.0 + 2.0 * (f64::from(k) + 0.5) / f64::from(steps);
        let x0 = bar_left + (bar_right - bar_left) * f64::from(k) / f64::from(steps);
        let x1 = bar_left + (bar_right - bar_left) * f64::from(k + 1) / f64::from(steps);
        area.draw(&Rectangle::new(
            [
                (x0 as i32, bar_top as i32),
                (x1 as i32 + 1, bar_top as i32 + 12),
            ],
            diverging(t).filled(),
        ))
        .map_err(e)?;
    }
    let label_y = bar_top as i32 + 16;
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    for (x, v) in [(bar_left, -scale), (w / 2.0, 0.0), (bar_right, scale)] {
        area.draw(&Text::new(
            tick(v),
            (x as i32, label_y),
            font.clone().pos(centred),
        ))
        .map_err(e)?;
    }
    area.draw(&Text::new(
        panel.unit.clone(),
        ((w / 2.0) as i32, label_y + 16),
        font.pos(centred),
    ))
    .map_err(e)?;
    Ok(())
}

fn draw_maps<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[ScalpPanel],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws one scalp map per panel, side by side, to `<stem>.svg` and `<stem>.png` and returns
/// both paths.
///
/// # Errors
///
/// [`PlotError::Draw`] if drawing or writing fails.
pub fn scalp_maps(
    stem: &Path,
    title: &str,
    panels: &[ScalpPanel],
) -> Result<Vec<PathBuf>, PlotError> {
    write_svg_png!(stem, root => draw_maps(root, title, panels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertex_is_the_centre_and_the_outline_passes_through_the_ears_and_nasion_line() {
        let (x, y) = project(montage::position("Cz").unwrap()).unwrap();
        assert!(x.abs() < 0.05 && y.abs() < 0.05, "Cz at ({x}, {y})");
        let (x, y) = project(montage::position("Fpz").unwrap()).unwrap();
        assert!(
            x.abs() < 0.05 && (0.9..1.1).contains(&y),
            "Fpz at ({x}, {y})"
        );
        let (x, _) = project(montage::position("T7").unwrap()).unwrap();
        assert!((-1.1..-0.85).contains(&x), "T7 at x = {x}");
        let (x, _) = project(montage::position("C4").unwrap()).unwrap();
        assert!((0.3..0.7).contains(&x), "C4 at x = {x}");
    }

    #[test]
    fn interpolation_passes_through_the_electrodes_and_stays_in_their_range() {
        let panel = ScalpPanel {
            title: "t".into(),
            unit: "u".into(),
            values: vec![
                ("C3..".into(), -2.0),
                ("Cz..".into(), 0.5),
                ("C4..".into(), 3.0),
                ("ECG".into(), 9.0),
                ("Pz".into(), f64::NAN),
            ],
        };
        let points = placed(&panel);
        assert_eq!(points.len(), 3, "ECG has no position, NaN is left out");
        for &(_, x, y, v) in &points {
            assert!((interpolate(&points, x, y) - v).abs() < 1e-9);
        }
        let mid = interpolate(&points, 0.2, 0.3);
        assert!((-2.0..=3.0).contains(&mid));
    }

    #[test]
    fn the_scale_runs_blue_through_white_to_red() {
        assert_eq!(diverging(-1.0), RGBColor(5, 48, 97));
        assert_eq!(diverging(0.0), RGBColor(247, 247, 247));
        assert_eq!(diverging(1.0), RGBColor(103, 0, 31));
    }

    #[test]
    fn writes_svg_and_png_naming_the_ten_twenty_electrodes() {
        let dir = tempfile_dir();
        let values = ["C3", "C4", "Cz", "FC1", "CP2"]
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_string(), i as f64 - 2.0))
            .collect();
        let panel = ScalpPanel {
            title: "mu".into(),
            unit: "dB".into(),
            values,
        };
        let files = scalp_maps(&dir.join("maps"), "Scalp", &[panel.clone(), panel]).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        let text = svg.replace('\n', "");
        assert!(text.contains(">C3<") && text.contains(">Cz<") && !text.contains(">FC1<"));
        assert!(svg.contains("Scalp") && svg.contains("dB"));
        assert_eq!(&std::fs::read(&files[1]).unwrap()[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eegadapt-topo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
