//! Annotation lists (TALs) of the written file: placing annotations into records.

use super::*;

/// Assigns annotations (in onset order) to records: each to the record holding its onset or,
/// when that one is full, a later one. Returns the placement and the annotation signal's bytes
/// per record (the largest record's TALs plus a final NUL), trying growing capacities from the
/// average load up to the load of placing every annotation in its own record.
pub(super) fn place_annotations(
    recording: &Recording,
    record_times: &[f64],
    subsecond: f64,
) -> std::result::Result<(Vec<Vec<usize>>, usize), String> {
    let annotations = &recording.annotations;
    let records = record_times.len();
    if records == 0 {
        if annotations.is_empty() {
            return Ok((Vec::new(), 2));
        }
        return Err("annotations need at least one data record to be stored in".into());
    }
    let mut order: Vec<usize> = (0..annotations.len()).collect();
    let mut lengths = vec![0; annotations.len()];
    let mut natural = vec![0; annotations.len()];
    for (i, a) in annotations.iter().enumerate() {
        if !a.onset_s.is_finite() || a.duration_s.is_some_and(|d| !(d >= 0.0 && d.is_finite())) {
            return Err(format!(
                "annotation {i} ({:?}) has onset {} s, duration {:?} s",
                a.text, a.onset_s, a.duration_s
            ));
        }
        if a.text.contains(['\0', '\u{14}', '\u{15}']) {
            return Err(format!(
                "annotation {i} ({:?}) contains a TAL control character",
                a.text
            ));
        }
        lengths[i] = annotation_tal(recording, i, subsecond).len();
        let time = a.onset_s + subsecond;
        natural[i] = record_times
            .partition_point(|&t| t <= time)
            .saturating_sub(1);
    }
    order.sort_by(|&a, &b| annotations[a].onset_s.total_cmp(&annotations[b].onset_s));
    let base: Vec<usize> = record_times
        .iter()
        .map(|&t| time_keeping_tal(t).len())
        .collect();
    let mut natural_load = base.clone();
    for &a in &order {
        natural_load[natural[a]] += lengths[a];
    }
    let most = natural_load.iter().copied().max().unwrap_or(0);
    let total = natural_load.iter().sum::<usize>();
    let mut capacity = total
        .div_ceil(records)
        .max(base.iter().copied().max().unwrap_or(0));
    loop {
        capacity = capacity.min(most);
        let mut used = base.clone();
        let mut placement = vec![Vec::new(); records];
        let mut cursor = 0;
        let mut fits = true;
        for &a in &order {
            let mut r = natural[a].max(cursor);
            while r < records && used[r] + lengths[a] > capacity {
                r += 1;
            }
            if r == records {
                fits = false;
                break;
            }
            used[r] += lengths[a];
            placement[r].push(a);
            cursor = r;
        }
        if fits {
            let largest = used.iter().copied().max().unwrap_or(0);
            return Ok((placement, largest + 1));
        }
        capacity += capacity / 2 + 1;
    }
}

pub(super) fn time_keeping_tal(time: f64) -> Vec<u8> {
    let mut t = format_time(time).into_bytes();
    t.extend_from_slice(b"\x14\x14\x00");
    t
}

/// TAL of annotation `i`: `+onset[\x15duration]\x14text\x14\x00`, onset shifted by `shift`.
pub(super) fn annotation_tal(recording: &Recording, i: usize, shift: f64) -> Vec<u8> {
    let a = &recording.annotations[i];
    let mut t = format_time(a.onset_s + shift);
    if let Some(d) = a.duration_s {
        t.push('\u{15}');
        t.push_str(&format_time(d)[1..]);
    }
    t.push('\u{14}');
    t.push_str(&a.text);
    t.push_str("\u{14}\0");
    t.into_bytes()
}

/// Seconds as a TAL onset: sign, then up to nine decimals (trailing zeros dropped).
pub(super) fn format_time(x: f64) -> String {
    let digits = format!("{:.9}", x.abs());
    let digits = digits.trim_end_matches('0').trim_end_matches('.');
    let negative = x < 0.0 && digits.bytes().any(|b| b.is_ascii_digit() && b != b'0');
    format!("{}{digits}", if negative { '-' } else { '+' })
}
