//! Feature tables on disk: Parquet (through polars) plus a JSON sidecar with the configuration,
//! its hash, the source files' SHA-256 and the crate version.
//!
//! Parquet layout, one row per epoch:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `subject`, `recording` | string | identifiers (`subject` is a pseudonym when de-identified) |
//! | `run` | int32, nullable | EEGMMIDB-style run number |
//! | `epoch` | uint32 | index of the epoch within its recording |
//! | `onset_s` | float64 | event onset, seconds from the first sample |
//! | `label` | string, nullable | class name (`null`: unlabelled) |
//! | `class_index` | int32, nullable | index of `label` in the task's classes |
//! | `log_psd` | `list<float64>` | log10 PSD, channel-major (`channels x freqs` of the sidecar) |
//! | `log_band_power` | `list<float64>` | log10 band power, `channels x bands` |
//! | `rel_band_power` | `list<float64>` | relative band power, `channels x bands` |
//! | `cov_<band>` | `list<float64>` | per covariance band, the upper triangle (diagonal included) of the `channels x channels` covariance, row by row: `channels (channels + 1) / 2` values (`numpy.triu_indices` order) |
//! | `evoked` | `list<float64>` | slow time-locked waveform, `channels x evoked_times` (when configured) |
//!
//! Every write goes to a temporary file in the target folder and is renamed into place; the
//! sidecar is written last, so a table without a matching sidecar is never taken as finished.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::atomic::{commit_in_order, write_atomically, write_temporary, Committer, Written};
use crate::features::{hex, FeatureMeta, FeatureRow, FeatureSet};

/// A Parquet writer with LZ4 (`LZ4_RAW`) compression. The columns are mostly f64 features,
/// which entropy coding barely shrinks: on the 36 EEGMMIDB left/right tables, polars' default
/// zstd made files 22 % smaller (38 MB against 49 MB) but took a tenth of the whole `features`
/// run, at level 1 as at level 3.
fn table_writer<W: Write>(f: W) -> ParquetWriter<W> {
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Lz4Raw)
        .with_statistics(StatisticsOptions::empty())
        .set_parallel(false)
}

/// Why a feature table cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// File system error.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed, or a column is missing or of the wrong type.
    #[error("{}: {reason}", path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The sidecar cannot be parsed.
    #[error("{}: invalid sidecar: {reason}", path.display())]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The table was built with another configuration than the consumer expects.
    #[error("{}: built with feature config {found}, expected {expected}; recompute the features with the same task and settings", path.display())]
    ConfigMismatch {
        /// The sidecar.
        path: PathBuf,
        /// Hash the consumer expects.
        expected: String,
        /// Hash in the sidecar.
        found: String,
    },
}

fn io_error(path: &Path) -> impl Fn(&'static str, std::io::Error) -> StoreError + '_ {
    move |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The sidecar of a Parquet file: same name, `.json` extension.
pub fn sidecar_path(parquet: &Path) -> PathBuf {
    parquet.with_extension("json")
}

/// SHA-256 (hex) of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot open",
        source,
    })?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    })?;
    Ok(hex(&hasher.finalize()))
}

/// A `list<f64>` column, one list per row: built in one values buffer, without a series per row.
fn list_column<'a>(name: &str, lists: impl ExactSizeIterator<Item = &'a [f64]> + Clone) -> Column {
    let values: usize = lists.clone().map(<[f64]>::len).sum();
    let mut builder = ListPrimitiveChunkedBuilder::<Float64Type>::new(
        name.into(),
        lists.len(),
        values,
        DataType::Float64,
    );
    for list in lists {
        builder.append_slice(list);
    }
    builder.finish().into_series().into_column()
}

/// The upper triangle (diagonal included) of the row-major `n x n` matrix `m`, row by row; `m`
/// itself when it is not `n x n`.
fn upper_triangle(m: &[f64], n: usize) -> Vec<f64> {
    if m.len() != n * n {
        return m.to_vec();
    }
    m.chunks_exact(n)
        .enumerate()
        .flat_map(|(i, row)| row.get(i..).unwrap_or_default().iter().copied())
        .collect()
}

