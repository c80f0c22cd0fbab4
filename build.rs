//! Tells the integration tests whether the full shared corpus is beside the checkout.
//!
//! With `$EEGADAPT_SHARED` or `../shared/data` present, `cfg(shared_corpus)` is set and the
//! full-corpus suites run; without it they are marked ignored, so `cargo test` on a fresh clone
//! lists them by name as skipped instead of failing or passing silently.

use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(shared_corpus)");
    println!("cargo:rerun-if-env-changed=EEGADAPT_SHARED");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let shared = match std::env::var_os("EEGADAPT_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => manifest.join("../shared"),
    };
    if shared.join("data").is_dir() {
        println!("cargo:rustc-cfg=shared_corpus");
        println!("cargo:rerun-if-changed={}", shared.display());
    }
    // Without the corpus nothing is watched: a path that does not exist would rerun this script
    // (and rebuild the crate) on every build. After adding `../shared`, set `EEGADAPT_SHARED` or
    // touch build.rs.
}
