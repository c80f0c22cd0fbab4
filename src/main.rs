//! The `eegadapt` command line. Thin: parses arguments and calls the library.

mod cli;

use std::process::ExitCode;

/// Training allocates and frees megabyte tensors at every op; glibc's allocator hands each back
/// to the kernel and page-faults it in again, which cost a third of a training step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    eegadapt::allocator::keep_freed_memory();
    let result = cli::run();
    // For memory benchmarks: the peak, measured by the kernel, as the process ends.
    if std::env::var_os("EEGADAPT_PEAK_RSS").is_some() {
        if let Some(bytes) = eegadapt::allocator::peak_resident_bytes() {
            eprintln!("eegadapt: peak resident memory {bytes} bytes");
        }
    }
    match result {
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
