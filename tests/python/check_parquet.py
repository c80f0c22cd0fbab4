"""Opens every feature table in a folder with pandas (pyarrow) and polars and checks its shape.

Run by tests/cli_features.rs when EEGADAPT_PYTHON names a Python with pandas, pyarrow and
polars (.ci/run sets one up); usage: python check_parquet.py FOLDER EXPECTED_ROWS
"""
import json
import pathlib
import sys

import numpy as np
import pandas as pd
import polars as pl

folder, expected_rows = pathlib.Path(sys.argv[1]), int(sys.argv[2])
tables = sorted(folder.glob("*.parquet"))
assert tables, f"no Parquet file in {folder}"
for table in tables:
    meta = json.loads(table.with_suffix(".json").read_text())
    frame = pd.read_parquet(table)
    assert len(frame) == expected_rows, (table, len(frame))
    assert set(frame["label"]) <= set(meta["task"]["classes"]), frame["label"].unique()
    n_psd = len(meta["channels"]) * len(meta["freqs"])
    assert all(len(v) == n_psd for v in frame["log_psd"]), "log_psd length"
    # Covariances are stored as upper triangles; numpy rebuilds a positive definite matrix.
    n = len(meta["channels"])
    upper = np.triu_indices(n)
    for band in meta["config"]["covariance_bands"]:
        column = frame[f"cov_{band['name']}"]
        assert all(len(v) == n * (n + 1) // 2 for v in column), "covariance triangle length"
        full = np.zeros((n, n))
        full[upper] = column.iloc[0]
        full.T[upper] = column.iloc[0]
        assert np.linalg.eigvalsh(full).min() > 0, "covariance not positive definite"
    lazy = pl.read_parquet(table)
    assert lazy.height == expected_rows and lazy.schema["log_psd"] == pl.List(pl.Float64)
print(f"{len(tables)} tables open in pandas {pd.__version__} and polars {pl.__version__}")
