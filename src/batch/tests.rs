use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn job(dir: &Path, subject: &str, calibration: &[&str]) -> SubjectJob {
    let calibration = calibration
        .iter()
        .map(|name| {
            let path = dir.join(name);
            if !path.exists() {
                std::fs::write(&path, name.as_bytes()).unwrap();
            }
            path
        })
        .collect();
    SubjectJob {
        subject: subject.into(),
        calibration,
        ..SubjectJob::default()
    }
}

fn outcome(epochs: usize) -> Outcome {
    Outcome {
        calibration_epochs: epochs,
        strategy: "population".into(),
        ..Outcome::default()
    }
}

#[test]
fn errors_and_panics_stay_with_their_subject() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let jobs = vec![
        job(inputs.path(), "A", &["a.edf"]),
        job(inputs.path(), "B", &["b.edf"]),
        job(inputs.path(), "C", &["c.edf"]),
        job(inputs.path(), "D", &[]),
        SubjectJob {
            subject: "E".into(),
            calibration: vec![inputs.path().join("missing.edf")],
            ..SubjectJob::default()
        },
    ];
    let seen = AtomicUsize::new(0);
    let results = run_subjects(
        &jobs,
        out.path(),
        "ctx",
        |job, dir| match job.subject.as_str() {
            "A" => {
                std::fs::write(dir.join("model"), b"weights").unwrap();
                Ok(outcome(15))
            }
            "B" => Err("b.edf: not an EDF file".into()),
            _ => panic!("bug in C"),
        },
        |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        },
    );
    assert_eq!(seen.load(Ordering::Relaxed), 5);
    let status: Vec<Status> = results.iter().map(|r| r.status).collect();
    use Status::*;
    assert_eq!(status, [Done, Failed, Failed, Failed, Failed]);
    assert_eq!(results[0].outcome, Some(outcome(15)));
    let errors: Vec<String> = results.iter().filter_map(|r| r.error.clone()).collect();
    assert!(errors[0].contains("not an EDF file"));
    assert!(errors[1].contains("internal error") && errors[1].contains("bug in C"));
    assert!(errors[2].contains("no calibration recording"));
    assert!(errors[3].contains("missing.edf"));
    assert!(subject_dir(out.path(), "A").join(DONE_MARKER).is_file());
    for failed in ["B", "C"] {
        assert!(!subject_dir(out.path(), failed).join(DONE_MARKER).exists());
    }

    write_summary(out.path(), &results).unwrap();
    let csv = std::fs::read_to_string(out.path().join(SUMMARY_CSV)).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("A,done,15,population,"));
    assert!(csv.contains("B,failed,"));
    let json: Vec<SubjectResult> =
        serde_json::from_str(&std::fs::read_to_string(out.path().join(SUMMARY_JSON)).unwrap())
            .unwrap();
    assert_eq!(json, results);
}

#[test]
fn reruns_skip_finished_subjects_until_an_input_or_the_context_changes() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let jobs = vec![
        job(inputs.path(), "A", &["a.edf"]),
        job(inputs.path(), "B", &["b.edf"]),
    ];
    let calls = AtomicUsize::new(0);
    let work = |_: &SubjectJob, _: &Path| {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(outcome(8))
    };
    let statuses = |context: &str| -> Vec<Status> {
        run_subjects(&jobs, out.path(), context, work, |_| {})
            .iter()
            .map(|r| r.status)
            .collect()
    };
    use Status::*;
    assert_eq!(statuses("ctx"), [Done, Done]);
    assert_eq!(statuses("ctx"), [UpToDate, UpToDate]);
    assert_eq!(calls.load(Ordering::Relaxed), 2);

    std::fs::write(inputs.path().join("b.edf"), b"new bytes").unwrap();
    assert_eq!(statuses("ctx"), [UpToDate, Done]);
    assert_eq!(statuses("other encoder"), [Done, Done]);
    assert_eq!(calls.load(Ordering::Relaxed), 5);

    // An interrupted run leaves no marker: the subject is done again.
    std::fs::remove_file(subject_dir(out.path(), "A").join(DONE_MARKER)).unwrap();
    assert_eq!(statuses("other encoder"), [Done, UpToDate]);
}

#[test]
fn csv_fields_with_separators_are_quoted() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a, b"), "\"a, b\"");
    assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
}
