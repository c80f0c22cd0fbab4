"""Reference values for tests/subject_classical_reference.rs: the classical subject-only
baselines with pyRiemann and scikit-learn on S001's run 4 (window 0-3 s after each T0/T1/T2
annotation, 8-30 Hz Butterworth order 4 forward-backward on the whole run in microvolts, OAS
covariances). The first 25 epochs train, the last 5 are predicted, for two tasks: 3 classes
(T0 rest, T1 left, T2 right) and 2 classes (T0 vs T1 + T2).

- tangent_lr: make_pipeline(TangentSpace("riemann"), LogisticRegression(class_weight="balanced"))
  in GridSearchCV over C (StratifiedKFold(5), balanced accuracy), refit on the 25 epochs.
- mdm: MDM(metric="riemann").

Also prints StratifiedKFold's test fold of each sample for small label vectors (unit tests of
the fold assignment in src/bench/subject_classical.rs).

usage: python subject_classical_reference.py SHARED_DATA_FOLDER
"""
import sys

import mne
import numpy as np
import scipy.signal as ss
from pyriemann.classification import MDM
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline

mne.set_log_level("ERROR")
raw = mne.io.read_raw_edf(f"{sys.argv[1]}/eegmmidb/S001/S001R04.edf", preload=True)
fs = raw.info["sfreq"]
x = ss.sosfiltfilt(ss.butter(4, [8, 30], btype="band", fs=fs, output="sos"), raw.get_data() * 1e6, axis=1)
events = [(a["onset"], a["description"]) for a in raw.annotations if a["description"] in ("T0", "T1", "T2")]
epochs = np.array([x[:, int(round(o * fs)):int(round(o * fs)) + 480] for o, _ in events])
covs = Covariances("oas").fit_transform(epochs)
three = np.array([{"T0": 0, "T1": 1, "T2": 2}[d] for _, d in events])
two = np.array([0 if d == "T0" else 1 for _, d in events])
train, test = slice(0, 25), slice(25, 30)


def fmt(p):
    return "[" + ", ".join("[" + ", ".join(f"{v:.6f}" for v in row) + "]" for row in p) + "]"


for name, y in (("three", three), ("two", two)):
    search = GridSearchCV(
        make_pipeline(
            TangentSpace(metric="riemann"),
            LogisticRegression(class_weight="balanced", max_iter=100000, tol=1e-12),
        ),
        param_grid={"logisticregression__C": [0.01, 0.1, 1, 10]},
        cv=5,
        scoring="balanced_accuracy",
    ).fit(covs[train], y[train])
    print(f"{name}: cv mean balanced accuracy {search.cv_results_['mean_test_score']}")
    print(f"{name}: C = {search.best_params_['logisticregression__C']}")
    print(f"{name}: tangent_lr proba {fmt(search.predict_proba(covs[test]))}")
    mdm = MDM(metric="riemann").fit(covs[train], y[train])
    print(f"{name}: mdm proba {fmt(mdm.predict_proba(covs[test]))}")

for labels, splits in (([2, 0, 0, 1, 2, 1, 0, 2, 2, 0, 1, 0, 2], 3), ([1, 1, 0, 2, 0, 1, 2, 0, 1, 1, 0], 2), (three[:25], 5)):
    labels = [int(v) for v in labels]
    folds = np.empty(len(labels), dtype=int)
    for k, (_, held) in enumerate(StratifiedKFold(splits).split(np.zeros(len(labels)), labels)):
        folds[held] = k
    print(f"folds of {labels} ({splits} splits): {[int(f) for f in folds]}")
