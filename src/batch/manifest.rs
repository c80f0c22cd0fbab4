//! The batch manifest: a CSV file with one recording per line, saying whose it is and what it is
//! for. Columns (a header line names them, in any order; others are ignored):
//!
//! - `subject`: the subject's identifier, also the name of its output folder;
//! - `role`: `calibration` (labelled, calibrates the model), `unlabeled` (alignment only),
//!   `test` (labelled, never seen by calibration: scored in the report) or `predict` (classified);
//! - `path`: the recording, absolute or relative to the manifest's folder.
//!
//! Blank lines and lines starting with `#` are skipped; a field may be double-quoted.

use std::path::{Path, PathBuf};

use super::BatchError;

/// What a recording is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Labelled calibration data.
    Calibration,
    /// Unlabelled data of the subject, used for alignment only.
    Unlabeled,
    /// Labelled data never used in calibration, scored in the report.
    Test,
    /// Data to classify.
    Predict,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "calibration" => Some(Role::Calibration),
            "unlabeled" | "unlabelled" => Some(Role::Unlabeled),
            "test" => Some(Role::Test),
            "predict" => Some(Role::Predict),
            _ => None,
        }
    }

    /// The role's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Role::Calibration => "calibration",
            Role::Unlabeled => "unlabeled",
            Role::Test => "test",
            Role::Predict => "predict",
        }
    }
}

/// One subject's work: its recordings by role, in manifest order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectJob {
    /// Subject identifier (a safe folder name).
    pub subject: String,
    /// Labelled calibration recordings.
    pub calibration: Vec<PathBuf>,
    /// Unlabelled recordings.
    pub unlabeled: Vec<PathBuf>,
    /// Held-out labelled recordings.
    pub test: Vec<PathBuf>,
    /// Recordings to classify.
    pub predict: Vec<PathBuf>,
    /// Why the job cannot run, found while it was assembled (a BIDS file with a malformed name,
    /// for example); each names its file.
    pub problems: Vec<String>,
}

impl SubjectJob {
    /// Every recording with its role.
    pub fn recordings(&self) -> impl Iterator<Item = (Role, &PathBuf)> {
        [
            (Role::Calibration, &self.calibration),
            (Role::Unlabeled, &self.unlabeled),
            (Role::Test, &self.test),
            (Role::Predict, &self.predict),
        ]
        .into_iter()
        .flat_map(|(role, files)| files.iter().map(move |path| (role, path)))
    }

    /// Why this job cannot run, if it cannot: no calibration recording, or a recording listed
    /// both for calibration and as held-out (its score would not be held out).
    pub fn problem(&self) -> Option<String> {
        if !self.problems.is_empty() {
            return Some(self.problems.join("; "));
        }
        if self.calibration.is_empty() {
            return Some("no calibration recording in the manifest".into());
        }
        let reused = self
            .test
            .iter()
            .find(|t| self.calibration.contains(t) || self.unlabeled.contains(t))?;
        Some(format!(
            "{}: listed as test and as calibration data; its score would not be held out",
            reused.display()
        ))
    }
}

/// Reads a manifest file.
pub fn read_manifest(path: &Path) -> Result<Vec<SubjectJob>, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BatchError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    parse_manifest(&text, base, path)
}

