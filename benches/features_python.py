"""`eegadapt features DIR --task eegmmidb-lr --out OUT --jobs 1` written the way a Python user would
write it (MNE-Python, scipy, scikit-learn, pandas): the twin of the Rust command, for comparing
whole-process wall times.

Run it on the machine the Rust command runs on (it is not run by CI; it needs mne, scipy,
scikit-learn, pandas and pyarrow):

    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install mne scipy scikit-learn pandas pyarrow  # once
    /tmp/pyenv/bin/python benches/features_python.py DATA_DIR OUT_DIR [--json times.json]
    # against the Rust tables of the same files:
    target/release/eegadapt features DATA_DIR --task eegmmidb-lr --out RUST_OUT --jobs 1
    /tmp/pyenv/bin/python benches/features_python.py DATA_DIR OUT_DIR --compare RUST_OUT

The work mirrors `FeatureConfig::default()` with the built-in task `eegmmidb-lr`
(src/features/{config,extract,welch,bands,covariance}.rs, src/epochs.rs, src/task.rs,
src/store.rs), one file after the other, on one core (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS are set to 1 before numpy loads; scipy.fft uses one worker unless asked):

- DATA_DIR is searched recursively for *.edf / *.bdf (sorted); a file named `S###R##` is kept
  only for runs 4, 8 and 12 (other names are kept, as the Rust task does);
- per file: SHA-256 of its bytes (hashlib); `mne.io.read_raw_edf(preload=True)`; channel names
  standardised (`mne.datasets.eegbci.standardize`, as eegadapt's names); EEG channels not marked
  bad; data in the file's unit (uV; eegadapt keeps the physical unit, MNE converts to volts); no
  notch, resampling or re-referencing;
- epochs: every annotation whose text is T1 (left, class 0) or T2 (right, class 1) (trimmed,
  ignoring case; T0 is rest and gives none), from the event's sample (onset x sfreq, rounded half
  away from zero, as eegadapt) for 3 s (tmin 0, tmax 3 exclusive: 480 samples at 160 Hz), cut with
  `mne.Epochs` (no baseline, no amplitude rejection; windows past the end of the data are dropped);
- per epoch and channel: `scipy.signal.welch` (1 s Hann segments, 50 % overlap, constant detrend,
  density); log10 of the PSD (floored at 1e-20) at the bins 1..45 Hz; band powers for delta 1-4,
  theta 4-8, alpha 8-13, beta 13-30, gamma 30-45 Hz (bins lo <= f < hi): log10 of the mean PSD of
  the band, and each band's share of the power summed over all bands' bins;
- for each covariance band (mu_beta 8-30 Hz, slow 1-8 Hz): `scipy.signal.butter(4, band,
  'bandpass', output='sos')` and `sosfiltfilt` (scipy's defaults) of the whole recording, the same
  windows, and `sklearn.covariance.oas` of each epoch's samples x channels (pyriemann's 'oas'),
  stored as its upper triangle row by row (`numpy.triu_indices` order), as eegadapt stores it;
- the evoked part: the same band-pass at 0.5-3 Hz, the same windows, every 20th sample (8 Hz);
- one Parquet per recording with pandas (pyarrow, LZ4_RAW compression as eegadapt's; eegadapt's
  columns: subject, recording, run, epoch, onset_s, label, class_index, log_psd, log_band_power,
  rel_band_power, cov_mu_beta, cov_slow, evoked) and a JSON sidecar (configuration, sfreq,
  channels, freqs, evoked_times, sources with SHA-256, drop log).

Unlike the Rust command it does not skip recordings whose tables are up to date (so time the Rust
command into an empty folder) and does not split recordings longer than 10 minutes into pieces.

Prints the wall time of the whole process (from the first line of this script, imports
included) and of each file; `--json PATH` writes them to PATH too. `--compare RUST_OUT` then
reads each table of OUT_DIR with the Rust table of the same name and prints the largest
differences (eegadapt keeps the recording and its band-passed copies in float32, this script in
float64: expect agreement to float32 rounding, about 1e-7 relative).
"""

import time

START = time.perf_counter()

