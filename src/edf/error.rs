//! Errors of the EDF/BDF reader and writer.

use std::path::PathBuf;

/// Why an EDF/EDF+/BDF file could not be read or written.
///
/// Every variant names the file; header problems also name the field and the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdfError {
    /// The operating system refused to open, map or write the file.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start like an EDF or BDF file.
    #[error("{}: not an EDF/BDF file: {reason}", path.display())]
    NotEdf {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// A header field holds a value that cannot be used.
    #[error("{}: header field `{field}` = \"{value}\": {reason}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The header field, e.g. `ns` or `signal 3 (C3..) samples_per_record`.
        field: String,
        /// The raw text of the field (control characters escaped).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is shorter than its header requires.
    #[error("{}: truncated: {reason}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// An EDF+ annotation list (TAL) cannot be parsed.
    #[error("{}: annotation signal {signal}, data record {record}: {reason}", path.display())]
    Annotation {
        /// The file.
        path: PathBuf,
        /// Index of the annotation signal among all signals.
        signal: usize,
        /// Index of the data record.
        record: usize,
        /// What is wrong with the TAL.
        reason: String,
    },
    /// A request for samples outside the recording.
    #[error("{}: {what}", path.display())]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The request and the available range.
        what: String,
    },
    /// A recording cannot be written as asked.
    #[error("{}: cannot write: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Result type of the EDF module.
pub type Result<T> = std::result::Result<T, EdfError>;
