//! Which runs of a held-out subject calibrate, which are scored, and which may serve as extra
//! calibration or as unlabelled data: the benchmark protocols.

use serde::{Deserialize, Serialize};

use crate::features::FeatureRow;

/// A benchmark protocol over EEGMMIDB-style run numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Name, as given to `bench`.
    pub name: String,
    /// What it measures, in words.
    pub description: String,
    /// The labelled calibration run of a held-out subject (the headline).
    pub calibration_run: u32,
    /// Runs scored (used for nothing else).
    pub test_runs: Vec<u32>,
    /// A further labelled run for the "calibration 3+4" column.
    pub extra_calibration_run: Option<u32>,
    /// Runs of the held-out subject used without labels in the "with unlabelled" column.
    pub unlabelled_runs: Vec<u32>,
    /// Runs no subject contributes at all.
    pub excluded_runs: Vec<u32>,
}

impl Protocol {
    /// A protocol by name: `eegmmidb-lr` (calibrate on the imagined run 4, score runs 8 and
    /// 12) or `eegmmidb-lr-dev` (for choosing methods: calibrate on the executed run 3, score
    /// the executed runs 7 and 11; runs 8 and 12 are never read).
    pub fn named(name: &str) -> Option<Protocol> {
        match name {
            "eegmmidb-lr" => Some(Protocol {
                name: name.into(),
                description:
                    "imagined left vs right fist: calibration = run 4, test = runs 8 and 12; \
                              calibration 3+4 adds the executed run 3; runs 7 and 11 only as \
                              unlabelled data in their own column"
                        .into(),
                calibration_run: 4,
                test_runs: vec![8, 12],
                extra_calibration_run: Some(3),
                unlabelled_runs: vec![7, 11],
                excluded_runs: Vec::new(),
            }),
            "eegmmidb-lr-dev" => Some(Protocol {
                name: name.into(),
                description: "development protocol, for choosing methods without the test runs: \
                              calibration = executed run 3, test = executed runs 7 and 11; runs 8 \
                              and 12 of every subject are left out entirely"
                    .into(),
                calibration_run: 3,
                test_runs: vec![7, 11],
                extra_calibration_run: Some(4),
                unlabelled_runs: Vec::new(),
                excluded_runs: vec![8, 12],
            }),
            _ => None,
        }
    }

    /// Whether any subject may contribute this run.
    pub fn keeps(&self, run: Option<u32>) -> bool {
        run.is_none_or(|r| !self.excluded_runs.contains(&r))
    }

    /// A subject's rows split by role; `None` when the subject lacks the labelled calibration
    /// run or a labelled test run (it is then used for pretraining only).
    pub fn split<'a>(&self, rows: &[&'a FeatureRow]) -> Option<SubjectRuns<'a>> {
        let of = |run: u32| -> Vec<&'a FeatureRow> {
            let mut out: Vec<&'a FeatureRow> = rows
                .iter()
                .copied()
                .filter(|r| r.run == Some(run))
                .collect();
            out.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
            out
        };
        let labelled = |rows: &[&FeatureRow]| rows.iter().any(|r| r.label.is_some());
        let calibration = of(self.calibration_run);
        if !labelled(&calibration) {
            return None;
        }
        let mut test = Vec::new();
        for &run in &self.test_runs {
            let scored: Vec<&FeatureRow> =
                of(run).into_iter().filter(|r| r.label.is_some()).collect();
            if scored.is_empty() {
                return None;
            }
            test.extend(scored);
        }
        Some(SubjectRuns {
            calibration,
            test,
            extra: self.extra_calibration_run.map(of).unwrap_or_default(),
            unlabelled: self.unlabelled_runs.iter().flat_map(|&r| of(r)).collect(),
        })
    }
}

/// One held-out subject's rows by role.
pub struct SubjectRuns<'a> {
    /// The calibration run, in recording order.
    pub calibration: Vec<&'a FeatureRow>,
    /// Labelled epochs of the test runs.
    pub test: Vec<&'a FeatureRow>,
    /// The extra calibration run (empty when the subject lacks it).
    pub extra: Vec<&'a FeatureRow>,
    /// The runs usable without labels.
    pub unlabelled: Vec<&'a FeatureRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: u32, onset: f64, label: Option<usize>) -> FeatureRow {
        FeatureRow {
            subject: "S".into(),
            recording: format!("R{run}"),
            run: Some(run),
            epoch: 0,
            onset_s: onset,
            label,
            log_psd: Vec::new(),
            log_band_power: Vec::new(),
            rel_band_power: Vec::new(),
            covariances: Vec::new(),
            evoked: Vec::new(),
        }
    }

    #[test]
    fn roles_follow_runs_and_a_missing_test_run_excludes_the_subject() {
        let p = Protocol::named("eegmmidb-lr").unwrap();
        let rows = [
            row(4, 9.0, Some(1)),
            row(4, 2.0, Some(0)),
            row(8, 1.0, Some(0)),
            row(12, 1.0, Some(1)),
            row(3, 1.0, Some(0)),
            row(7, 1.0, Some(1)),
        ];
        let refs: Vec<&FeatureRow> = rows.iter().collect();
        let s = p.split(&refs).unwrap();
        assert_eq!(s.calibration.len(), 2);
        assert!(s.calibration[0].onset_s < s.calibration[1].onset_s);
        assert_eq!(s.test.len(), 2);
        assert_eq!((s.extra.len(), s.unlabelled.len()), (1, 1));
        let without_12: Vec<&FeatureRow> =
            refs.iter().copied().filter(|r| r.run != Some(12)).collect();
        assert!(p.split(&without_12).is_none());
        let dev = Protocol::named("eegmmidb-lr-dev").unwrap();
        assert!(!dev.keeps(Some(8)) && dev.keeps(Some(4)) && p.keeps(Some(12)));
    }
}
