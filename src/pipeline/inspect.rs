//! What a recording holds: header, channels, segments and gaps, annotations and warnings.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

use crate::edf::{ChannelKind, EdfFile};

/// Gaps between consecutive segments, as `{onset_s, duration_s}`.
fn gaps(file: &EdfFile) -> Vec<Value> {
    file.segments()
        .windows(2)
        .map(|w| json!({"onset_s": w[0].end_s(), "duration_s": w[1].onset_s - w[0].end_s()}))
        .collect()
}

fn annotation_counts(file: &EdfFile) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for a in file.annotations() {
        *counts.entry(a.text.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The machine-readable description of one file (what `inspect --json` prints for it). Patient
/// and recording identification are included only with `show_identity`.
pub fn inspect_json(file: &EdfFile, show_identity: bool) -> Value {
    let signals: Vec<Value> = file
        .channels()
        .iter()
        .map(|c| {
            json!({
                "label": c.label,
                "name": c.name,
                // The standard 10-05 position (head frame, metres), null when it has none.
                "position_m": c.name.as_deref().and_then(crate::montage::position),
                "kind": c.kind,
                "sampling_rate_hz": c.sampling_rate_hz,
                "samples": c.samples,
                "unit": c.unit,
                "physical_min": c.physical_min,
                "physical_max": c.physical_max,
                "digital_min": c.digital_min,
                "digital_max": c.digital_max,
            })
        })
        .collect();
    let segments: Vec<Value> = file
        .segments()
        .iter()
        .map(|s| json!({"onset_s": s.onset_s, "duration_s": s.duration_s, "records": s.records}))
        .collect();
    let mut report = json!({
        "file": file.path().display().to_string(),
        "format": file.format(),
        "start": file.start().map(|s| s.to_string()),
        "duration_s": file.duration_s(),
        "record_duration_s": file.header().record_duration_s,
        "records": file.records(),
        "segments": segments,
        "gaps": gaps(file),
        "signals": signals,
        "annotations": file.annotations(),
        "annotation_counts": annotation_counts(file),
        "warnings": file.warnings(),
    });
    if show_identity {
        let identity = &file.header().identity;
        report["identity"] = json!({
            "patient": identity.patient,
            "recording": identity.recording,
            "patient_name": identity.patient_name(),
            "birth_date": identity.birth_date(),
        });
    }
    report
}

/// The description of one file for people, from its [`inspect_json`] value.
pub fn write_inspection(out: &mut impl Write, file: &EdfFile, report: &Value) -> io::Result<()> {
    let channels = file.channels();
    let kinds = [
        ChannelKind::Eeg,
        ChannelKind::Eog,
        ChannelKind::Emg,
        ChannelKind::Ecg,
        ChannelKind::Stim,
        ChannelKind::Other,
    ];
    let kind_summary: Vec<String> = kinds
        .iter()
        .filter_map(|k| {
            let n = channels.iter().filter(|c| c.kind == *k).count();
            (n > 0).then(|| format!("{n} {}", format!("{k:?}").to_lowercase()))
        })
        .collect();
    writeln!(out, "{}", file.path().display())?;
    writeln!(out, "  format      {}", file.format())?;
    match file.start() {
        Some(s) => writeln!(out, "  start       {s}")?,
        None => writeln!(out, "  start       unknown")?,
    }
    writeln!(
        out,
        "  duration    {:.3} s in {} records of {} s",
        file.duration_s(),
        file.records(),
        file.header().record_duration_s
    )?;
    writeln!(
        out,
        "  signals     {} ({})",
        channels.len(),
        kind_summary.join(", ")
    )?;
    let gaps = report["gaps"].as_array().map_or(0, Vec::len);
    writeln!(
        out,
        "  segments    {} ({} gaps)",
        file.segments().len(),
        gaps
    )?;
    for s in file.segments() {
        writeln!(
            out,
            "    {:>12.3} s .. {:>12.3} s  ({} records)",
            s.onset_s,
            s.end_s(),
            s.records
        )?;
    }
    writeln!(out, "  channels")?;
    writeln!(
        out,
        "    {:>3}  {:<16} {:<6} {:<10} {:>10} {:>10}  {:<6} physical range",
        "#", "label", "name", "kind", "rate (Hz)", "samples", "unit"
    )?;
    for (i, c) in channels.iter().enumerate() {
        writeln!(
            out,
            "    {:>3}  {:<16} {:<6} {:<10} {:>10} {:>10}  {:<6} {} .. {}",
            i,
            c.label,
            c.name.as_deref().unwrap_or("-"),
            format!("{:?}", c.kind).to_lowercase(),
            format_rate(c.sampling_rate_hz),
            c.samples,
            c.unit,
            c.physical_min,
            c.physical_max
        )?;
    }
    let counts = annotation_counts(file);
    writeln!(
        out,
        "  annotations {} ({} distinct texts)",
        file.annotations().len(),
        counts.len()
    )?;
    for (text, n) in counts.iter().take(30) {
        writeln!(out, "    {n:>6}  {text}")?;
    }
    if counts.len() > 30 {
        writeln!(out, "    ... {} more texts (see --json)", counts.len() - 30)?;
    }
    for w in file.warnings() {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out)
}

fn format_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.4}")
    }
}
