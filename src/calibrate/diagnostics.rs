//! Diagnostic plots of a calibration: what the subject's data looked like, what changed, and
//! how well each candidate did on the inner folds.

use std::path::{Path, PathBuf};

use super::{CalibrateError, Calibrated, Strategy, SubjectManifest};
use crate::align::{linalg, unaligned_tangent};
use crate::features::FeatureRow;
use crate::plots::{self, Series};
use crate::pretrain::{EncoderManifest, PopulationModel};

fn plot_error(e: plots::PlotError) -> CalibrateError {
    CalibrateError::Refused(e.to_string())
}

/// Writes every plot under `dir` (SVG and PNG each) and returns their paths.
pub fn write_plots(
    dir: &Path,
    population: &PopulationModel,
    encoder: &EncoderManifest,
    calibrated: &Calibrated,
    manifest: &SubjectManifest,
    rows: &[&FeatureRow],
    freqs: &[f64],
) -> Result<Vec<PathBuf>, CalibrateError> {
    std::fs::create_dir_all(dir).map_err(|source| CalibrateError::Io {
        path: dir.to_path_buf(),
        action: "cannot create folder",
        source,
    })?;
    let mut files = Vec::new();
    let curve = Series {
        name: "training cross-entropy".into(),
        points: calibrated
            .fitted
            .curve
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as f64, l))
            .collect(),
    };
    files.extend(
        plots::line_chart(
            &dir.join("learning_curve"),
            &format!("Final fit: {}", calibrated.strategy),
            "optimisation step",
            "cross-entropy",
            &[curve],
        )
        .map_err(plot_error)?,
    );
    let classes = manifest.classes().to_vec();
    let counts: Vec<Vec<f64>> = calibrated
        .confusion
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    files.extend(
        plots::heatmap(
            &dir.join("confusion_inner_cv"),
            "Inner cross-validation (calibration epochs only)",
            &classes,
            &classes,
            &counts,
            "predicted",
            "true",
        )
        .map_err(plot_error)?,
    );
    let bars: Vec<(String, f64)> = calibrated
        .inner_cv
        .iter()
        .map(|s| (short_name(&s.strategy), s.accuracy))
        .collect();
    files.extend(
        plots::bar_chart(
            &dir.join("population_vs_personalized"),
            "Inner-CV accuracy: population model vs personalized candidates",
            "accuracy",
            &bars,
            Some((0.0, 1.0)),
        )
        .map_err(plot_error)?,
    );
    files.extend(spectrum(
        dir,
        encoder,
        rows,
        freqs,
        calibrated.layout.freqs,
    )?);
    files.extend(embedding(dir, calibrated, rows, &classes)?);
    files.extend(super::scalp::write_scalp_maps(
        dir, population, calibrated, &classes, rows, freqs,
    )?);
    Ok(files)
}

fn short_name(s: &Strategy) -> String {
    match s {
        Strategy::Population => "population".into(),
        Strategy::TangentOnly { penalty } => format!("tangent only {penalty}"),
        Strategy::Pooled { subject_weight } => format!("pool x{subject_weight}"),
        Strategy::Head { penalty } => format!("head {penalty}"),
        Strategy::HeadLastBlock { penalty } => format!("last block {penalty}"),
        Strategy::AllLayers { penalty } => format!("all {penalty}"),
        Strategy::Views { .. } => "views".into(),
    }
}

/// Mean log10 PSD over epochs and channels, per frequency bin.
pub fn mean_spectrum(rows: &[&FeatureRow], freqs: usize) -> Vec<f64> {
    let mut sum = vec![0.0; freqs];
    let mut n = 0usize;
    for row in rows {
        for chunk in row.log_psd.chunks(freqs.max(1)) {
            if chunk.len() == freqs {
                for (s, v) in sum.iter_mut().zip(chunk) {
                    *s += v;
                }
                n += 1;
            }
        }
    }
    sum.iter().map(|s| s / n.max(1) as f64).collect()
}

