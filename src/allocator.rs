//! Allocator settings for training, and the process's peak memory.
//!
//! The `eegadapt` binary and the benches use mimalloc as the global allocator. Training frees and
//! reallocates megabyte tensors at every op; mimalloc by default hands freed memory back to the
//! kernel after a second, after which every reuse page-faults and the kernel zeroes the pages
//! again (a tenth of a training step on the 2-core machine). Keeping freed memory mapped trades
//! that for a resident size that stays at its high-water mark.

/// mimalloc v3's `mi_option_purge_delay` (position in `enum mi_option_e`, include/mimalloc.h).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its documented default, in milliseconds: seeing it confirms the option's position.
const PURGE_DELAY_DEFAULT: std::os::raw::c_long = 1000;

/// Tells mimalloc never to return freed memory to the kernel, unless the user set
/// `MIMALLOC_PURGE_DELAY` (or the option is not where mimalloc v3 puts it). Call it first
/// thing in `main`, before other threads start: mimalloc's option setters are not thread safe.
/// Without mimalloc as the global allocator this changes nothing.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain FFI calls on mimalloc's option table, from the caller's single thread.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// The process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`), where the
/// system reports it (Linux).
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
