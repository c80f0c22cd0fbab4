//! A batch as a Slurm job array: one array task per shard, each running `eegadapt batch --shard
//! I/N` with the CPUs Slurm gave it, and a merge job that runs after the whole array ends
//! (`afterany`: a failed shard still gets its subjects reported as failed).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BatchError;

/// Folder of the scripts and the jobs' logs under a batch's output folder.
pub const SLURM_DIR: &str = "slurm";

/// What the job array runs.
#[derive(Debug, Clone)]
pub struct SlurmPlan {
    /// The `eegadapt` executable the jobs run (absolute).
    pub executable: PathBuf,
    /// The arguments every job shares (`batch --manifest ... --out ...`), without `--shard`,
    /// `--jobs` or `--merge`.
    pub batch_args: Vec<String>,
    /// Array tasks (shards).
    pub shards: usize,
    /// CPUs per array task.
    pub cpus_per_task: usize,
    /// Extra `#SBATCH` lines (for example `--partition=short`, `--time=02:00:00`).
    pub sbatch_options: Vec<String>,
    /// The batch's output folder (absolute); the scripts and logs go to its `slurm/`.
    pub out: PathBuf,
}

impl SlurmPlan {
    /// The plan for the batch this process was asked to spread: its own arguments `argv`
    /// (program name first) less the Slurm options (`--slurm`, `--submit`, `--sbatch-option`)
    /// and `--jobs`, run from the current folder (`#SBATCH --chdir`) by this executable, in
    /// `shards` array tasks of `cpus_per_task` CPUs; logs under `out/slurm/`.
    pub fn for_this_batch(
        argv: &[String],
        out: &Path,
        shards: usize,
        cpus_per_task: usize,
        sbatch_options: &[String],
    ) -> Result<Self, BatchError> {
        let io = |path: &Path, action, source| BatchError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        if shards == 0 || cpus_per_task == 0 {
            return Err(io(
                out,
                "cannot plan jobs",
                std::io::Error::other("shards and CPUs per task must be at least 1"),
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| io(out, "cannot create folder", e))?;
        let out = std::fs::canonicalize(out).map_err(|e| io(out, "cannot resolve", e))?;
        let cwd = std::env::current_dir().map_err(|e| io(Path::new("."), "cannot resolve", e))?;
        let executable = std::env::current_exe()
            .map_err(|e| io(Path::new("eegadapt"), "cannot find this executable", e))?;
        let mut options = vec![format!("--chdir={}", cwd.display())];
        options.extend(sbatch_options.iter().cloned());
        Ok(SlurmPlan {
            executable,
            batch_args: without_slurm_options(argv.get(1..).unwrap_or_default()),
            shards,
            cpus_per_task,
            sbatch_options: options,
            out,
        })
    }
}

/// `args` less the options that plan jobs rather than run them, and `--jobs` (each job takes
/// its CPUs from Slurm).
fn without_slurm_options(args: &[String]) -> Vec<String> {
    const WITH_VALUE: [&str; 3] = ["--slurm", "--sbatch-option", "--jobs"];
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if WITH_VALUE.contains(&arg.as_str()) {
            skip_next = true;
        } else if arg != "--submit" && !WITH_VALUE.iter().any(|o| arg.starts_with(&format!("{o}=")))
        {
            out.push(arg.clone());
        }
    }
    out
}

/// The two scripts, written.
#[derive(Debug, Clone)]
pub struct SlurmScripts {
    /// The job array.
    pub array: PathBuf,
    /// The merge job.
    pub merge: PathBuf,
}

/// Single quotes for the shell, with embedded quotes escaped.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl SlurmPlan {
    fn command(&self, extra: &str) -> String {
        let mut words = vec![quote(&self.executable.to_string_lossy())];
        words.extend(self.batch_args.iter().map(|a| quote(a)));
        format!("{} {extra}", words.join(" "))
    }

    fn header(&self, name: &str, log: &str) -> String {
        let mut text = format!(
            "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={}\n",
            self.out.join(SLURM_DIR).join(log).display()
        );
        for option in &self.sbatch_options {
            text.push_str(&format!("#SBATCH {option}\n"));
        }
        text
    }

    /// The array script's text.
    pub fn array_script(&self) -> String {
        let mut text = self.header("eegadapt-batch", "shard-%a.log");
        text.push_str(&format!(
            "#SBATCH --array=1-{}\n#SBATCH --cpus-per-task={}\nset -euo pipefail\n\
             exec {}\n",
            self.shards,
            self.cpus_per_task,
            self.command(&format!(
                "--shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"",
                self.shards
            ))
        ));
        text
    }

    /// The merge script's text.
    pub fn merge_script(&self) -> String {
        let mut text = self.header("eegadapt-merge", "merge.log");
        text.push_str(&format!(
            "#SBATCH --cpus-per-task=1\nset -euo pipefail\nexec {}\n",
            self.command("--merge")
        ));
        text
    }

