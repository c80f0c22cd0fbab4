"""scipy's Welch on the inputs of `cargo bench --bench features` (part a): the bench's twin.

Run it on the machine the Rust bench runs on (it is not run by CI, and needs numpy and scipy):

    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install numpy scipy   # once
    /tmp/pyenv/bin/python benches/scipy_welch.py

It times `scipy.signal.welch(x, fs=160, nperseg=160, noverlap=80, axis=-1)` on float64 arrays of
64 x 20000 and 64 x 576000 samples (1 hour at 160 Hz): an AR(1) noise plus a 10 Hz sine, like the
Rust bench's signal. Best of 5 wall times after one warm-up, one thread (OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set to 1 before numpy loads; scipy.fft uses one worker
unless asked). Prints a table and writes the numbers to
`<tempdir>/eegadapt-bench/scipy_welch.json` (tempdir: $TMPDIR, else /tmp), where the Rust bench
picks them up to print its speed-up against scipy measured on this machine; without that file
it falls back to the 0.07 s quoted in the issue for 64 x 20000 and says so.
"""

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.signal  # noqa: E402

FS = 160.0
NPERSEG = 160
NOVERLAP = 80
CHANNELS = 64
CASES = (20_000, 576_000)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def signal(samples):
    rng = np.random.default_rng(42)
    noise = rng.uniform(-1.0, 1.0, size=(CHANNELS, samples))
    ar = scipy.signal.lfilter([8.0], [1.0, -0.98], noise, axis=-1)
    t = np.arange(samples) / FS
    phase = 0.3 * np.arange(CHANNELS)[:, None]
    return np.ascontiguousarray(ar + 20.0 * np.sin(2 * np.pi * 10.0 * t + phase))


def best_of_5(x):
    scipy.signal.welch(x, fs=FS, nperseg=NPERSEG, noverlap=NOVERLAP, axis=-1)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        scipy.signal.welch(x, fs=FS, nperseg=NPERSEG, noverlap=NOVERLAP, axis=-1)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    print(f"load average at start: {loadavg()}")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, python {platform.python_version()}")
    results = {}
    print(f"{'scipy.signal.welch (best of 5, 1 thread)':<42} {'s':>9} {'ns/sample':>10} {'segments/s':>12}")
    for samples in CASES:
        x = signal(samples)
        best = best_of_5(x)
        segments = CHANNELS * ((samples - NPERSEG) // (NPERSEG - NOVERLAP) + 1)
        results[f"{CHANNELS}x{samples}"] = best
        print(
            f"{f'{CHANNELS} x {samples}':<42} {best:>9.4f} {best * 1e9 / (CHANNELS * samples):>10.3f}"
            f" {segments / best:>12.0f}"
        )
    print(f"load average at end: {loadavg()}")
    folder = os.path.join(tempfile.gettempdir(), "eegadapt-bench")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "scipy_welch.json")
    with open(path, "w") as f:
        json.dump(
            {
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "fs": FS,
                "nperseg": NPERSEG,
                "noverlap": NOVERLAP,
                "best_of_5_s": results,
                "loadavg": loadavg(),
                "measured_unix_s": time.time(),
            },
            f,
            indent=2,
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