import os  # noqa: E402

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow  # noqa: E402
import scipy  # noqa: E402
import scipy.signal  # noqa: E402
import sklearn  # noqa: E402
from mne.datasets import eegbci  # noqa: E402
from sklearn.covariance import oas  # noqa: E402

IMPORTED = time.perf_counter()

# The task `eegmmidb-lr` (src/task.rs).
TASK = {
    "name": "eegmmidb-lr",
    "classes": ["left", "right"],
    "events": [{"text": "T1", "class": "left"}, {"text": "T2", "class": "right"}],
    "tmin": 0.0,
    "tmax": 3.0,
    "runs": [4, 8, 12],
}
CLASS_OF_TEXT = {e["text"].upper(): TASK["classes"].index(e["class"]) for e in TASK["events"]}

# FeatureConfig::default() (src/features/config.rs).
WELCH_SEGMENT_S = 1.0
WELCH_OVERLAP = 0.5
FMIN, FMAX = 1.0, 45.0
BANDS = [("delta", 1.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0), ("beta", 13.0, 30.0),
         ("gamma", 30.0, 45.0)]
COVARIANCE_BANDS = [("mu_beta", 8.0, 30.0), ("slow", 1.0, 8.0)]
FILTER_ORDER = 4
EVOKED = (0.5, 3.0, 8.0)  # band-pass low and high edges, output rate (Hz)
PSD_FLOOR = 1e-20

NAME = re.compile(r"^[Ss](\d+)[Rr](\d+)$")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def recording_id(path):
    """Subject, recording and run from a file name, as RecordingId::from_path."""
    stem = path.stem
    m = NAME.match(stem)
    if m:
        return f"S{m.group(1)}", stem, int(m.group(2))
    return stem, stem, None