fn spectrum(
    dir: &Path,
    encoder: &EncoderManifest,
    rows: &[&FeatureRow],
    freqs: &[f64],
    n_freqs: usize,
) -> Result<Vec<PathBuf>, CalibrateError> {
    let subject = mean_spectrum(rows, n_freqs);
    let mut series = vec![Series {
        name: "this subject".into(),
        points: freqs.iter().copied().zip(subject).collect(),
    }];
    if !encoder.population_spectrum.is_empty() {
        series.push(Series {
            name: "population (encoder's training subjects)".into(),
            points: encoder
                .spectrum_freqs
                .iter()
                .copied()
                .zip(encoder.population_spectrum.iter().copied())
                .collect(),
        });
    }
    plots::line_chart(
        &dir.join("spectrum"),
        "Mean spectrum over channels and epochs",
        "frequency (Hz)",
        "log10 power",
        &series,
    )
    .map_err(plot_error)
}

/// Two principal axes of the rows of `x` (n x p): (mean, axes) or `None` when degenerate.
fn principal_axes(x: &[Vec<f64>]) -> Option<(Vec<f64>, [Vec<f64>; 2])> {
    let n = x.len();
    let p = x.first()?.len();
    if n < 3 {
        return None;
    }
    let mean: Vec<f64> = (0..p)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let centred: Vec<Vec<f64>> = x
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect();
    let mut gram = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let d: f64 = centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum();
            gram[i * n + j] = d;
            gram[j * n + i] = d;
        }
    }
    let eig = linalg::symmetric_eigen(&gram, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.values[b].total_cmp(&eig.values[a]));
    let axis = |k: usize| -> Option<Vec<f64>> {
        let idx = *order.get(k)?;
        let lambda = eig.values[idx];
        if lambda <= 1e-12 {
            return None;
        }
        let mut v = vec![0.0; p];
        for (i, row) in centred.iter().enumerate() {
            let u = eig.vectors[i * n + idx];
            for (vj, xj) in v.iter_mut().zip(row) {
                *vj += u * xj;
            }
        }
        let norm = lambda.sqrt();
        Some(v.iter().map(|x| x / norm).collect())
    };
    Some((mean, [axis(0)?, axis(1)?]))
}

fn project(point: &[f64], mean: &[f64], axes: &[Vec<f64>; 2]) -> (f64, f64) {
    let dot = |a: &[f64]| -> f64 {
        point
            .iter()
            .zip(mean)
            .zip(a)
            .map(|((x, m), v)| (x - m) * v)
            .sum()
    };
    (dot(&axes[0]), dot(&axes[1]))
}

fn panel(
    name: &str,
    vectors: &[Vec<f64>],
    groups: &[Option<usize>],
    classes: &[String],
) -> (String, Vec<Series>) {
    let mut series: Vec<Series> = classes
        .iter()
        .map(|c| Series {
            name: c.clone(),
            points: Vec::new(),
        })
        .collect();
    series.push(Series {
        name: "unlabelled".into(),
        points: Vec::new(),
    });
    series.push(Series {
        name: "population reference".into(),
        points: Vec::new(),
    });
    if let Some((mean, axes)) = principal_axes(vectors) {
        let unlabeled = classes.len();
        for (v, g) in vectors.iter().zip(groups) {
            let k = g.filter(|&c| c < classes.len()).unwrap_or(unlabeled);
            series[k].points.push(project(v, &mean, &axes));
        }
        let origin = vec![0.0; mean.len()];
        series[unlabeled + 1]
            .points
            .push(project(&origin, &mean, &axes));
    }
    (name.to_string(), series)
}

fn embedding(
    dir: &Path,
    calibrated: &Calibrated,
    rows: &[&FeatureRow],
    classes: &[String],
) -> Result<Vec<PathBuf>, CalibrateError> {
    let c = calibrated.layout.channels;
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut groups = Vec::new();
    for row in rows {
        let (Some(raw), Some(aligned)) = (
            unaligned_tangent(row, c),
            calibrated.alignment.tangent(row)?,
        ) else {
            continue;
        };
        before.push(raw.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        after.push(aligned.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        groups.push(row.label);
    }
    let panels = vec![
        panel("before alignment: logm(C)", &before, &groups, classes),
        panel(
            "after re-centring: logm(R^-1/2 C R^-1/2)",
            &after,
            &groups,
            classes,
        ),
    ];
    plots::scatter_panels(
        &dir.join("embedding_pca"),
        "Tangent-space covariances, first two principal components",
        &panels,
        "PC 1",
        "PC 2",
    )
    .map_err(plot_error)
}
