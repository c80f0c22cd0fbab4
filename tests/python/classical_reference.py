"""Reference values for tests/bench_protocol.rs: the classical pooled recipe with pyRiemann and
scikit-learn on S001's runs 3 and 4 (window 0.5-3.5 s after each T1/T2 cue, 8-30 Hz Butterworth
order 4 forward-backward on the whole run, OAS covariances). All 30 trials are re-centred by
their Riemannian mean; LogisticRegression(C=0.1) is trained on run 3 (weight 1) and the first 10
trials of run 4 (weight 5), and predicts the last 5 trials of run 4.

usage: python classical_reference.py SHARED_DATA_FOLDER   (prints the probabilities of class 1)
"""
import sys

import mne
import numpy as np
import scipy.signal as ss
from pyriemann.estimation import Covariances
from pyriemann.utils.mean import mean_riemann
from pyriemann.utils.tangentspace import tangent_space
from sklearn.linear_model import LogisticRegression

mne.set_log_level("ERROR")
covs, labels = [], []
for run in (3, 4):
    raw = mne.io.read_raw_edf(f"{sys.argv[1]}/eegmmidb/S001/S001R{run:02d}.edf", preload=True)
    fs = raw.info["sfreq"]
    x = ss.sosfiltfilt(ss.butter(4, [8, 30], btype="band", fs=fs, output="sos"), raw.get_data() * 1e6, axis=1)
    events = [(a["onset"], a["description"]) for a in raw.annotations if a["description"] in ("T1", "T2")]
    epochs = np.array([x[:, int(round((o + 0.5) * fs)):int(round((o + 0.5) * fs)) + 480] for o, _ in events])
    covs.append(Covariances("oas").fit_transform(epochs))
    labels.append(np.array([0 if d == "T1" else 1 for _, d in events]))
c, y = np.concatenate(covs), np.concatenate(labels)
v = tangent_space(c, mean_riemann(c))
w = np.r_[np.ones(15), np.full(10, 5.0)]
model = LogisticRegression(C=0.1, max_iter=10000, tol=1e-10).fit(v[:25], y[:25], sample_weight=w)
print(", ".join(f"{p:.6f}" for p in model.predict_proba(v[25:])[:, 1]))
