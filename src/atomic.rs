//! Writing a file so that a crash never leaves a half-written one under its final name: the
//! bytes go to a new temporary file in the same folder, which is synced and then renamed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// Writes through `write` into a temporary file beside `path`, then renames it over `path`.
///
/// `io_error(action, error)` turns a file-system failure into the caller's error type. On any
/// failure the temporary file is removed and an existing `path` is left untouched.
pub fn write_atomically<E>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
    io_error: impl Fn(&'static str, io::Error) -> E,
) -> Result<(), E> {
    let name = path.file_name().ok_or_else(|| {
        io_error(
            "cannot write",
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        )
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // `create_new` with a per-attempt suffix: concurrent writers never share a temporary file.
    let mut attempt = 0;
    let (temp, file) = loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
        let temp = folder.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(io_error("cannot create a temporary file", e)),
        }
    };
    let result = (|| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| io_error("cannot write", e.into_error()))?;
        file.sync_all().map_err(|e| io_error("cannot sync", e))?;
        fs::rename(&temp, path).map_err(|e| io_error("cannot rename the temporary file onto", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