/// The symmetric `n x n` matrix whose upper triangle [`upper_triangle`] stored in `t`; `t` itself
/// when it holds another number of values (a whole matrix, as tables written by earlier builds
/// stored it).
fn from_upper_triangle(t: Vec<f64>, n: usize) -> Vec<f64> {
    if t.len() != n * (n + 1) / 2 || t.len() == n * n {
        return t;
    }
    let mut m = vec![0.0; n * n];
    let mut at = 0;
    for i in 0..n {
        for j in i..n {
            let v = t.get(at).copied().unwrap_or(f64::NAN);
            m[i * n + j] = v;
            m[j * n + i] = v;
            at += 1;
        }
    }
    m
}

fn table(set: &FeatureSet) -> PolarsResult<DataFrame> {
    let rows = &set.rows;
    let classes = &set.meta.task.classes;
    let mut columns = vec![
        Series::new(
            "subject".into(),
            rows.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "recording".into(),
            rows.iter()
                .map(|r| r.recording.as_str())
                .collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "run".into(),
            rows.iter()
                .map(|r| r.run.map(|v| v as i32))
                .collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "epoch".into(),
            rows.iter().map(|r| r.epoch as u32).collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "onset_s".into(),
            rows.iter().map(|r| r.onset_s).collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "label".into(),
            rows.iter()
                .map(|r| r.label.and_then(|l| classes.get(l)).map(String::as_str))
                .collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "class_index".into(),
            rows.iter()
                .map(|r| r.label.map(|l| l as i32))
                .collect::<Vec<_>>(),
        )
        .into_column(),
        list_column("log_psd", rows.iter().map(|r| r.log_psd.as_slice())),
        list_column(
            "log_band_power",
            rows.iter().map(|r| r.log_band_power.as_slice()),
        ),
        list_column(
            "rel_band_power",
            rows.iter().map(|r| r.rel_band_power.as_slice()),
        ),
    ];
    let n = set.meta.channels.len();
    for (b, band) in set.meta.config.covariance_bands.iter().enumerate() {
        let triangles: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| upper_triangle(r.covariances.get(b).map_or(&[][..], Vec::as_slice), n))
            .collect();
        let name = format!("cov_{}", band.name);
        columns.push(list_column(&name, triangles.iter().map(Vec::as_slice)));
    }
    if set.meta.config.evoked.is_some() {
        columns.push(list_column(
            "evoked",
            rows.iter().map(|r| r.evoked.as_slice()),
        ));
    }
    DataFrame::new(rows.len(), columns)
}

/// Writes `set` as `parquet` plus its sidecar (temporary files and renames; sidecar last).
pub fn write_feature_set(parquet: &Path, set: &FeatureSet) -> Result<(), StoreError> {
    write_feature_set_via(parquet, set, None)
}

/// [`write_feature_set`], with the syncs and renames left to `commits` when given (in order:
/// the sidecar, which marks the table complete, lands only after the table).
pub fn write_feature_set_via(
    parquet: &Path,
    set: &FeatureSet,
    commits: Option<&Committer>,
) -> Result<(), StoreError> {
    let mut df = table(set).map_err(|e| StoreError::Table {
        path: parquet.to_path_buf(),
        reason: e.to_string(),
    })?;
    let table = write_temporary(
        parquet,
        |f| {
            table_writer(f)
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| StoreError::Table {
                    path: parquet.to_path_buf(),
                    reason: e.to_string(),
                })
        },
        &io_error(parquet),
    )?;
    let sidecar = write_sidecar_temporary(parquet, &set.meta)?;
    commit_in_order(vec![table, sidecar], commits).map_err(|f| io_error(&f.path)(f.action, f.error))
}

