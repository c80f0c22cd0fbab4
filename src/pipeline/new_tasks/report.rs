//! The new-task benchmark's results: scores per column, per subject and per task, their
//! summaries (means, Wilcoxon tests, optimism), the text table, the JSON and the plots.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use serde::Serialize;

use super::{CLASSICAL, MIN_WILCOXON_SUBJECTS, NEW_HEAD};
use crate::bench::{mean_std, wilcoxon::wilcoxon};
use crate::calibrate::{self, Strategy};
use crate::pipeline::PipelineError;

/// Test scores of one column.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    /// Accuracy.
    pub accuracy: f64,
    /// Mean recall over classes.
    pub balanced_accuracy: f64,
    /// Mean negative log-probability of the true class (probabilities clipped at 1e-15).
    pub log_loss: f64,
}

/// One subject's results on one task.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectRow {
    /// Subject identifier.
    pub subject: String,
    /// Labelled calibration epochs.
    pub n_calibration: usize,
    /// Labelled test epochs.
    pub n_test: usize,
    /// The candidate inner cross-validation chose.
    pub chosen: Strategy,
    /// Inner-CV balanced accuracy of the chosen candidate.
    pub chosen_inner_cv: f64,
    /// Whether the chosen candidate's inner CV was at chance (what `calibrate` warns about).
    pub at_chance: bool,
    /// scikit-learn `C` the classical column chose.
    pub classical_c: f64,
    /// Test scores by column.
    pub columns: BTreeMap<String, Scores>,
}

/// Mean and standard deviation of a column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnSummary {
    /// Subjects scored.
    pub n: usize,
    /// Mean and standard deviation of the balanced accuracy.
    pub balanced_accuracy: (f64, f64),
    /// Mean accuracy.
    pub accuracy: f64,
    /// Mean test log-loss.
    pub log_loss: f64,
    /// Wilcoxon signed-rank p of the new head's balanced accuracy against this column's (`None`
    /// with fewer than 6 subjects or no difference).
    pub wilcoxon_p: Option<f64>,
}

/// One task's results.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// Task name.
    pub task: String,
    /// Classes.
    pub classes: Vec<String>,
    /// Epoch window, seconds from the event (fixed windows: 0 to their length).
    pub window_s: (f64, f64),
    /// Calibration and test, in words.
    pub split: String,
    /// Per subject.
    pub subjects: Vec<SubjectRow>,
    /// Per column.
    pub summary: BTreeMap<String, ColumnSummary>,
    /// Mean over subjects of the chosen candidate's inner-CV balanced accuracy minus its test
    /// balanced accuracy.
    pub selection_optimism: Option<f64>,
    /// Seconds spent on this task's calibrations and scores (pretraining excluded).
    pub seconds: f64,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct NewTasksReport {
    /// What was measured, in words.
    pub description: String,
    /// "test" (runs 8 and 12 scored) or "development" (runs 8 and 12 never read).
    pub protocol: String,
    /// Per task.
    pub tasks: Vec<TaskResult>,
    /// Held-out groups, each with its own encoder.
    pub folds: Vec<Vec<String>>,
    /// Subjects whose left/right runs pretrained some encoder.
    pub pretraining_subjects: Vec<String>,
    /// Seconds spent pretraining encoders (label-gap children included).
    pub pretrain_seconds: f64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Worker threads.
    pub threads: usize,
    /// Crate version.
    pub crate_version: String,
}

/// Accuracy, balanced accuracy and log-loss of probabilities against true classes.
pub fn scores(probabilities: &[Vec<f64>], truth: &[usize], k: usize) -> Scores {
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss = 0.0;
    for (p, &t) in probabilities.iter().zip(truth) {
        let predicted = crate::predict::argmax(p);
        if let Some(cell) = confusion.get_mut(t).and_then(|r| r.get_mut(predicted)) {
            *cell += 1;
        }
        loss -= p.get(t).copied().unwrap_or(0.0).clamp(1e-15, 1.0).ln();
    }
    let n = truth.len().max(1) as f64;
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    Scores {
        accuracy: correct as f64 / n,
        balanced_accuracy: calibrate::balanced_accuracy(&confusion),
        log_loss: loss / n,
    }
}

