//! Reading (and writing) EDF, EDF+ and BDF recordings.
//!
//! [`open`] maps a file and validates its header; [`read_recording`] decodes it whole into a
//! [`Recording`]. Deviations from the specification that established readers tolerate are
//! read with a warning (`Recording::warnings`); anything that would make the samples ambiguous
//! is an [`EdfError`] naming the file, the field and the value.

mod error;
mod file;
mod header;
pub mod labels;
mod recording;
pub mod tal;
pub mod writer;
pub use writer::{write_edf, WriteOptions};

pub use error::{EdfError, Result};
pub use file::{open, read_recording, EdfFile};
pub use header::Header;
pub use recording::{
    Annotation, Channel, ChannelKind, Format, Identity, Recording, Segment, StartTime,
};
