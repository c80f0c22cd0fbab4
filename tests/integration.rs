//! The integration tests, one module per area, built as one test binary: one link instead of
//! twenty, and one copy of the dependencies on disk. Each module's own doc comment says what it
//! checks; `cargo test --test integration MODULE::` runs one area.

mod common;

mod bench_protocol;
mod calibrate_isolation;
mod cli_any_window;
mod cli_batch;
mod cli_batch_bids;
mod cli_batch_shards;
mod cli_bench_new_tasks;
mod cli_calibrate_predict;
mod cli_features;
mod cli_inspect;
mod cli_montage;
mod cli_new_head;
mod cli_pretrain;
mod cli_pretrain_from;
mod cli_report;
mod conformance;
mod covariance_reference;
mod differential;
mod edf_decisions;
mod encoder_gradcheck;
mod epochs_drop_log;
mod features_pieces;
mod features_reference;
mod fuzz_regressions;
mod malformed;
mod notebooks;
mod preprocess_behaviour;
mod preprocess_reference;
mod pretrain_artifacts;
mod slurm_cluster;
mod store_roundtrip;
mod subject_classical_reference;
mod writer_roundtrip;
