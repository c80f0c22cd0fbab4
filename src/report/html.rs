//! The report page: plain HTML with inline SVG and a little CSS, no script.

use std::fmt::Write as _;

use super::stats::{binomial_above_chance, wilson_interval};
use super::{HeldOut, Plot, ReportOptions};
use crate::calibrate::{Strategy, SubjectManifest};
use crate::features::SourceFile;
use crate::predict::Scores;

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;\
line-height:1.45;color:#222}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;\
border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid \
#ccc;padding:.25rem .6rem;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.box{background:#f4f6f8;border-left:4px solid #3a6ea5;padding:.5rem 1rem}figure{margin:1rem 0}\
figure svg{max-width:100%;height:auto}figcaption{color:#444;font-size:.95rem}code{font-size:.9rem}\
.muted{color:#666}";

/// Text safe inside HTML elements and quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// What a calibration strategy changes, in words (`new_head`: the encoder had no head for the
/// task, so every head starts from zero).
fn describe(strategy: &Strategy, new_head: bool) -> String {
    if new_head {
        let text = match strategy {
            Strategy::TangentOnly { .. } => {
                "a new classifier on this subject's re-centred covariances alone (the encoder \
                 unused)"
            }
            Strategy::HeadLastBlock { .. } => {
                "a new head on the encoder's representation, with the encoder's last block \
                 fine-tuned on this subject"
            }
            Strategy::Views {
                embedding,
                population,
            } => {
                return format!(
                    "a new head trained on this subject: one classifier per view of the signal \
                     (covariances 8-30 Hz and 1-8 Hz, slow waveform{}{}), each regularised by \
                     cross-validation on the calibration epochs, views no better than chance \
                     left out",
                    if *embedding {
                        ", the encoder's embedding"
                    } else {
                        ""
                    },
                    if *population {
                        ", the population's task heads' scores"
                    } else {
                        ""
                    }
                )
            }
            _ => "a new head on the frozen encoder's representation, trained on this subject",
        };
        return text.to_string();
    }
    let fixed = match strategy {
        Strategy::TangentOnly { .. } => {
            "a classifier on this subject's re-centred covariances alone"
        }
        Strategy::Pooled { subject_weight } => {
            return format!(
                "classifier re-fitted on the population's epochs together with this subject's, \
                 each of the subject's counting {subject_weight} times"
            )
        }
        Strategy::Population => {
            "no personalization: the population model, applied after re-centring this \
             subject's data"
        }
        Strategy::Head { .. } => "task head re-fitted on this subject, kept near the population's",
        Strategy::HeadLastBlock { .. } => {
            "task head and the encoder's last block fine-tuned on this subject"
        }
        Strategy::AllLayers { .. } => "every encoder layer and the head fine-tuned on this subject",
        Strategy::Views { .. } => "one classifier per view trained on this subject alone",
    };
    fixed.to_string()
}

/// A file's name, or a numbered placeholder when de-identified.
fn file_label(file: &SourceFile, index: usize, options: &ReportOptions) -> String {
    if options.deidentify || file.name.is_empty() {
        format!("recording {}", index + 1)
    } else {
        escape(&file.name)
    }
}

fn files_table(out: &mut String, title: &str, files: &[SourceFile], options: &ReportOptions) {
    if files.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<h3>{title}</h3><table><tr><th>recording</th><th>SHA-256</th></tr>"
    );
    for (i, file) in files.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            file_label(file, i, options),
            escape(&file.sha256)
        );
    }
    out.push_str("</table>");
}