/// Writes a feature table from `parts` (tables of consecutive rows with the same columns, as
/// [`crate::features::pieces::Pieces`] yields them), one Parquet row group per part, so that
/// memory holds one part at a time; `edit` is applied to each part first (de-identification).
/// The sidecar gets the first part's metadata with every part's drop log. Written to temporary
/// files and renamed, sidecar last; on an error nothing replaces an existing table.
pub fn write_feature_parts<E: From<StoreError>>(
    parquet: &Path,
    parts: impl Iterator<Item = Result<FeatureSet, E>>,
    edit: impl Fn(&mut FeatureSet),
) -> Result<FeatureMeta, E> {
    let table_error = |e: PolarsError| {
        E::from(StoreError::Table {
            path: parquet.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let mut meta: Option<FeatureMeta> = None;
    write_atomically(
        parquet,
        |f| {
            let mut parts = parts.map(|part| {
                let mut part = part?;
                edit(&mut part);
                let df = table(&part).map_err(table_error)?;
                Ok::<_, E>((df, part.meta))
            });
            let no_parts = || {
                E::from(StoreError::Table {
                    path: parquet.to_path_buf(),
                    reason: "no parts to write".into(),
                })
            };
            let (df, first) = parts.next().ok_or_else(no_parts)??;
            let mut writer = table_writer(f).batched(df.schema()).map_err(table_error)?;
            writer.write_batch(&df).map_err(table_error)?;
            let mut all = first;
            for part in parts {
                let (df, mut part_meta) = part?;
                writer.write_batch(&df).map_err(table_error)?;
                all.drop_log.append(&mut part_meta.drop_log);
            }
            meta = Some(all);
            writer.finish().map(|_| ()).map_err(table_error)
        },
        |action, e| E::from(io_error(parquet)(action, e)),
    )?;
    let meta = meta.ok_or_else(|| {
        E::from(StoreError::Table {
            path: parquet.to_path_buf(),
            reason: "no parts".into(),
        })
    })?;
    write_sidecar(parquet, &meta)?;
    Ok(meta)
}

/// Writes the JSON sidecar of the table `parquet` through a temporary file.
fn write_sidecar(parquet: &Path, meta: &FeatureMeta) -> Result<(), StoreError> {
    let sidecar = write_sidecar_temporary(parquet, meta)?;
    commit_in_order(vec![sidecar], None).map_err(|f| io_error(&f.path)(f.action, f.error))
}

fn write_sidecar_temporary(parquet: &Path, meta: &FeatureMeta) -> Result<Written, StoreError> {
    let sidecar = sidecar_path(parquet);
    let json = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Sidecar {
        path: sidecar.clone(),
        reason: e.to_string(),
    })?;
    let error = io_error(&sidecar);
    write_temporary(
        &sidecar,
        |f| f.write_all(&json).map_err(|e| error("cannot write", e)),
        &error,
    )
}

/// Reads only the sidecar of a feature table.
pub fn read_meta(parquet: &Path) -> Result<FeatureMeta, StoreError> {
    let path = sidecar_path(parquet);
    let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
        path: path.clone(),
        action: "cannot read",
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| StoreError::Sidecar {
        path,
        reason: e.to_string(),
    })
}

/// Reads a feature table back, refusing it when its configuration hash is not `expected_hash`.
pub fn read_feature_set_expecting(
    parquet: &Path,
    expected_hash: &str,
) -> Result<FeatureSet, StoreError> {
    let meta = read_meta(parquet)?;
    if meta.config_hash != expected_hash {
        return Err(StoreError::ConfigMismatch {
            path: sidecar_path(parquet),
            expected: expected_hash.to_string(),
            found: meta.config_hash,
        });
    }
    read_feature_set(parquet)
}

/// Reads a feature table and its sidecar back into a [`FeatureSet`].
pub fn read_feature_set(parquet: &Path) -> Result<FeatureSet, StoreError> {
    let meta = read_meta(parquet)?;
    let table_error = |reason: String| StoreError::Table {
        path: parquet.to_path_buf(),
        reason,
    };
    let file = File::open(parquet).map_err(|source| StoreError::Io {
        path: parquet.to_path_buf(),
        action: "cannot open",
        source,
    })?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| table_error(e.to_string()))?;
    let rows = rows_of(&df, &meta).map_err(|e| table_error(e.to_string()))?;
    Ok(FeatureSet { meta, rows })
}

fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<Vec<f64>>> {
    df.column(name)?
        .list()?
        .amortized_iter()
        .map(|s| match s {
            Some(s) => Ok(s
                .as_ref()
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect()),
            None => Ok(Vec::new()),
        })
        .collect()
}