pub(super) fn summarize(result: &mut TaskResult) {
    let columns: BTreeSet<String> = result
        .subjects
        .iter()
        .flat_map(|s| s.columns.keys().cloned())
        .collect();
    let headline: Vec<f64> = result
        .subjects
        .iter()
        .map(|s| {
            s.columns
                .get(NEW_HEAD)
                .map_or(f64::NAN, |c| c.balanced_accuracy)
        })
        .collect();
    for column in columns {
        let values: Vec<Scores> = result
            .subjects
            .iter()
            .filter_map(|s| s.columns.get(&column).copied())
            .collect();
        let balanced: Vec<f64> = values.iter().map(|v| v.balanced_accuracy).collect();
        let mean =
            |f: fn(&Scores) -> f64| values.iter().map(f).sum::<f64>() / values.len().max(1) as f64;
        let wilcoxon_p = (column != NEW_HEAD
            && values.len() == headline.len()
            && values.len() >= MIN_WILCOXON_SUBJECTS)
            .then(|| wilcoxon(&headline, &balanced))
            .flatten();
        result.summary.insert(
            column,
            ColumnSummary {
                n: values.len(),
                balanced_accuracy: mean_std(&balanced),
                accuracy: mean(|s| s.accuracy),
                log_loss: mean(|s| s.log_loss),
                wilcoxon_p,
            },
        );
    }
    let gaps: Vec<f64> = result
        .subjects
        .iter()
        .filter_map(|s| Some(s.chosen_inner_cv - s.columns.get(NEW_HEAD)?.balanced_accuracy))
        .filter(|g| g.is_finite())
        .collect();
    result.selection_optimism = (!gaps.is_empty()).then(|| mean_std(&gaps).0);
}

impl NewTasksReport {
    /// The results as text: per task, one line per subject with each column's balanced
    /// accuracy, the means, test accuracy and log-loss, Wilcoxon p, optimism and times.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{}\n", self.description);
        for t in &self.tasks {
            let columns: Vec<&String> = t.summary.keys().collect();
            let _ = writeln!(
                out,
                "\n{} ({}; window {}-{} s; {}), balanced accuracy",
                t.task,
                t.classes.join(" / "),
                t.window_s.0,
                t.window_s.1,
                t.split
            );
            let _ = write!(out, "{:<8} {:>4} {:>4}", "subject", "cal", "test");
            for c in &columns {
                let _ = write!(out, " | {c}");
            }
            out.push_str(" | chosen\n");
            for s in &t.subjects {
                let _ = write!(
                    out,
                    "{:<8} {:>4} {:>4}",
                    s.subject, s.n_calibration, s.n_test
                );
                for c in &columns {
                    let v = s.columns.get(*c).map_or(f64::NAN, |v| v.balanced_accuracy);
                    let _ = write!(out, " | {v:.3}");
                }
                let _ = writeln!(
                    out,
                    " | {}{}",
                    s.chosen,
                    if s.at_chance {
                        " (inner CV at chance)"
                    } else {
                        ""
                    }
                );
            }
            for (label, pick) in [
                ("mean bal. acc.", 0usize),
                ("std", 1),
                ("mean accuracy", 2),
                ("mean log-loss", 3),
                ("Wilcoxon p", 4),
            ] {
                let _ = write!(out, "{label:<18}");
                for c in &columns {
                    let s = &t.summary[*c];
                    let text = match pick {
                        0 => format!("{:.3}", s.balanced_accuracy.0),
                        1 => format!("{:.3}", s.balanced_accuracy.1),
                        2 => format!("{:.3}", s.accuracy),
                        3 => format!("{:.3}", s.log_loss),
                        _ => s.wilcoxon_p.map_or("-".into(), |p| format!("{p:.4}")),
                    };
                    let _ = write!(out, " | {text}");
                }
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "{} subject(s); selection optimism {}; {:.0} s",
                t.subjects.len(),
                t.selection_optimism
                    .map_or("-".into(), |o| format!("{o:+.3}")),
                t.seconds
            );
        }
        let _ = writeln!(
            out,
            "\n{} fold(s), {} thread(s); pretraining {:.0} s; wall time {:.0} s ({:.1} min)",
            self.folds.len(),
            self.threads,
            self.pretrain_seconds,
            self.seconds,
            self.seconds / 60.0
        );
        out
    }
}

pub(super) fn write_outputs(
    report: &NewTasksReport,
    out: &std::path::Path,
) -> Result<(), PipelineError> {
    let path = out.join("bench_new_tasks.json");
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| PipelineError::Refused(format!("cannot encode the result: {e}")))?;
    crate::atomic::write_atomically(&path, |f| f.write_all(&json), |_, e| e)
        .map_err(|e| PipelineError::io(&path, "cannot write", e))?;
    for t in &report.tasks {
        let points: Vec<(f64, f64)> = t
            .subjects
            .iter()
            .filter_map(|s| {
                Some((
                    s.columns.get(CLASSICAL)?.balanced_accuracy,
                    s.columns.get(NEW_HEAD)?.balanced_accuracy,
                ))
            })
            .collect();
        crate::plots::paired_scatter(
            &out.join(format!("{}_new_head_vs_classical", t.task)),
            &format!(
                "{}: one point per subject; above the line, the new head scored higher",
                t.task
            ),
            "classical subject-only balanced accuracy",
            "new head balanced accuracy",
            &points,
        )?;
    }
    Ok(())
}
