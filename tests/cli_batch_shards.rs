//! `batch --shard I/N` and `batch --merge` through the binary: three shards (their manifest in
//! another order) merged give the summary a single machine writes; a shard that reported nothing
//! leaves its subjects failed, naming it; `--slurm N` writes the job array and merge scripts.

use std::path::{Path, PathBuf};

use crate::common::batch_summary;

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

use crate::common::run_batch as batch;

fn write_manifest(path: &Path, lines: &[String]) {
    let text = format!("subject,role,path\n{}\n", lines.join("\n"));
    std::fs::write(path, text).expect("manifest");
}

#[test]
fn three_shards_merged_equal_one_machine_and_a_missing_shard_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |n: &str| project(&format!("data/eegmmidb/S001/S001R{n}.edf"));
    let mut lines: Vec<String> = Vec::new();
    for subject in ["P1", "P2", "P3", "P4"] {
        lines.push(format!("{subject},calibration,{}", run("04").display()));
        lines.push(format!("{subject},test,{}", run("08").display()));
    }
    lines.push("BAD,calibration,no_such_file.edf".into());
    let manifest = dir.path().join("clinic.csv");
    write_manifest(&manifest, &lines);
    let single = dir.path().join("single");
    assert_eq!(
        batch(&manifest, &single, &["--jobs", "2"]).status.code(),
        Some(1)
    );

    // The shards read the manifest in another order: each still gets the same subjects.
    let reordered = dir.path().join("reordered.csv");
    lines.reverse();
    write_manifest(&reordered, &lines);
    let sharded = dir.path().join("sharded");
    for shard in ["1/3", "2/3", "3/3"] {
        let out = batch(&reordered, &sharded, &["--shard", shard, "--jobs", "1"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let rows = stdout
            .lines()
            .filter(|l| l.starts_with('P') || l.starts_with("BAD"))
            .count();
        assert!((1..=2).contains(&rows), "shard {shard}: {stdout}");
        assert!(sharded
            .join(format!("shards/shard-{}-of-3.json", &shard[..1]))
            .is_file());
    }
    assert!(
        !sharded.join("summary.json").exists(),
        "shards write no summary"
    );
    let merged = batch(&manifest, &sharded, &["--merge"]);
    assert_eq!(merged.status.code(), Some(1), "BAD fails");
    assert_eq!(batch_summary(&sharded), batch_summary(&single));
    let index = std::fs::read_to_string(sharded.join("index.html")).expect("index.html");
    for subject in ["P1", "P2", "P3", "P4"] {
        let link = format!("href=\"subjects/{subject}/report.html\"");
        assert!(index.contains(&link), "{subject} not linked");
    }
    assert_eq!(
        std::fs::read_to_string(single.join("index.html")).expect("single index"),
        index
    );

    // Shard 2 lost: its subjects are failed, naming the shard; the others are kept.
    std::fs::remove_file(sharded.join("shards/shard-2-of-3.json")).expect("remove");
    assert_eq!(
        batch(&manifest, &sharded, &["--merge"]).status.code(),
        Some(1)
    );
    let rows = batch_summary(&sharded);
    let lost: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["error"].as_str().is_some_and(|e| e.contains("shard 2/3")))
        .collect();
    assert!(!lost.is_empty());
    assert!(rows.iter().filter(|r| r["status"] == "done").count() >= 2);
}

#[test]
fn slurm_writes_an_array_of_shards_and_a_merge_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("clinic.csv");
    let r04 = project("data/eegmmidb/S001/S001R04.edf");
    write_manifest(&manifest, &[format!("P1,calibration,{}", r04.display())]);
    let out = dir.path().join("out");
    let run = batch(
        &manifest,
        &out,
        &[
            "--slurm",
            "3",
            "--jobs",
            "4",
            "--sbatch-option",
            "--time=00:30:00",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let array = std::fs::read_to_string(out.join("slurm/batch-array.sbatch")).expect("array");
    assert!(array.contains("#SBATCH --array=1-3"), "{array}");
    assert!(array.contains("#SBATCH --cpus-per-task=4"), "{array}");
    assert!(array.contains("#SBATCH --time=00:30:00"), "{array}");
    assert!(
        array.contains("--shard \"${SLURM_ARRAY_TASK_ID}/3\""),
        "{array}"
    );
    let merge = std::fs::read_to_string(out.join("slurm/batch-merge.sbatch")).expect("merge");
    assert!(merge.contains("--merge"), "{merge}");
    assert!(!out.join("subjects").exists(), "--slurm runs nothing here");
}
