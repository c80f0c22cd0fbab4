//! Channel labels: the electrode name and the kind of signal a label stands for.
//!
//! Labels in the wild: `C3..` (BCI2000 pads with dots), `EEG Fp1-REF` (EDF+ type prefix and a
//! reference suffix), `EEG T3-A1`, `Fp1`, `Status`, `EDF Annotations`, `ECG ECG1`, `POL X1`.

use super::recording::ChannelKind;
use crate::montage;

/// Labels reserved by EDF+ and BDF+ for annotation signals.
pub fn is_annotation_label(label: &str) -> bool {
    let label = label.trim();
    label == "EDF Annotations" || label == "BDF Annotations"
}

/// Reference names that may follow an electrode after `-` without making it a bipolar derivation.
const REFERENCE_SUFFIXES: &[&str] = &[
    "REF", "LE", "RE", "AR", "AV", "AVG", "AVERAGE", "CAR", "A1", "A2", "M1", "M2", "A1A2", "M1M2",
    "LINKED", "CZ",
];

/// Type prefixes recommended by the EDF+ specification ("EEG Fpz-Cz", "ECG LA-RA") and common
/// vendor prefixes.
const TYPE_PREFIXES: &[(&str, Option<ChannelKind>)] = &[
    ("EEG", Some(ChannelKind::Eeg)),
    ("EOG", Some(ChannelKind::Eog)),
    ("EMG", Some(ChannelKind::Emg)),
    ("ECG", Some(ChannelKind::Ecg)),
    ("EKG", Some(ChannelKind::Ecg)),
    ("POL", None),
    ("SEEG", None),
    ("ECOG", None),
];

/// The kind of signal a label stands for.
pub fn channel_kind(label: &str) -> ChannelKind {
    let trimmed = label.trim();
    if is_annotation_label(trimmed) {
        return ChannelKind::Annotation;
    }
    let upper = trimmed.to_ascii_uppercase();
    if let Some((_, Some(kind))) = TYPE_PREFIXES.iter().find(|(prefix, _)| {
        upper
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(' '))
    }) {
        return *kind;
    }
    let word = upper.trim_end_matches('.');
    if [
        "STATUS", "TRIGGER", "TRIG", "STIM", "STI", "EVENT", "EVENTS", "MARKER",
    ]
    .iter()
    .any(|s| word == *s || word.starts_with(&format!("{s} ")) || word.starts_with(&format!("{s}0")))
    {
        return ChannelKind::Stim;
    }
    if word.starts_with("EOG") || ["HEOG", "VEOG", "LOC", "ROC"].contains(&word) {
        return ChannelKind::Eog;
    }
    if word.starts_with("EMG") || word.starts_with("CHIN") {
        return ChannelKind::Emg;
    }
    if word.starts_with("ECG") || word.starts_with("EKG") {
        return ChannelKind::Ecg;
    }
    if electrode_name(trimmed).is_some() {
        ChannelKind::Eeg
    } else {
        ChannelKind::Other
    }
}

/// The standard 10-05 electrode a label refers to, if any.
///
/// Strips BCI2000's padding dots, a type prefix (`EEG `, `POL `) and a reference suffix (`-REF`,
/// `-A1`, `-LE`, ...), then matches the standard names case-insensitively. A bipolar derivation
/// between two electrodes (`Fp1-F7`) names no single electrode and gives `None`.
pub fn electrode_name(label: &str) -> Option<&'static str> {
    let mut rest = label.trim().trim_end_matches('.').trim();
    let upper = rest.to_ascii_uppercase();
    for (prefix, _) in TYPE_PREFIXES {
        if upper
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with(' '))
        {
            rest = rest[prefix.len()..].trim_start();
            break;
        }
    }
    if let Some(name) = montage::standard_name(rest) {
        return Some(name);
    }
    let (electrode, reference) = rest.split_once('-')?;
    let reference = reference.trim().to_ascii_uppercase();
    REFERENCE_SUFFIXES
        .contains(&reference.as_str())
        .then(|| montage::standard_name(electrode.trim()))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bci2000_dotted_labels_normalize() {
        assert_eq!(electrode_name("C3.."), Some("C3"));
        assert_eq!(electrode_name("Fc5."), Some("FC5"));
        assert_eq!(electrode_name("T10."), Some("T10"));
        assert_eq!(channel_kind("Fcz."), ChannelKind::Eeg);
    }

    #[test]
    fn prefixed_and_referenced_labels_normalize() {
        assert_eq!(electrode_name("EEG Fp1-REF"), Some("Fp1"));
        assert_eq!(electrode_name("EEG T3-Ref"), Some("T7"));
        assert_eq!(electrode_name("eeg fp1-ref"), Some("Fp1"));
        assert_eq!(electrode_name("EEG C4-A1"), Some("C4"));
    }

    #[test]
    fn bipolar_derivations_and_non_electrodes_have_no_name() {
        assert_eq!(electrode_name("Fp1-F7"), None);
        assert_eq!(electrode_name("EEG Fpz-Cz"), Some("Fpz"));
        assert_eq!(electrode_name("Status"), None);
        assert_eq!(electrode_name("POL X1"), None);
    }

    #[test]
    fn kinds_follow_prefixes_and_reserved_labels() {
        assert_eq!(channel_kind("EDF Annotations"), ChannelKind::Annotation);
        assert_eq!(channel_kind("BDF Annotations"), ChannelKind::Annotation);
        assert_eq!(channel_kind("ECG ECG1"), ChannelKind::Ecg);
        assert_eq!(channel_kind("EOG horizontal"), ChannelKind::Eog);
        assert_eq!(channel_kind("EMG submental"), ChannelKind::Emg);
        assert_eq!(channel_kind("Status"), ChannelKind::Stim);
        assert_eq!(channel_kind("tRigGer"), ChannelKind::Stim);
        assert_eq!(channel_kind("SaO2 X9"), ChannelKind::Other);
        assert_eq!(channel_kind("POL E"), ChannelKind::Other);
    }
}
