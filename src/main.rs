//! The `eegadapt` command line. Thin: parses arguments and calls the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            if cli::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("eegadapt: {}", cli::one_line(&err));
            ExitCode::from(2)
        }
    }
}