    /// Writes both scripts into `out/slurm/`.
    pub fn write(&self) -> Result<SlurmScripts, BatchError> {
        let dir = self.out.join(SLURM_DIR);
        let io = |path: &Path, source| BatchError::Io {
            path: path.to_path_buf(),
            action: "cannot write",
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let scripts = SlurmScripts {
            array: dir.join("batch-array.sbatch"),
            merge: dir.join("batch-merge.sbatch"),
        };
        for (path, text) in [
            (&scripts.array, self.array_script()),
            (&scripts.merge, self.merge_script()),
        ] {
            crate::atomic::write_atomically(
                path,
                |f| std::io::Write::write_all(f, text.as_bytes()).map_err(|e| io(path, e)),
                |_, e| io(path, e),
            )?;
        }
        Ok(scripts)
    }
}

/// Job ids of a submitted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The array's job id.
    pub array: String,
    /// The merge job's id.
    pub merge: String,
}

/// Submits the array, then the merge job depending on it (`afterany`), with `sbatch`.
pub fn submit(scripts: &SlurmScripts) -> Result<Submitted, BatchError> {
    let array = sbatch(&scripts.array, &[])?;
    let merge = sbatch(&scripts.merge, &[format!("--dependency=afterany:{array}")])?;
    Ok(Submitted { array, merge })
}

fn sbatch(script: &Path, options: &[String]) -> Result<String, BatchError> {
    let fail = |reason: String| BatchError::Io {
        path: script.to_path_buf(),
        action: "sbatch failed",
        source: std::io::Error::other(reason),
    };
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(options)
        .arg(script)
        .output()
        .map_err(|e| fail(format!("cannot run sbatch: {e}")))?;
    if !output.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(format!("unexpected sbatch output {:?}", text.trim())));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SlurmPlan {
        SlurmPlan {
            executable: PathBuf::from("/opt/eegadapt"),
            batch_args: vec!["batch".into(), "--manifest".into(), "/data/it's.csv".into()],
            shards: 3,
            cpus_per_task: 4,
            sbatch_options: vec!["--time=01:00:00".into()],
            out: PathBuf::from("/scratch/out"),
        }
    }

    #[test]
    fn the_array_runs_one_shard_per_task_on_its_cpus() {
        let text = plan().array_script();
        assert!(text.starts_with("#!/bin/bash\n"));
        assert!(text.contains("#SBATCH --array=1-3\n"));
        assert!(text.contains("#SBATCH --cpus-per-task=4\n"));
        assert!(text.contains("#SBATCH --time=01:00:00\n"));
        assert!(text.contains("#SBATCH --output=/scratch/out/slurm/shard-%a.log\n"));
        assert!(text.contains(
            "exec '/opt/eegadapt' 'batch' '--manifest' '/data/it'\\''s.csv' --shard \"${SLURM_ARRAY_TASK_ID}/3\" --jobs \"${SLURM_CPUS_PER_TASK:-1}\""
        ));
    }

    /// `examples/slurm/` holds what `batch --slurm 8 --jobs 4 --sbatch-option --time=02:00:00`
    /// writes when run in /scratch/clinic with the paths below; regenerate with
    /// `EEGADAPT_BLESS=1 cargo test --lib slurm`.
    #[test]
    fn the_shipped_templates_are_what_the_tool_writes() {
        let plan = SlurmPlan {
            executable: PathBuf::from("/opt/eegadapt/bin/eegadapt"),
            batch_args: [
                "batch",
                "--manifest",
                "/scratch/clinic/manifest.csv",
                "--encoder",
                "/scratch/clinic/encoder",
                "--out",
                "/scratch/clinic/results",
            ]
            .map(String::from)
            .to_vec(),
            shards: 8,
            cpus_per_task: 4,
            sbatch_options: vec!["--chdir=/scratch/clinic".into(), "--time=02:00:00".into()],
            out: PathBuf::from("/scratch/clinic/results"),
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slurm");
        for (name, text) in [
            ("batch-array.sbatch", plan.array_script()),
            ("batch-merge.sbatch", plan.merge_script()),
        ] {
            let path = dir.join(name);
            if std::env::var_os("EEGADAPT_BLESS").is_some() {
                std::fs::write(&path, &text).expect("write template");
            }
            let shipped = std::fs::read_to_string(&path).expect("template");
            assert_eq!(shipped, text, "{name} is stale");
        }
    }

    #[test]
    fn the_jobs_run_this_batch_without_its_slurm_options() {
        let args: Vec<String> = [
            "batch",
            "--bids",
            "ds",
            "--slurm",
            "3",
            "--calibration",
            "run-1",
            "--submit",
            "--sbatch-option",
            "--time=1:00:00",
            "--jobs=4",
            "--sbatch-option=--mem=8G",
            "--out",
            "o",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            without_slurm_options(&args),
            [
                "batch",
                "--bids",
                "ds",
                "--calibration",
                "run-1",
                "--out",
                "o"
            ]
        );
    }

    #[test]
    fn the_merge_job_merges() {
        let text = plan().merge_script();
        assert!(text.contains("--merge\n"));
        assert!(!text.contains("--array"));
    }
}
