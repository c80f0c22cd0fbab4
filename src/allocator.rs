//! Allocator settings for training, and the process's peak memory.
//!
//! The `eegadapt` binary and the benches use mimalloc as the global allocator. Training frees and
//! reallocates megabyte tensors at every op; mimalloc by default hands freed memory back to the
//! kernel after a second, after which every reuse page-faults and the kernel zeroes the pages
//! again (a tenth of a training step on the 2-core machine). Keeping freed memory mapped trades
//! that for a resident size that stays at its high-water mark.
//!
//! mimalloc also asks the kernel for transparent huge pages (`MADV_HUGEPAGE`) on its arenas.
//! Where the kernel compacts memory to satisfy that advice (`defrag` set to `madvise`, Debian's
//! default), each first touch of a 2 MiB region stalls: `features` over 36 recordings spent
//! 1.5 s of its 3.2 s in the kernel, against 0.27 s with the advice turned off.

/// mimalloc v3's `mi_option_purge_delay` (position in `enum mi_option_e`, include/mimalloc.h).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its documented default, in milliseconds: seeing it confirms the option's position.
const PURGE_DELAY_DEFAULT: std::os::raw::c_long = 1000;
/// mimalloc v3's `mi_option_allow_thp` (same enum); its default is 1 (allowed) on Linux.
const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Tells mimalloc never to return freed memory to the kernel, and not to ask for transparent
/// huge pages, unless the user set `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP` (or the
/// options are not where mimalloc v3 puts them). Call it first thing in `main`, before other
/// threads start: mimalloc's option setters are not thread safe. Without mimalloc as the global
/// allocator this changes nothing.
pub fn keep_freed_memory() {
    // SAFETY: plain FFI calls on mimalloc's option table, from the caller's single thread.
    unsafe {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
            && libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT
        {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none()
            && libmimalloc_sys::mi_option_get(ALLOW_THP) == 1
        {
            libmimalloc_sys::mi_option_set(ALLOW_THP, 0);
            // mimalloc reserved (and advised) its first arena before `main`: the process-wide
            // switch also covers that one, as mimalloc itself does when the option is set from
            // the environment.
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
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