/// Parses manifest `text` (from `source`, for messages), resolving relative paths against
/// `base`. Subjects come out in order of first appearance.
pub fn parse_manifest(
    text: &str,
    base: &Path,
    source: &Path,
) -> Result<Vec<SubjectJob>, BatchError> {
    let error = |line: usize, reason: String| BatchError::Manifest {
        path: source.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| error(1, "empty: expected a header `subject,role,path`".into()))?;
    let header = split_fields(header).map_err(|r| error(header_line, r))?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                error(
                    header_line,
                    format!("no `{name}` column in the header (need subject, role, path)"),
                )
            })
    };
    let (subject_col, role_col, path_col) = (column("subject")?, column("role")?, column("path")?);
    let mut jobs: Vec<SubjectJob> = Vec::new();
    for (line, text) in lines {
        let fields = split_fields(text).map_err(|r| error(line, r))?;
        let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let subject = field(subject_col);
        check_subject(subject).map_err(|r| error(line, r))?;
        let role = Role::parse(field(role_col)).ok_or_else(|| {
            error(
                line,
                format!(
                    "role `{}`: expected calibration, unlabeled, test or predict",
                    field(role_col)
                ),
            )
        })?;
        if field(path_col).is_empty() {
            return Err(error(line, "empty path".into()));
        }
        let path = base.join(field(path_col));
        let index = match jobs.iter().position(|j| j.subject == subject) {
            Some(i) => i,
            None => {
                jobs.push(SubjectJob {
                    subject: subject.to_string(),
                    ..SubjectJob::default()
                });
                jobs.len() - 1
            }
        };
        let Some(job) = jobs.get_mut(index) else {
            continue;
        };
        let list = match role {
            Role::Calibration => &mut job.calibration,
            Role::Unlabeled => &mut job.unlabeled,
            Role::Test => &mut job.test,
            Role::Predict => &mut job.predict,
        };
        list.push(path);
    }
    if jobs.is_empty() {
        return Err(error(header_line, "no recordings listed".into()));
    }
    Ok(jobs)
}

/// A subject identifier becomes a folder name: letters, digits, `-`, `_` and `.` only, and not
/// a name that would leave the output folder.
fn check_subject(subject: &str) -> Result<(), String> {
    let safe = subject
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if subject.is_empty() || !safe || subject.starts_with('.') {
        return Err(format!(
            "subject `{subject}`: use letters, digits, '-', '_' and '.' only (it names a folder)"
        ));
    }
    Ok(())
}

/// Splits one CSV line; fields may be double-quoted (`""` inside quotes is one quote).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(field.trim().to_string());
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<SubjectJob>, BatchError> {
        parse_manifest(text, Path::new("/clinic"), Path::new("m.csv"))
    }

    #[test]
    fn groups_recordings_by_subject_and_role() {
        let jobs = parse(
            "# clinic export\npath,subject,role,notes\n\
             a/p1_cal.edf,P1,calibration,x\n\"b/p2, cal.edf\",P2,Calibration,\n\
             /abs/p1_test.edf,P1,test,\np1_rest.edf,P1,unlabelled,\n\np1_new.edf,P1,predict,\n",
        )
        .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].subject, "P1");
        assert_eq!(jobs[0].calibration, [PathBuf::from("/clinic/a/p1_cal.edf")]);
        assert_eq!(jobs[0].test, [PathBuf::from("/abs/p1_test.edf")]);
        assert_eq!(jobs[0].unlabeled, [PathBuf::from("/clinic/p1_rest.edf")]);
        assert_eq!(jobs[0].predict, [PathBuf::from("/clinic/p1_new.edf")]);
        assert_eq!(
            jobs[1].calibration,
            [PathBuf::from("/clinic/b/p2, cal.edf")]
        );
        assert_eq!(jobs[0].recordings().count(), 4);
        assert_eq!(jobs[0].problem(), None);
    }

    #[test]
    fn refuses_bad_lines_naming_file_and_line() {
        let cases = [
            ("", "empty"),
            ("subject,path\nP1,a.edf", "no `role` column"),
            ("subject,role,path\nP1,train,a.edf", "line 2: role `train`"),
            ("subject,role,path\n../x,test,a.edf", "subject `../x`"),
            ("subject,role,path\nP1,test,", "empty path"),
            ("subject,role,path\nP1,test,\"a.edf", "unterminated quote"),
            ("subject,role,path\n", "no recordings"),
        ];
        for (text, expected) in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.starts_with("m.csv"), "{message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn a_job_without_calibration_or_with_reused_test_data_has_a_problem() {
        let jobs =
            parse("subject,role,path\nP1,test,t.edf\nP2,calibration,c.edf\nP2,test,c.edf").unwrap();
        assert!(jobs[0].problem().unwrap().contains("no calibration"));
        assert!(jobs[1].problem().unwrap().contains("would not be held out"));
    }
}
