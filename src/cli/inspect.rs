//! `eegadapt inspect`: what a file holds, for people (a table) or machines (JSON lines).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eegadapt::edf;
use eegadapt::pipeline::{inspect_json, write_inspection};

/// Arguments of `inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// EDF, EDF+ or BDF files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object per file (JSON lines) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also print the patient and recording identification fields (withheld by default).
    #[arg(long)]
    show_identity: bool,
}

/// Inspects every file; a file that fails is reported on stderr and the rest go on.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0;
    for path in &args.files {
        match edf::open(path) {
            Ok(file) => {
                let report = inspect_json(&file, args.show_identity);
                if args.json {
                    writeln!(out, "{report}")?;
                } else {
                    write_inspection(&mut out, &file, &report)?;
                }
            }
            Err(err) => {
                out.flush()?;
                eprintln!("eegadapt: {err}");
                failed += 1;
            }
        }
    }
    out.flush()?;
    Ok(super::exit_code(failed > 0))
}
