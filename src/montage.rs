//! Standard electrode names (10-05 system) and their positions on the head.
//!
//! Used to normalize channel labels (`C3..`, `EEG Fp1-REF`, `T3`) to one vocabulary, and later
//! to give each electrode a position.

#[path = "montage_table.rs"]
mod table;

pub use table::{OLD_NAMES, STANDARD_1005, TEN_TWENTY_19};

/// The standard spelling of an electrode name, matched case-insensitively; old 10-20 names
/// (T3, T4, T5, T6) map to their 10-10 successors (T7, T8, P7, P8).
pub fn standard_name(name: &str) -> Option<&'static str> {
    if let Some((_, new)) = OLD_NAMES
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(name))
    {
        return Some(new);
    }
    STANDARD_1005
        .iter()
        .find(|(standard, _)| standard.eq_ignore_ascii_case(name))
        .map(|(standard, _)| *standard)
}

/// Position (x, y, z in metres, head frame) of a standard electrode name.
pub fn position(name: &str) -> Option<[f64; 3]> {
    let name = standard_name(name)?;
    STANDARD_1005
        .iter()
        .find(|(standard, _)| *standard == name)
        .map(|(_, xyz)| *xyz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively_and_old_names_map_forward() {
        assert_eq!(standard_name("fc5"), Some("FC5"));
        assert_eq!(standard_name("FP1"), Some("Fp1"));
        assert_eq!(standard_name("T3"), Some("T7"));
        assert_eq!(standard_name("t6"), Some("P8"));
        assert_eq!(standard_name("Status"), None);
    }

    #[test]
    fn every_ten_twenty_name_has_a_position() {
        for name in TEN_TWENTY_19 {
            let xyz = position(name).expect("10-20 name in the table");
            let radius = (xyz[0] * xyz[0] + xyz[1] * xyz[1] + xyz[2] * xyz[2]).sqrt();
            assert!(
                (0.05..0.15).contains(&radius),
                "{name}: {radius} m from the origin"
            );
        }
    }
}
