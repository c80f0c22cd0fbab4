//! Writing a file so that a crash never leaves a half-written one under its final name: the
//! bytes go to a new temporary file in the same folder, which is synced and then renamed, here
//! or by a [`Committer`]'s background thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

/// Writes through `write` into a temporary file beside `path`, then renames it over `path`.
///
/// `io_error(action, error)` turns a file-system failure into the caller's error type. On any
/// failure the temporary file is removed and an existing `path` is left untouched.
pub fn write_atomically<E>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
    io_error: impl Fn(&'static str, io::Error) -> E,
) -> Result<(), E> {
    let written = write_temporary(path, write, &io_error)?;
    written.commit().map_err(|f| io_error(f.action, f.error))
}

/// A file written to a temporary name beside the one it is to take, neither synced nor renamed
/// yet; dropped uncommitted, it is removed.
pub struct Written {
    file: Option<File>,
    temp: PathBuf,
    path: PathBuf,
}

impl Written {
    /// Syncs the file and renames it into place; on failure removes it.
    fn commit(mut self) -> Result<(), CommitFailure> {
        let failure = |action, error| CommitFailure {
            path: self.path.clone(),
            action,
            error,
        };
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| failure("cannot sync", e))?;
        }
        fs::rename(&self.temp, &self.path)
            .map_err(|e| failure("cannot rename the temporary file onto", e))?;
        // In place: nothing for `drop` to remove.
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes through `write` into a new temporary file beside `path` (see [`write_atomically`]),
/// for [`commit_in_order`] to put in place.
pub fn write_temporary<E>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
    io_error: &impl Fn(&'static str, io::Error) -> E,
) -> Result<Written, E> {
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
    // Removes the temporary file if writing fails.
    let mut written = Written {
        file: None,
        temp,
        path: path.to_path_buf(),
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out)?;
    let file = out
        .into_inner()
        .map_err(|e| io_error("cannot write", e.into_error()))?;
    written.file = Some(file);
    Ok(written)
}

/// Syncs and renames `files` in order, stopping at the first that fails (the later ones are
/// removed: a sidecar never lands without the table it describes). With `commits`, its thread
/// does this later and reports failures from [`Committer::finish`]; this returns at once.
pub fn commit_in_order(
    files: Vec<Written>,
    commits: Option<&Committer>,
) -> Result<(), CommitFailure> {
    let files = match commits {
        Some(commits) => match commits.queue(files) {
            Ok(()) => return Ok(()),
            // The committing thread is gone: commit here.
            Err(files) => files,
        },
        None => files,
    };
    files.into_iter().try_for_each(Written::commit)
}

/// A file whose sync or rename failed; it was not put in place (nor were the files after it
/// in its group).
#[derive(Debug)]
pub struct CommitFailure {
    /// The name the file was to take.
    pub path: PathBuf,
    /// What failed.
    pub action: &'static str,
    /// Why.
    pub error: io::Error,
}

impl std::fmt::Display for CommitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.action,
            self.error
        )
    }
}

/// Syncs and renames written files on a background thread, in the order they were handed over,
/// so that whoever computes the next output does not wait for the disk (a sync takes
/// milliseconds, more on network storage). A file reaches its name only once synced, as with
/// [`write_atomically`]; a crash before that leaves the old file, or none.
pub struct Committer {
    queue: Option<mpsc::Sender<Vec<Written>>>,
    worker: Option<thread::JoinHandle<Vec<CommitFailure>>>,
}

impl Committer {
    /// Starts the committing thread.
    pub fn spawn() -> io::Result<Committer> {
        let (queue, groups) = mpsc::channel::<Vec<Written>>();
        let worker = thread::Builder::new()
            .name("commit".into())
            .spawn(move || {
                groups
                    .into_iter()
                    .filter_map(|files| commit_in_order(files, None).err())
                    .collect()
            })?;
        Ok(Committer {
            queue: Some(queue),
            worker: Some(worker),
        })
    }

    fn queue(&self, files: Vec<Written>) -> Result<(), Vec<Written>> {
        match &self.queue {
            Some(queue) => queue.send(files).map_err(|e| e.0),
            None => Err(files),
        }
    }

    /// Waits until every file handed over is synced and in place; returns the failures.
    pub fn finish(mut self) -> Vec<CommitFailure> {
        self.stop()
    }

    fn stop(&mut self) -> Vec<CommitFailure> {
        drop(self.queue.take());
        match self.worker.take().map(thread::JoinHandle::join) {
            Some(Ok(failures)) => failures,
            // The thread panicked (it does not, short of a bug): nothing to report beyond it.
            Some(Err(_)) | None => Vec::new(),
        }
    }
}

impl Drop for Committer {
    /// Files handed over are still committed when the committer goes out of scope unfinished.
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_text(path: &Path, text: &str) -> io::Result<Written> {
        write_temporary(path, |f| f.write_all(text.as_bytes()), &|_, e| e)
    }

    fn queue_text(path: &Path, text: &str, commits: &Committer) {
        let written = write_text(path, text).expect("temporary written");
        commit_in_order(vec![written], Some(commits)).expect("queued");
    }

    #[test]
    fn committed_files_appear_in_order_once_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Committer::spawn().expect("thread");
        let paths: Vec<PathBuf> = (0..5).map(|i| dir.path().join(format!("f{i}"))).collect();
        for (i, p) in paths.iter().enumerate() {
            queue_text(p, &format!("text {i}"), &commits);
        }
        assert!(commits.finish().is_empty());
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(
                fs::read_to_string(p).expect("in place"),
                format!("text {i}")
            );
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 5);
    }

    #[test]
    fn a_failed_rename_stops_its_group_is_reported_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A folder where the file should go: the rename fails.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).expect("folder");
        fs::write(blocked.join("inside"), "x").expect("content");
        let commits = Committer::spawn().expect("thread");
        let group = vec![
            write_text(&blocked, "text").expect("temporary written"),
            write_text(&dir.path().join("after"), "after").expect("temporary written"),
        ];
        commit_in_order(group, Some(&commits)).expect("queued");
        queue_text(&dir.path().join("fine"), "ok", &commits);
        let failures = commits.finish();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].path, blocked);
        assert!(
            failures[0].to_string().contains("cannot rename"),
            "{}",
            failures[0]
        );
        assert!(blocked.is_dir());
        assert_eq!(
            fs::read_to_string(dir.path().join("fine")).expect("in place"),
            "ok"
        );
        let names: Vec<_> = fs::read_dir(dir.path()).expect("list").flatten().collect();
        assert_eq!(names.len(), 2, "temporary files left: {names:?}");
    }

    #[test]
    fn a_failed_write_or_an_uncommitted_file_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let failed = write_temporary(
            &path,
            |f| {
                f.write_all(b"partial")?;
                Err(io::Error::other("the writer gave up"))
            },
            &|_, e| e,
        );
        assert!(failed.is_err());
        drop(write_text(&path, "never committed").expect("written"));
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn dropping_the_committer_still_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        {
            let commits = Committer::spawn().expect("thread");
            queue_text(&path, "text", &commits);
        }
        assert_eq!(fs::read_to_string(&path).expect("in place"), "text");
    }
}
