//! Header fields of the written file: fixed widths, ASCII, numbers that fit.

use super::*;

/// `x` in at most `width` characters: its shortest exact form, else with fewer decimals rounded
/// in the direction asked. `None` when even the integer part does not fit.
pub(super) fn fit_number(x: f64, width: usize, round: Round) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    let exact = format!("{x}");
    if exact.len() <= width {
        return Some(exact);
    }
    (0..width).rev().find_map(|decimals| {
        let p = 10_f64.powi(decimals as i32);
        let v = match round {
            Round::Down => (x * p).floor(),
            Round::Up => (x * p).ceil(),
            Round::Nearest => (x * p).round(),
        } / p;
        let text = format!("{v:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        let text = if text == "-0" { "0".to_string() } else { text };
        (text.len() <= width).then_some(text)
    })
}

/// Header fields of one data channel (in header order) and its quantizer.
pub(super) fn signal_fields(
    c: &Channel,
    spr: usize,
    format: SampleFormat,
) -> std::result::Result<([String; 10], Quantizer), String> {
    let degenerate = c.digital_min == c.digital_max
        || c.physical_min == c.physical_max
        || !(c.physical_max - c.physical_min).is_finite();
    let fits = |d: i32| (format.min..=format.max).contains(&d);
    let (dmin, dmax) = if degenerate {
        (format.min, format.max)
    } else if fits(c.digital_min) && fits(c.digital_max) {
        (c.digital_min, c.digital_max)
    } else if c.digital_min < c.digital_max {
        (format.min, format.max)
    } else {
        (format.max, format.min)
    };
    let (pmin, pmax) = if degenerate {
        (f64::from(dmin), f64::from(dmax))
    } else {
        (c.physical_min, c.physical_max)
    };
    let (round_min, round_max) = if pmin < pmax {
        (Round::Down, Round::Up)
    } else {
        (Round::Up, Round::Down)
    };
    let fit = |x: f64, round, what: &str| {
        fit_number(x, 8, round)
            .ok_or_else(|| format!("channel {}: {what} {x} does not fit 8 characters", c.label))
    };
    let pmin_text = fit(pmin, round_min, "physical minimum")?;
    let pmax_text = fit(pmax, round_max, "physical maximum")?;
    let (pmin, pmax) = (
        pmin_text.parse::<f64>().unwrap_or(pmin),
        pmax_text.parse::<f64>().unwrap_or(pmax),
    );
    if pmin == pmax {
        return Err(format!(
            "channel {}: physical range {pmin}..{pmax} is empty once written",
            c.label
        ));
    }
    let scale = f64::from(dmax - dmin) / (pmax - pmin);
    Ok((
        [
            c.label.clone(),
            c.transducer.clone(),
            c.unit.clone(),
            pmin_text,
            pmax_text,
            dmin.to_string(),
            dmax.to_string(),
            c.prefilter.clone(),
            spr.to_string(),
            String::new(),
        ],
        Quantizer {
            scale,
            base: f64::from(dmin) - pmin * scale,
            lo: f64::from(dmin.min(dmax)),
            hi: f64::from(dmin.max(dmax)),
        },
    ))
}

pub(super) fn annotation_signal_fields(spr: usize, format: SampleFormat) -> [String; 10] {
    let s = |x: &str| x.to_string();
    let label = if format == SampleFormat::BDF {
        "BDF Annotations"
    } else {
        "EDF Annotations"
    };
    [
        s(label),
        s(""),
        s(""),
        s("-1"),
        s("1"),
        format.min.to_string(),
        format.max.to_string(),
        s(""),
        spr.to_string(),
        s(""),
    ]
}

pub(super) const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The fixed header's text fields, from `version` to `ns` (lengths checked later).
pub(super) fn fixed_fields(
    recording: &Recording,
    options: &WriteOptions,
    format: &str,
    records: usize,
    duration: &str,
) -> Vec<(String, usize)> {
    let start: Option<StartTime> = recording.start.filter(|_| !options.deidentify);
    let (date, time, startdate) = match start {
        Some(s) => (
            format!("{:02}.{:02}.{:02}", s.day, s.month, s.year % 100),
            format!("{:02}.{:02}.{:02}", s.hour, s.minute, s.second),
            format!(
                "{:02}-{}-{:04}",
                s.day,
                MONTHS[usize::from(s.month.clamp(1, 12) - 1)],
                s.year
            ),
        ),
        None => ("01.01.85".into(), "00.00.00".into(), "X".into()),
    };
    let (patient, rec) = if options.deidentify {
        ("X X X X".to_string(), "Startdate X X X X".to_string())
    } else {
        let patient = match recording.identity.patient.trim() {
            "" => "X X X X".to_string(),
            p => p.to_string(),
        };
        let original = recording.identity.recording.trim();
        let prefixed = format!("Startdate {startdate} X X X {original}");
        let rec = if original.starts_with("Startdate ") {
            original.to_string()
        } else if prefixed.trim_end().len() <= 80 {
            prefixed.trim_end().to_string()
        } else {
            original.to_string()
        };
        (patient, rec)
    };
    vec![
        ("0".into(), 8),
        (patient, 80),
        (rec, 80),
        (date, 8),
        (time, 8),
        (String::new(), 8), // header bytes, filled in by `header_bytes`
        (format.into(), 44),
        (records.to_string(), 8),
        (duration.into(), 8),
        (String::new(), 4), // ns, filled in by `header_bytes`
    ]
}

/// Header text as EDF wants it: printable ASCII, `µ` as `u`.
pub(super) fn ascii(text: &str) -> String {
    text.chars()
        .map(|ch| match ch {
            'µ' | 'μ' => 'u',
            ' '..='~' => ch,
            _ => '_',
        })
        .collect()
}

/// The whole header: fixed fields, then each signal field for all signals in turn.
pub(super) fn header_bytes(
    fixed: &[(String, usize)],
    signals: &[[String; 10]],
) -> std::result::Result<Vec<u8>, String> {
    const WIDTHS: [(&str, usize); 10] = [
        ("label", 16),
        ("transducer", 80),
        ("physical dimension", 8),
        ("physical minimum", 8),
        ("physical maximum", 8),
        ("digital minimum", 8),
        ("digital maximum", 8),
        ("prefiltering", 80),
        ("samples per record", 8),
        ("reserved", 32),
    ];
    let ns = signals.len();
    let mut out = Vec::with_capacity(256 * (ns + 1));
    let mut push = |text: &str, width: usize, what: &str| {
        let text = ascii(text);
        if text.len() > width {
            return Err(format!(
                "{what} {text:?} is longer than its {width}-character field"
            ));
        }
        out.extend_from_slice(text.as_bytes());
        out.resize(out.len() + width - text.len(), b' ');
        Ok(())
    };
    let header_len = (256 * (ns + 1)).to_string();
    let ns_text = ns.to_string();
    for (k, (text, width)) in fixed.iter().enumerate() {
        let text = match k {
            5 => &header_len,
            9 => &ns_text,
            _ => text,
        };
        push(text, *width, "header field")?;
    }
    for (f, (what, width)) in WIDTHS.iter().enumerate() {
        for (i, s) in signals.iter().enumerate() {
            push(&s[f], *width, &format!("signal {i} {what}"))?;
        }
    }
    Ok(out)
}