fn confusion_table(out: &mut String, classes: &[String], confusion: &[Vec<usize>]) {
    out.push_str("<table><tr><th>true \\ predicted</th>");
    for class in classes {
        let _ = write!(out, "<th>{}</th>", escape(class));
    }
    out.push_str("</tr>");
    for (class, row) in classes.iter().zip(confusion) {
        let _ = write!(out, "<tr><th>{}</th>", escape(class));
        for count in row {
            let _ = write!(out, "<td class=\"n\">{count}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// One sentence on held-out accuracy: the figure, its 95% interval and how it compares with chance.
fn held_out_sentence(scores: &Scores, chance: f64) -> String {
    let n = scores.n_epochs;
    let correct = scores
        .confusion
        .iter()
        .enumerate()
        .map(|(i, row)| row.get(i).copied().unwrap_or(0))
        .sum::<usize>();
    let interval = wilson_interval(correct, n)
        .map(|(lo, hi)| {
            format!(
                " (95% confidence interval {} to {})",
                percent(lo),
                percent(hi)
            )
        })
        .unwrap_or_default();
    let versus_chance = binomial_above_chance(correct, n, chance)
        .map(|p| {
            let verdict = if p < 0.05 {
                "better than"
            } else {
                "not clearly better than"
            };
            format!(
                "; that is {verdict} guessing, which would be right {} of the time \
                 ({}, one-sided binomial test)",
                percent(chance),
                p_value(p)
            )
        })
        .unwrap_or_default();
    format!(
        "On {n} labelled epochs of recordings not used for calibration, the model was right \
         {correct} times: {}{interval}{versus_chance}.",
        percent(scores.accuracy)
    )
}

fn summary(out: &mut String, m: &SubjectManifest, held_out: Option<&HeldOut>) {
    let classes = m.classes();
    let chance = 1.0 / classes.len().max(1) as f64;
    out.push_str("<div class=\"box\"><h2>In short</h2><ul>");
    match held_out {
        Some(h) => {
            let _ = write!(out, "<li>{}</li>", held_out_sentence(&h.scores, chance));
        }
        None => out.push_str(
            "<li>No held-out recordings were scored. Accuracy on new recordings is the only honest \
             test of this model: make this report again with <code>--test FILE...</code> \
             (labelled recordings of this subject that were not used for calibration).</li>",
        ),
    }
    let per_class: Vec<String> = classes
        .iter()
        .zip(&m.calibration.per_class)
        .map(|(c, n)| format!("{n} {}", escape(c)))
        .collect();
    let _ = write!(
        out,
        "<li>Calibrated on {} labelled epochs ({}) from {} recording(s), and {} unlabelled epochs.</li>",
        m.calibration.per_class.iter().sum::<usize>(),
        per_class.join(", "),
        m.calibration.recordings.len(),
        m.calibration.unlabeled_epochs
    );
    let chosen = m.inner_cv.iter().find(|c| c.strategy == m.strategy);
    let population = m
        .inner_cv
        .iter()
        .find(|c| c.strategy == Strategy::Population);
    if let (Some(chosen), true) = (chosen, m.inner_cv_folds > 0) {
        let baseline = population
            .map(|p| {
                format!(
                    " (the population model, without personalization: {})",
                    percent(p.accuracy)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li>Chosen approach: <b>{}</b>, {}. It scored {} in {}-fold cross-validation within \
             the calibration epochs{baseline}. That figure is optimistic: it is the best of {} \
             candidates judged on the same few epochs.</li>",
            escape(&m.strategy.to_string()),
            describe(&m.strategy, m.new_head),
            percent(chosen.accuracy),
            m.inner_cv_folds,
            m.inner_cv.len()
        );
    } else {
        let _ = write!(
            out,
            "<li>Approach: <b>{}</b>, {}. There were too few calibration epochs to compare \
             approaches by cross-validation, so the default was taken.</li>",
            escape(&m.strategy.to_string()),
            describe(&m.strategy, m.new_head)
        );
    }
    out.push_str("</ul></div>");
}

fn held_out_section(out: &mut String, m: &SubjectManifest, h: &HeldOut, options: &ReportOptions) {
    let s = &h.scores;
    out.push_str("<h2>Held-out recordings</h2><table>");
    let _ = write!(
        out,
        "<tr><th>labelled epochs</th><td class=\"n\">{}</td></tr>\
         <tr><th>accuracy</th><td class=\"n\">{:.3}</td></tr>\
         <tr><th>balanced accuracy</th><td class=\"n\">{:.3}</td></tr>\
         <tr><th>Cohen's kappa</th><td class=\"n\">{:.3}</td></tr></table>",
        s.n_epochs, s.accuracy, s.balanced_accuracy, s.kappa
    );
    confusion_table(out, m.classes(), &s.confusion);
    files_table(out, "Scored recordings", &h.recordings, options);
}

fn candidates_section(out: &mut String, m: &SubjectManifest) {
    out.push_str("<h2>Calibration: the candidates compared</h2>");
    if m.inner_cv.is_empty() {
        out.push_str("<p>No candidates were compared (too few calibration epochs).</p>");
        return;
    }
    let _ = write!(
        out,
        "<p>Each candidate was trained on part of the calibration epochs and scored on the rest \
         ({}-fold cross-validation); the most accurate was kept, ties going to the one listed \
         first.</p>\
         <table><tr><th></th><th>candidate</th><th>what it changes</th><th>accuracy</th>\
         <th>cross-entropy</th></tr>",
        m.inner_cv_folds
    );
    for c in &m.inner_cv {
        let mark = if c.strategy == m.strategy {
            "chosen"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td>{mark}</td><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td></tr>",
            escape(&c.strategy.to_string()),
            describe(&c.strategy, m.new_head),
            c.accuracy,
            c.loss
        );
    }
    out.push_str("</table><h3>Confusion of the chosen candidate, in cross-validation</h3>");
    confusion_table(out, m.classes(), &m.inner_cv_confusion);
}

fn plots_section(out: &mut String, plots: &[Plot]) {
    out.push_str("<h2>Diagnostic plots</h2>");
    for plot in plots {
        match &plot.svg {
            Some(svg) => {
                let _ = write!(
                    out,
                    "<figure>{svg}<figcaption>{}</figcaption></figure>",
                    plot.caption
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<p class=\"muted\">Plot not available: {}</p>",
                    plot.caption
                );
            }
        }
    }
}

fn provenance_section(out: &mut String, m: &SubjectManifest, options: &ReportOptions) {
    let f = &m.feature_config;
    out.push_str("<h2>Data, settings and provenance</h2>");
    files_table(
        out,
        "Labelled calibration recordings",
        &m.calibration.recordings,
        options,
    );
    files_table(
        out,
        "Unlabelled recordings (alignment only)",
        &m.calibration.unlabeled_recordings,
        options,
    );
    let encoder_dir = if options.deidentify {
        "withheld".to_string()
    } else {
        escape(&m.encoder.dir)
    };
    let bands: Vec<String> = f
        .bands
        .iter()
        .map(|b| format!("{} {}-{} Hz", escape(&b.name), b.lo, b.hi))
        .collect();
    let task = format!(
        "{}: classes {}; epochs {} to {} s after each event",
        escape(&m.task.name),
        escape(&m.classes().join(", ")),
        m.task.tmin,
        m.task.tmax
    );
    let notch = f.notch_hz.map_or("none".into(), |n| format!("{n} Hz"));
    let spectra = format!(
        "Welch, {} s segments, {}% overlap, {}-{} Hz; notch {notch}; common average reference {}",
        f.welch_segment_s,
        100.0 * f.welch_overlap,
        f.fmin,
        f.fmax,
        if f.average_reference { "yes" } else { "no" }
    );
    let code = |text: &str| format!("<code>{}</code>", escape(text));
    let channels = format!("{} ({})", m.channels.len(), escape(&m.channels.join(", ")));
    let model_weights = format!(
        "{} (checked against the file when this report was made)",
        code(&m.weights_sha256)
    );
    let rows = [
        ("task", task),
        ("channels", channels),
        ("sampling rate", format!("{} Hz", m.sfreq)),
        ("spectra", spectra),
        ("band powers", bands.join(", ")),
        ("feature settings hash", code(&m.feature_config_hash)),
        ("encoder folder", encoder_dir),
        ("encoder weights SHA-256", code(&m.encoder.weights_sha256)),
        ("subject model weights SHA-256", model_weights),
        (
            "calibrated with",
            format!("eegadapt {}", escape(&m.crate_version)),
        ),
        (
            "report made with",
            format!("eegadapt {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    out.push_str("<h3>Settings</h3><table>");
    for (name, value) in rows {
        let _ = write!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>");
}

const LIMITS: &str = "<h2>How to read this report</h2><ul>\
<li>This is a research tool, not a medical device. Its output is not a diagnosis.</li>\
<li>The model applies to this subject's recordings only, with the same channels and the same \
settings; eegadapt refuses recordings that do not match.</li>\
<li>Accuracies from a few dozen epochs are uncertain: the confidence interval says by how much. \
Cross-validation figures on the calibration epochs are optimistic; held-out recordings are the \
fair test.</li></ul>";

const EEGMMIDB_CREDIT: &str = "<h2>Data credit</h2><p>EEG Motor Movement/Imagery Dataset \
(Schalk G, McFarland DJ, Hinterberger T, Birbaumer N, Wolpaw JR. BCI2000: A General-Purpose \
Brain-Computer Interface (BCI) System. IEEE Trans Biomed Eng 51(6):1034-1043, 2004), from \
PhysioNet (Goldberger AL et al. Circulation 101(23):e215-e220, 2000), licence ODC-By 1.0.</p>";

/// The whole page.
pub(super) fn page(
    m: &SubjectManifest,
    held_out: Option<&HeldOut>,
    plots: &[Plot],
    options: &ReportOptions,
) -> String {
    let subject = if options.deidentify {
        "withheld".to_string()
    } else {
        escape(&m.subject)
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Subject model report: {subject}</title><style>{STYLE}</style></head><body>\
         <h1>Personalized EEG model: subject {subject}</h1>\
         <p class=\"muted\">Task {}: {}. Calibrated from a population encoder with eegadapt.</p>",
        escape(&m.task.name),
        escape(&m.classes().join(" vs "))
    );
    if m.new_head {
        let _ = write!(
            out,
            "<p><strong>New head.</strong> {}: the classifier was trained on this subject's \
             calibration data, on the encoder's representation; there is no population model \
             to compare it with.</p>",
            escape(
                m.new_head_reason
                    .as_deref()
                    .unwrap_or("The encoder had no population head for this task")
            )
        );
    }
    summary(&mut out, m, held_out);
    if let Some(h) = held_out {
        held_out_section(&mut out, m, h, options);
    }
    candidates_section(&mut out, m);
    plots_section(&mut out, plots);
    provenance_section(&mut out, m, options);
    out.push_str(LIMITS);
    if m.task.name.starts_with("eegmmidb") {
        out.push_str(EEGMMIDB_CREDIT);
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("S001"), "S001");
    }

    #[test]
    fn held_out_sentence_counts_the_diagonal() {
        let scores = Scores {
            n_epochs: 30,
            accuracy: 0.7,
            balanced_accuracy: 0.7,
            kappa: 0.4,
            confusion: vec![vec![10, 5], vec![4, 11]],
        };
        let text = held_out_sentence(&scores, 0.5);
        assert!(text.contains("right 21 times: 70.0%"), "{text}");
        assert!(
            text.contains("better than guessing") && text.contains("p = 0.021"),
            "{text}"
        );
    }
}
