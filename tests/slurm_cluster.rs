//! `batch --slurm 3 --submit` on a real one-node Slurm cluster that the test starts (munged on a
//! private socket, slurmctld and slurmd in the foreground, from a slurm.conf in a temporary
//! folder) and stops by pid: the job array's three shards and the merge job (afterany) run, and
//! the merged summary equals a single-machine run's. It needs Debian's `slurmctld slurmd
//! slurm-client munge` and root; `.ci/run` installs them and runs it with `--ignored`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::batch_summary;

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Daemons this test started, stopped by pid (SIGTERM, then SIGKILL) when it ends.
struct Daemons(Vec<(&'static str, Child)>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
            eprintln!("stopped {name} (pid {pid})");
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(daemons: &mut Daemons, name: &'static str, command: &mut Command, log: &Path) {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = command
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    eprintln!("started {name} (pid {})", child.id());
    daemons.0.push((name, child));
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    started.elapsed()
}

fn output(command: &mut Command) -> String {
    let out = command.output().expect("run command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "starts munged, slurmctld and slurmd as root; .ci/run installs Slurm and runs it with --ignored"]
fn a_batch_runs_as_a_slurm_job_array_and_merges_like_one_machine() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let node = output(Command::new("hostname").arg("-s"))
        .trim()
        .to_string();
    assert!(!node.is_empty(), "no host name");
    let conf = d.join("slurm.conf");
    let socket = d.join("munge.sock");
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    std::fs::write(
        &conf,
        format!(
            "ClusterName=eegadapt-test\nSlurmctldHost={node}(127.0.0.1)\nSlurmUser=root\n\
             SlurmdUser=root\nSlurmctldPort={}\nSlurmdPort={}\nAuthType=auth/munge\n\
             AuthInfo=socket={}\nStateSaveLocation={}\nSlurmdSpoolDir={}\n\
             SlurmctldPidFile={}\nSlurmdPidFile={}\nProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\nReturnToService=2\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\nMpiDefault=none\nJobCompType=jobcomp/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             NodeName={node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            socket.display(),
            d.join("state").display(),
            d.join("spool").display(),
            d.join("slurmctld.pid").display(),
            d.join("slurmd.pid").display(),
        ),
    )
    .expect("slurm.conf");
    let mut daemons = Daemons(Vec::new());
    let path = |name: &str| d.join(name).to_string_lossy().into_owned();
    start(
        &mut daemons,
        "munged",
        Command::new("munged").args([
            "-F",
            "--force",
            &format!("--socket={}", socket.display()),
            &format!("--log-file={}", path("munged.log")),
            &format!("--pid-file={}", path("munged.pid")),
            &format!("--seed-file={}", path("munged.seed")),
        ]),
        &d.join("munged.out"),
    );
    wait_for("munged's socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let slurm = |program: &str| {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &conf);
        c
    };
    start(
        &mut daemons,
        "slurmctld",
        slurm("slurmctld").args(["-D", "-f"]).arg(&conf),
        &d.join("slurmctld.out"),
    );
    start(
        &mut daemons,
        "slurmd",
        slurm("slurmd").args(["-D", "-N", &node, "-f"]).arg(&conf),
        &d.join("slurmd.out"),
    );
    let up = wait_for("the node to be idle", Duration::from_secs(60), || {
        output(slurm("sinfo").args(["-h", "-o", "%t"])).trim() == "idle"
    });
    eprintln!("cluster up in {:.1} s", up.as_secs_f64());

    let manifest = d.join("clinic.csv");
    let run = |n: &str| project(&format!("data/eegmmidb/S001/S001R{n}.edf"));
    let mut text = String::from("subject,role,path\n");
    for subject in ["P1", "P2", "P3"] {
        text.push_str(&format!("{subject},calibration,{}\n", run("04").display()));
        text.push_str(&format!("{subject},test,{}\n", run("08").display()));
    }
    std::fs::write(&manifest, text).expect("manifest");
    let batch = |out: &Path, extra: &[&str]| {
        let mut c = slurm(env!("CARGO_BIN_EXE_eegadapt"));
        c.arg("batch")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--encoder")
            .arg(project("data/encoder"))
            .arg("--out")
            .arg(out)
            .args(extra);
        c.output().expect("run eegadapt")
    };
    let cluster = d.join("cluster");
    let submitted = batch(&cluster, &["--slurm", "3", "--submit", "--jobs", "1"]);
    let stdout = String::from_utf8_lossy(&submitted.stdout).into_owned();
    assert!(
        submitted.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    println!("{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("submitted job array"))
        .unwrap_or_else(|| panic!("no job ids: {stdout}"));
    // "submitted job array A (3 shards), merge job M (afterany)"
    let words: Vec<&str> = line.split_whitespace().collect();
    let (array, merge) = (words[3], words[8]);
    for id in [array, merge] {
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{line}");
    }
    let jobs = format!("{array},{merge}");
    let ran = wait_for(
        "the array and the merge job",
        Duration::from_secs(600),
        || {
            output(slurm("squeue").args(["-h", "-j", &jobs]))
                .trim()
                .is_empty()
        },
    );
    println!(
        "job array {array} and merge job {merge} finished in {:.1} s",
        ran.as_secs_f64()
    );
    for log in ["shard-1.log", "shard-2.log", "shard-3.log", "merge.log"] {
        let text = std::fs::read_to_string(cluster.join("slurm").join(log)).unwrap_or_default();
        println!("--- {log}\n{text}");
    }
    let merged = std::fs::read_to_string(cluster.join("summary.csv")).expect("merged summary");
    println!("merged summary.csv:\n{merged}");

    let single = d.join("single");
    assert!(batch(&single, &["--jobs", "2"]).status.success());
    assert_eq!(batch_summary(&cluster), batch_summary(&single));
    assert!(batch_summary(&cluster)
        .iter()
        .all(|r| r["status"] == "done"));
    drop(daemons);
    println!(
        "Slurm test wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
