//! EDF+ Time-stamped Annotation Lists (TALs).
//!
//! An annotation signal holds, in each data record, TALs of the form
//! `+onset[\x15duration]\x14text\x14[text\x14...]\x00`, padded with NUL bytes. The first TAL of
//! the first annotation signal in each record is the record's time-keeping TAL: its first text is
//! empty and its onset is the record's start relative to the header start time.

/// One parsed TAL entry: an onset shared by one or more texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Tal {
    /// Seconds relative to the header start time.
    pub onset: f64,
    /// Duration in seconds, if given.
    pub duration: Option<f64>,
    /// Annotation texts; an empty first text marks a time-keeping TAL.
    pub texts: Vec<String>,
}

/// The TALs of one annotation signal in one data record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordTals {
    /// TALs in file order.
    pub tals: Vec<Tal>,
    /// TALs that lacked their NUL terminator and were split off the time-keeping TAL.
    pub recovered_separators: usize,
}

/// Parses one record's annotation bytes.
///
/// Decision (EDF+ specification, section 2.2.4): TALs are separated by a NUL byte. Some Nihon
/// Kohden files omit it after the time-keeping TAL (`+0\x14\x14+0.5\x14text\x14`); MNE then
/// reports `+0.5` as an annotation text and places `text` at the record onset. An onset-shaped
/// text directly after the empty time-keeping text can only be a new TAL, so it is split off and
/// counted in `recovered_separators`. An onset-shaped text anywhere else stays text (files such
/// as chtypes_edf.edf annotate `+0.000000` on purpose).
pub fn parse_record(bytes: &[u8]) -> Result<RecordTals, String> {
    let mut out = RecordTals::default();
    for chunk in bytes.split(|&b| b == 0).filter(|c| !c.is_empty()) {
        let mut parts: Vec<&[u8]> = chunk.split(|&b| b == 0x14).collect();
        // A complete TAL ends with 0x14, which leaves an empty last part.
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        } else {
            return Err(format!(
                "TAL {:?} does not end with the 0x14 separator",
                shown(&String::from_utf8_lossy(chunk))
            ));
        }
        let mut index = 0;
        while index < parts.len() {
            let (onset, duration) = parse_onset(parts[index])?;
            let mut texts: Vec<String> = Vec::new();
            index += 1;
            while index < parts.len() {
                let is_time_keeping = texts.len() == 1 && texts[0].is_empty();
                if is_time_keeping && parse_onset(parts[index]).is_ok() {
                    out.recovered_separators += 1;
                    break;
                }
                texts.push(decode_text(parts[index]));
                index += 1;
            }
            out.tals.push(Tal {
                onset,
                duration,
                texts,
            });
        }
    }
    Ok(out)
}

/// `+12.5` or `-3` with an optional `\x15duration`.
fn parse_onset(field: &[u8]) -> Result<(f64, Option<f64>), String> {
    let text = std::str::from_utf8(field).map_err(|_| {
        format!(
            "TAL onset {:?} is not ASCII",
            shown(&String::from_utf8_lossy(field))
        )
    })?;
    let (onset, duration) = match text.split_once('\u{15}') {
        Some((o, d)) => (o, Some(d)),
        None => (text, None),
    };
    if !(onset.starts_with('+') || onset.starts_with('-')) {
        return Err(format!(
            "TAL onset {:?} does not start with '+' or '-'",
            shown(text)
        ));
    }
    let onset_value = parse_decimal(&onset[1..])
        .map(|v| if onset.starts_with('-') { -v } else { v })
        .ok_or_else(|| format!("TAL onset {:?} is not a finite number", shown(text)))?;
    let duration_value = match duration {
        None | Some("") => None,
        Some(d) => Some(
            parse_decimal(d)
                .ok_or_else(|| format!("TAL duration {:?} is not a finite number", shown(d)))?,
        ),
    };
    Ok((onset_value, duration_value))
}

/// Digits with at most one decimal point, as the specification allows (no sign, no exponent).
///
/// The value must be finite: fuzzing found a 320-digit onset, which parses to infinity and made
/// record onsets NaN.
fn parse_decimal(s: &str) -> Option<f64> {
    let valid = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
        && s.bytes().any(|b| b.is_ascii_digit());
    valid
        .then(|| s.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

/// A TAL fragment for an error message, cut to 60 characters: an annotation signal can hold
/// kilobytes of garbage, and fuzzing produced 300-digit onsets.
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Texts are UTF-8 by the specification; invalid bytes are replaced rather than refused.
fn decode_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keeping_and_annotations() {
        let tals =
            parse_record(b"+1\x14\x14\x00+2.5\x150.5\x14Spike\x14Other\x14\x00\x00\x00").unwrap();
        assert_eq!(tals.tals.len(), 2);
        assert_eq!(tals.tals[0].onset, 1.0);
        assert_eq!(tals.tals[0].texts, vec![""]);
        assert_eq!(tals.tals[1].onset, 2.5);
        assert_eq!(tals.tals[1].duration, Some(0.5));
        assert_eq!(tals.tals[1].texts, vec!["Spike", "Other"]);
        assert_eq!(tals.recovered_separators, 0);
    }

    #[test]
    fn missing_nul_after_time_keeping_is_recovered() {
        let tals = parse_record(b"+1.000000\x14\x14+1.140000\x14A1+A2 OFF\x14").unwrap();
        assert_eq!(tals.recovered_separators, 1);
        assert_eq!(tals.tals[1].onset, 1.14);
        assert_eq!(tals.tals[1].texts, vec!["A1+A2 OFF"]);
    }

    #[test]
    fn onset_shaped_text_in_ordinary_tal_stays_text() {
        let tals = parse_record(b"+0\x14\x14\x00+0\x14+0.000000\x14\x00").unwrap();
        assert_eq!(tals.tals[1].texts, vec!["+0.000000"]);
    }

    #[test]
    fn utf8_and_negative_onsets() {
        let tals = parse_record("-0.25\x14仰卧\x14\0".as_bytes()).unwrap();
        assert_eq!(tals.tals[0].onset, -0.25);
        assert_eq!(tals.tals[0].texts, vec!["仰卧"]);
    }

    #[test]
    fn malformed_tals_are_errors() {
        assert!(parse_record(b"12\x14x\x14\0").is_err());
        assert!(parse_record(b"+1.2.3\x14x\x14\0").is_err());
        assert!(parse_record(b"+1\x14unterminated").is_err());
        assert!(parse_record(b"+1\x15abc\x14x\x14\0").is_err());
        assert!(parse_record(b"+\x14x\x14\0").is_err());
        let huge = format!("+{}\x14x\x14\0", "9".repeat(320));
        assert!(parse_record(huge.as_bytes()).is_err());
    }
}