def inputs(folder):
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".edf", ".bdf"))
    return [f for f in files if recording_id(f)[2] is None or recording_id(f)[2] in TASK["runs"]]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def features(path, out_dir):
    subject, recording, run = recording_id(path)
    sha = sha256_file(path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    eegbci.standardize(raw)
    raw.pick("eeg", exclude="bads")
    fs = raw.info["sfreq"]
    n_times = int(round((TASK["tmax"] - TASK["tmin"]) * fs))
    offset = int(round_half_away(TASK["tmin"] * fs))

    # Windows: the task's annotations, in order (src/epochs.rs task_windows).
    ann = raw.annotations
    onsets, labels, texts = [], [], []
    for onset, text in zip(ann.onset, ann.description):
        label = CLASS_OF_TEXT.get(text.strip().upper())
        if label is not None:
            onsets.append(float(onset))
            labels.append(label)
            texts.append(text)
    onsets = np.asarray(onsets, dtype=float)
    labels = np.asarray(labels, dtype=int)
    events = np.column_stack([
        round_half_away(onsets * fs).astype(int) + raw.first_samp,
        np.zeros(len(onsets), dtype=int),
        labels + 1,
    ])
    epochs = mne.Epochs(raw, events, {c: i + 1 for i, c in enumerate(TASK["classes"])},
                        tmin=offset / fs, tmax=(offset + n_times - 1) / fs, baseline=None,
                        reject=None, preload=True, on_missing="ignore", verbose="error")
    kept = epochs.selection
    x = epochs.get_data(units="uV", copy=False)  # epochs x channels x times
    drop_log = [{"onset_s": onsets[i], "text": texts[i], "reason": "too_short"}
                for i in sorted(set(range(len(onsets))) - set(kept))]

    # Welch, log PSD, band powers.
    nperseg = int(round(WELCH_SEGMENT_S * fs))
    noverlap = int(round(WELCH_OVERLAP * nperseg))
    freqs, psd = scipy.signal.welch(x, fs=fs, nperseg=nperseg, noverlap=noverlap, axis=-1)
    in_range = (freqs >= FMIN) & (freqs <= FMAX)
    n_epochs, n_channels = x.shape[:2]
    log_psd = np.log10(np.maximum(psd[..., in_range], PSD_FLOOR)).reshape(n_epochs, -1)
    sums = np.stack([psd[..., (freqs >= lo) & (freqs < hi)].sum(-1) for _, lo, hi in BANDS], -1)
    means = np.stack([psd[..., (freqs >= lo) & (freqs < hi)].mean(-1) for _, lo, hi in BANDS], -1)
    log_band = np.log10(np.maximum(means, PSD_FLOOR)).reshape(n_epochs, -1)
    rel_band = (sums / sums.sum(-1, keepdims=True)).reshape(n_epochs, -1)

    # Band-passes of the whole recording, cut at the same windows.
    whole = raw.get_data(units="uV")
    starts = epochs.events[:, 0] - raw.first_samp + offset
    index = starts[:, None] + np.arange(n_times)

    def band_epochs(lo, hi):
        sos = scipy.signal.butter(FILTER_ORDER, [lo, hi], btype="bandpass", fs=fs, output="sos")
        filtered = scipy.signal.sosfiltfilt(sos, whole, axis=-1)
        return filtered[:, index].transpose(1, 0, 2)  # epochs x channels x times

    covariances = {}
    for name, lo, hi in COVARIANCE_BANDS:
        xb = band_epochs(lo, hi)
        upper = np.triu_indices(xb.shape[1])  # stored as eegadapt stores it: the upper triangle
        covariances[f"cov_{name}"] = [oas(e.T)[0][upper] for e in xb]
    lo, hi, rate = EVOKED
    step = int(round(fs / rate))
    evoked = band_epochs(lo, hi)[:, :, ::step]
    evoked_times = (TASK["tmin"] + np.arange(0, n_times, step) / fs).tolist()

    table = pd.DataFrame({
        "subject": [subject] * n_epochs,
        "recording": [recording] * n_epochs,
        "run": pd.array([run] * n_epochs, dtype="Int32"),
        "epoch": np.arange(n_epochs, dtype=np.uint32),
        "onset_s": onsets[kept],
        "label": [TASK["classes"][i] for i in labels[kept]],
        "class_index": labels[kept].astype(np.int32),
        "log_psd": list(log_psd),
        "log_band_power": list(log_band),
        "rel_band_power": list(rel_band),
        **covariances,
        "evoked": list(evoked.reshape(n_epochs, -1)),
    })
    out = Path(out_dir) / f"{recording}.parquet"
    table.to_parquet(out, engine="pyarrow", compression="lz4", index=False)
    sidecar = {
        "task": TASK,
        "config": {
            "welch_segment_s": WELCH_SEGMENT_S, "welch_overlap": WELCH_OVERLAP,
            "fmin": FMIN, "fmax": FMAX,
            "bands": [{"name": n, "lo": lo, "hi": hi} for n, lo, hi in BANDS],
            "covariance_bands": [{"name": n, "lo": lo, "hi": hi} for n, lo, hi in COVARIANCE_BANDS],
            "covariance_estimator": "oas", "filter_order": FILTER_ORDER,
            "evoked": {"lo_hz": EVOKED[0], "hi_hz": EVOKED[1], "rate_hz": EVOKED[2]},
        },
        "sfreq": fs,
        "channels": epochs.ch_names,
        "freqs": freqs[in_range].tolist(),
        "evoked_times": evoked_times,
        "sources": [{"name": path.name, "sha256": sha}],
        "bad_channels": list(raw.info["bads"]),
        "drop_log": drop_log,
        "written_by": "benches/features_python.py",
    }
    with open(out.with_suffix(".json"), "w") as f:
        json.dump(sidecar, f, indent=2)
    return n_epochs


def compare(py_dir, rust_dir):
    """Largest differences between this script's tables and eegadapt's of the same name."""
    rust_files = sorted(Path(rust_dir).glob("*.parquet"))
    pairs = [(Path(py_dir) / r.name, r) for r in rust_files if (Path(py_dir) / r.name).is_file()]
    if not pairs:
        print(f"no table of {rust_dir} has a twin in {py_dir}")
        return 1
    worst = {}
    problems = []

    def symmetric(triangles, n):
        """Whole matrices from upper triangles stored row by row (epochs x n(n+1)/2)."""
        if triangles.shape[1] != n * (n + 1) // 2:
            return triangles
        full = np.zeros((len(triangles), n, n))
        rows, cols = np.triu_indices(n)
        full[:, rows, cols] = triangles
        full[:, cols, rows] = triangles
        return full.reshape(len(triangles), -1)

    def note(key, value):
        worst[key] = max(worst.get(key, 0.0), float(value))

    for py_path, rs_path in pairs:
        py, rs = pd.read_parquet(py_path), pd.read_parquet(rs_path)
        name = rs_path.stem
        if len(py) != len(rs):
            problems.append(f"{name}: {len(py)} epochs here, {len(rs)} in eegadapt's")
            continue
        for col in ("subject", "recording", "run", "epoch", "onset_s", "label", "class_index"):
            if not (py[col].astype(str).to_numpy() == rs[col].astype(str).to_numpy()).all():
                problems.append(f"{name}: column {col} differs")
        n = len(pd.read_json(rs_path.with_suffix(".json"), typ="series")["channels"])
        for col in ("log_psd", "log_band_power", "rel_band_power", "evoked",
                    *(f"cov_{b}" for b, _, _ in COVARIANCE_BANDS)):
            a, b = np.stack(py[col].to_numpy()), np.stack(rs[col].to_numpy())
            if col.startswith("cov_"):
                a, b = symmetric(a, n), symmetric(b, n)
            a = a.reshape(len(py), n, -1)  # epochs x channels x values
            b = b.reshape(len(rs), n, -1)
            if a.shape != b.shape:
                problems.append(f"{name}: {col} of shape {a.shape} here, {b.shape} in eegadapt's")
                continue
            d = np.abs(a - b)
            note(f"{col} max abs", d.max())
            if col.startswith("cov_"):
                diag = np.sqrt(np.abs(np.diagonal(b, axis1=1, axis2=2)))
                # |difference| / sqrt(C_ii C_jj): relative on the diagonal, the same scale off it.
                rel = d / (diag[:, :, None] * diag[:, None, :])
                note(f"{col} max rel (to sqrt(Cii Cjj))", rel.max())
                note(f"{col} max rel, diagonal", np.diagonal(rel, axis1=1, axis2=2).max())
            elif col == "evoked":
                # Relative to the largest |value| of the epoch's channel.
                rel = d / np.abs(b).max(-1, keepdims=True)
                note(f"{col} max rel (to the channel's max |value|)", rel.max())
            else:
                note(f"{col} max rel", (d / np.maximum(np.abs(b), 1e-300)).max())
    print(f"compared {len(pairs)} tables of {py_dir} with {rust_dir}:")
    for key, value in worst.items():
        print(f"  {key:<46} {value:.3e}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--json", help="write the timings to this JSON file")
    parser.add_argument("--compare", metavar="RUST_OUT",
                        help="after the run, compare the tables with eegadapt's in RUST_OUT")
    args = parser.parse_args()
    print(f"load average at start: {loadavg()}")
    os.makedirs(args.output_dir, exist_ok=True)
    files = inputs(args.input_dir)
    per_file = {}
    epochs = 0
    for path in files:
        start = time.perf_counter()
        epochs += features(path, args.output_dir)
        per_file[path.name] = time.perf_counter() - start
        print(f"{path.name:<24} {per_file[path.name]:8.3f} s")
    total = time.perf_counter() - START
    print(f"{len(files)} recordings, {epochs} epochs: imports {IMPORTED - START:.3f} s, "
          f"files {sum(per_file.values()):.3f} s, total wall {total:.3f} s (whole process)")
    print(f"load average at end: {loadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "total_wall_s": total,
                "imports_s": IMPORTED - START,
                "files_s": sum(per_file.values()),
                "per_file_s": per_file,
                "recordings": len(files),
                "epochs": epochs,
                "python": platform.python_version(),
                "mne": mne.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "sklearn": sklearn.__version__, "pandas": pd.__version__,
                "pyarrow": pyarrow.__version__,
                "loadavg": loadavg(),
                "measured_unix_s": time.time(),
            }, f, indent=2)
        print(f"wrote {args.json}")
    if args.compare:
        return compare(args.output_dir, args.compare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