fn rows_of(df: &DataFrame, meta: &FeatureMeta) -> PolarsResult<Vec<FeatureRow>> {
    let subject: Vec<String> = df
        .column("subject")?
        .str()?
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect();
    let recording: Vec<String> = df
        .column("recording")?
        .str()?
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect();
    let run: Vec<Option<i32>> = df.column("run")?.i32()?.iter().collect();
    let epoch: Vec<u32> = df
        .column("epoch")?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let onset: Vec<f64> = df
        .column("onset_s")?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let class: Vec<Option<i32>> = df.column("class_index")?.i32()?.iter().collect();
    let psd = floats(df, "log_psd")?;
    let band = floats(df, "log_band_power")?;
    let rel = floats(df, "rel_band_power")?;
    let covs: Vec<Vec<Vec<f64>>> = meta
        .config
        .covariance_bands
        .iter()
        .map(|b| {
            let n = meta.channels.len();
            let stored = floats(df, &format!("cov_{}", b.name))?;
            Ok(stored
                .into_iter()
                .map(|t| from_upper_triangle(t, n))
                .collect())
        })
        .collect::<PolarsResult<_>>()?;
    let evoked = match meta.config.evoked {
        Some(_) => floats(df, "evoked")?,
        None => vec![Vec::new(); df.height()],
    };
    Ok((0..df.height())
        .map(|i| FeatureRow {
            subject: subject[i].clone(),
            recording: recording[i].clone(),
            run: run[i].map(|r| r as u32),
            epoch: epoch[i] as usize,
            onset_s: onset[i],
            label: class[i].map(|c| c as usize),
            log_psd: psd[i].clone(),
            log_band_power: band[i].clone(),
            rel_band_power: rel[i].clone(),
            covariances: covs.iter().map(|c| c[i].clone()).collect(),
            evoked: evoked[i].clone(),
        })
        .collect())
}

/// True when `parquet` and its sidecar exist and were built with `config_hash` from a source
/// whose SHA-256 is `source_sha256`: a rerun can skip this recording.
pub fn is_up_to_date(parquet: &Path, config_hash: &str, source_sha256: &str) -> bool {
    parquet.is_file()
        && read_meta(parquet).is_ok_and(|m| {
            m.config_hash == config_hash && m.sources.iter().any(|s| s.sha256 == source_sha256)
        })
}

/// Replaces subject identifiers by a pseudonym (first 12 hex digits of their SHA-256) and drops
/// source file names; the sources' SHA-256 stay so that provenance can still be checked.
pub fn deidentify(set: &mut FeatureSet) {
    let pseudonym = |s: &str| format!("sub-{}", &hex(&Sha256::digest(s.as_bytes()))[..12]);
    for row in &mut set.rows {
        row.subject = pseudonym(&row.subject);
        row.recording = pseudonym(&row.recording);
    }
    for source in &mut set.meta.sources {
        source.name.clear();
    }
    set.meta.deidentified = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covariances_are_stored_as_upper_triangles_and_rebuilt() {
        let n = 3;
        let m = vec![4.0, 1.0, 2.0, 1.0, 5.0, 3.0, 2.0, 3.0, 6.0];
        let t = upper_triangle(&m, n);
        assert_eq!(t, vec![4.0, 1.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(from_upper_triangle(t, n), m);
        // Whole matrices, as earlier builds stored them, are taken as they are.
        assert_eq!(from_upper_triangle(m.clone(), n), m);
        assert_eq!(from_upper_triangle(vec![7.0], 1), vec![7.0]);
    }

    #[test]
    fn list_columns_hold_each_rows_values() {
        let lists: [&[f64]; 3] = [&[1.0, 2.0], &[], &[3.0]];
        let column = list_column("x", lists.iter().copied());
        let df = DataFrame::new(3, vec![column]).expect("a table");
        let back = floats(&df, "x").expect("f64 lists");
        assert_eq!(back, vec![vec![1.0, 2.0], vec![], vec![3.0]]);
    }
}
