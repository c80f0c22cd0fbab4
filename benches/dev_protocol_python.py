"""What a Python user would add to eegadapt's linear views, on the development protocol.

The question this answers: does a model that learns from the signal itself (a braindecode-style
ShallowConvNet, an MLP on the tangent space, the time course of mu and beta power) carry
information across subjects that the three linear views of eegadapt's population head lack?
It is the Python side of the encoder ablation in the README (issue 11); it is not run by CI.

Protocol (as `eegadapt bench eegmmidb-lr-dev`): every subject with executed runs 3, 7 and 11 is a
target; calibration = its run 3 (weighted x5 in the pool), test = its runs 7 and 11; the pool is
every other subject's runs 3, 4, 7 and 11. Runs 8 and 12 are never read. Epochs 0-3 s after each
T1/T2 cue, as `eegadapt features`.

Models (all on the same pool and calibration; probabilities per target are combined by adding
log-odds):
- `ts`: re-centred tangent space 8-30 Hz (OAS) + logistic regression C = 0.1 (the classical
  pipeline; the subject mean from all of a pool subject's runs, the target's from run 3);
- `views`: a twin of eegadapt's three views (tangent 8-30 Hz, tangent 1-8 Hz, evoked 0.5-3 Hz
  every 20th sample over the subject's mean and spread), one logistic regression each, mean logit;
- `timecourse`: log mu (8-13 Hz) and beta (13-30 Hz) power in 0.5 s windows from -0.5 to 4.5 s,
  minus the subject's mean;
- `mlp`: scikit-learn MLP (64 hidden, alpha 1, early stopping, 3 seeds) on the 8-30 Hz tangent
  space;
- `shallow`: ShallowConvNet (40 temporal filters of 13 taps, 40 spatial filters, square, mean pool
  35/7, log, dropout 0.5) on 4-38 Hz signals at 80 Hz after Euclidean alignment (each subject
  whitened by its mean covariance; the target's from run 3), AdamW 1e-3, 30 epochs, trained once
  per fold of four targets (each fold's targets' run 3 in its training set, x5).

With `--adaptation`, three changes to the views themselves are measured too, each against the
same twin (`views`):
- `views_stretch`: each subject's tangent vectors divided by their root-mean-square norm (the
  "stretch" of Riemannian Procrustes analysis);
- `views_rotated`: Riemannian Procrustes rotation, per covariance view: the orthogonal U (from the
  identity, 300 Riemannian gradient steps) that brings the logarithms of the target's re-centred
  class means on its calibration run onto the pool's, applied to all the target's covariances;
- `views_unlabelled`: the target re-centred on its calibration run and its imagined run 4 (no
  labels: the "with unlabelled" case); `views_self_trained` then adds run 4 with the labels that
  model predicts (weight 3) and fits again.

With `--pool-size N`, each fold's targets share a pool of N subjects drawn (seeded by the fold)
from outside the fold, for every model: how each gains from more training subjects.

Run (needs mne, scipy, scikit-learn, pyriemann, torch; on 2 cores on 2026-12-03 the linear models took 2 minutes
(`--skip-shallow`), the ShallowConvNet about 17 more, `--adaptation` about 8 more):

    python3 benches/dev_protocol_python.py DATA_DIR [--skip-shallow] [--adaptation] [--pool-size N]
"""

import argparse
import glob
import os

import numpy as np

SFREQ = 160
PRE = 80  # samples read before each cue, for the time course
WINDOW = (PRE, PRE + 3 * SFREQ)
POOL_RUNS = (3, 4, 7, 11)
TEST_RUNS = (7, 11)


def load(data_dir):
    import mne

    mne.set_log_level("ERROR")
    epochs = {}
    for folder in sorted(glob.glob(os.path.join(data_dir, "S*"))):
        subject = os.path.basename(folder)
        for run in POOL_RUNS:
            path = os.path.join(folder, f"{subject}R{run:02d}.edf")
            if not os.path.exists(path):
                continue
            raw = mne.io.read_raw_edf(path, preload=True)
            events, _ = mne.events_from_annotations(raw, event_id={"T1": 1, "T2": 2})
            x = raw.get_data()
            keep = [
                (x[:, t - PRE : t + int(4.5 * SFREQ)], c - 1)
                for t, _, c in events
                if t >= PRE and t + int(4.5 * SFREQ) <= x.shape[1]
            ]
            epochs[(subject, run)] = (
                np.array([k[0] for k in keep], dtype=np.float64),
                np.array([k[1] for k in keep]),
            )
    return epochs


def bandpass(x, lo, hi):
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(4, [lo, hi], btype="band", fs=SFREQ, output="sos"), x, axis=-1)


def linear_features(epochs):
    from pyriemann.estimation import Covariances

    out = {}
    for key, (x, y) in epochs.items():
        cov = lambda lo, hi: Covariances("oas").fit_transform(
            bandpass(x, lo, hi)[:, :, WINDOW[0] : WINDOW[1]]
        )
        evoked = bandpass(x, 0.5, 3)[:, :, WINDOW[0] : WINDOW[1] : 20].reshape(len(x), -1)
        course = []
        for lo, hi in ((8, 13), (13, 30)):
            power = bandpass(x, lo, hi) ** 2
            steps = range(0, x.shape[2] - 79, 40)
            course.append(np.log(np.stack([power[:, :, a : a + 80].mean(-1) for a in steps], -1)))
        out[key] = {
            "mu_beta": cov(8, 30),
            "slow": cov(1, 8),
            "evoked": evoked,
            "course": np.stack(course, 2).reshape(len(x), -1),
            "y": y,
        }
    return out


def aligned(features, subject, fit_runs, runs):
    """A subject's features re-centred on statistics of `fit_runs` (no labels used)."""
    from pyriemann.utils.mean import mean_riemann
    from pyriemann.utils.tangentspace import tangent_space

    fit = [features[(subject, r)] for r in fit_runs]
    means = {b: mean_riemann(np.concatenate([f[b] for f in fit])) for b in ("mu_beta", "slow")}
    evoked = np.concatenate([f["evoked"] for f in fit])
    evoked_mean, evoked_spread = evoked.mean(0), (evoked - evoked.mean(0)).std()
    course_mean = np.concatenate([f["course"] for f in fit]).mean(0)
    out = {}
    for r in runs:
        f = features.get((subject, r))
        if f is None:
            continue
        out[r] = {
            "mu_beta": tangent_space(f["mu_beta"], means["mu_beta"]),
            "slow": tangent_space(f["slow"], means["slow"]),
            "evoked": (f["evoked"] - evoked_mean) / evoked_spread,
            "course": f["course"] - course_mean,
            "y": f["y"],
        }
    return out


def targets_of(features):
    subjects = sorted({s for s, _ in features})
    return subjects, [s for s in subjects if all((s, r) in features for r in (3, 7, 11))]


def pools_of(subjects, targets, pool_size=None):
    """Each target's pool subjects: every other subject, or with `pool_size`, that many drawn
    (seeded) from the subjects outside the target's fold, the same draw for the fold's targets."""
    if pool_size is None:
        return {t: [s for s in subjects if s != t] for t in targets}
    pools = {}
    for i in range(4):
        fold = targets[i::4]
        others = [s for s in subjects if s not in fold]
        drawn = sorted(np.random.default_rng(i).choice(others, pool_size, replace=False))
        pools.update({t: drawn for t in fold})
    return pools


def logistic_logits(train, weights, test, block, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([p[block] for p in train])
    y = np.concatenate([p["y"] for p in train])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x), y, sample_weight=weights)
    return model.decision_function(scaler.transform(np.concatenate([t[block] for t in test])))


def mlp_logits(train, weights, test):
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([p["mu_beta"] for p in train])
    y = np.concatenate([p["y"] for p in train])
    scaler = StandardScaler().fit(x)
    repeat = np.repeat(np.arange(len(y)), weights.astype(int))
    xt = scaler.transform(np.concatenate([t["mu_beta"] for t in test]))
    p = np.mean(
        [
            MLPClassifier((64,), alpha=1.0, max_iter=300, early_stopping=True, random_state=seed)
            .fit(scaler.transform(x)[repeat], y[repeat])
            .predict_proba(xt)[:, 1]
            for seed in range(3)
        ],
        0,
    )
    return logit(p)


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def procrustes_rotation(source, target, steps=300, rate=0.05):
    """Orthogonal U minimising sum_k ||U S_k U^T - T_k||^2 (S_k, T_k symmetric), from U = I."""
    from scipy.linalg import expm

    u = np.eye(source[0].shape[0])
    scale = sum(np.linalg.norm(s) ** 2 for s in source)
    for _ in range(steps):
        grad = sum(4 * (u @ s @ u.T - t) @ u @ s for s, t in zip(source, target)) / scale
        skew = grad @ u.T
        u = expm(-rate * (skew - skew.T) / 2) @ u
    return u


def rotated(parts, source_parts, goal_parts):
    """`parts` with each covariance view's tangent vectors rotated so that the class means of
    `source_parts` (log-Euclidean, at the identity) move onto those of `goal_parts`."""
    from pyriemann.utils.tangentspace import unupper, upper

    out = [dict(p) for p in parts]
    for band in ("mu_beta", "slow"):

        def class_logs(group):
            x = np.concatenate([p[band] for p in group])
            y = np.concatenate([p["y"] for p in group])
            return [unupper(x[y == k].mean(0)) for k in (0, 1)]

        u = procrustes_rotation(class_logs(source_parts), class_logs(goal_parts))
        for part in out:
            part[band] = upper(np.einsum("ij,njk,lk->nil", u, unupper(part[band]), u))
    return out


def views_logits(train, weights, test):
    return np.mean([logistic_logits(train, weights, test, b, 0.1) for b in ("mu_beta", "slow", "evoked")], 0)


def adaptation_logits(features, pool_parts, pool_weights, target):
    """The views' logits on the target's test runs under each change of `--adaptation`."""
    own = aligned(features, target, [3], (3,) + TEST_RUNS)
    calibration, test = own[3], [own[r] for r in TEST_RUNS]
    weights = np.concatenate([pool_weights, np.full(len(calibration["y"]), 5.0)])
    out = {}

    def stretch(parts):
        rms = {b: np.sqrt((np.concatenate([p[b] for p in parts]) ** 2).sum(1).mean()) for b in ("mu_beta", "slow")}
        return [{**p, **{b: p[b] / rms[b] for b in rms}} for p in parts]

    by_subject = {}
    for part in pool_parts:
        by_subject.setdefault(part["subject"], []).append(part)
    stretched_pool = [p for parts in by_subject.values() for p in stretch(parts)]
    stretched_own = stretch([calibration] + test)
    out["views_stretch"] = views_logits(stretched_pool + stretched_own[:1], weights, stretched_own[1:])

    turned = rotated([calibration] + test, [calibration], pool_parts)
    out["views_rotated"] = views_logits(pool_parts + turned[:1], weights, turned[1:])

    both = aligned(features, target, [3, 4], (3, 4) + TEST_RUNS)
    if 4 in both:
        test = [both[r] for r in TEST_RUNS]
        out["views_unlabelled"] = views_logits(pool_parts + [both[3]], weights, test)
        guess = views_logits(pool_parts + [both[3]], weights, [both[4]])
        pseudo = {**both[4], "y": (guess > 0).astype(int)}
        out["views_self_trained"] = views_logits(
            pool_parts + [both[3], pseudo], np.concatenate([weights, np.full(len(guess), 3.0)]), test
        )
    return out


def linear_models(features, adaptation=False, pool_size=None):
    subjects, targets = targets_of(features)
    pools = pools_of(subjects, targets, pool_size)
    # A pool subject's alignment does not depend on the target: computed once.
    pool = {}
    for s in subjects:
        runs = [r for r in POOL_RUNS if (s, r) in features]
        pool[s] = [{**part, "subject": s} for part in aligned(features, s, runs, runs).values()]
    out = {}
    for target in targets:
        train = [part for s in pools[target] for part in pool[s]]
        weights = [np.ones(len(part["y"])) for part in train]
        own = aligned(features, target, [3], (3,) + TEST_RUNS)
        train.append(own[3])
        weights.append(np.full(len(own[3]["y"]), 5.0))
        weights = np.concatenate(weights)
        test = [own[r] for r in TEST_RUNS]
        views = [logistic_logits(train, weights, test, b, 0.1) for b in ("mu_beta", "slow", "evoked")]
        out[target] = {
            "y": np.concatenate([t["y"] for t in test]),
            "ts": views[0],
            "views": np.mean(views, 0),
            "timecourse": logistic_logits(train, weights, test, "course", 0.01),
            "mlp": mlp_logits(train, weights, test),
        }
        if adaptation:
            out[target].update(adaptation_logits(features, train[:-1], weights[: -len(own[3]["y"])], target))
        print(target, "linear models done", flush=True)
    return out


def shallow_logits(epochs, seed=0, n_epochs=30, pool_size=None):
    import torch
    from scipy.linalg import inv, sqrtm
    from scipy.signal import resample_poly
    from torch import nn

    torch.manual_seed(seed)
    signals = {
        k: (
            resample_poly(bandpass(x, 4, 38)[:, :, WINDOW[0] : WINDOW[1]], 1, 2, axis=-1).astype(
                np.float32
            ),
            y,
        )
        for k, (x, y) in epochs.items()
    }

    def whitened(subject, fit_runs, run):
        fit = np.concatenate([signals[(subject, r)][0] for r in fit_runs])
        w = np.real(inv(sqrtm(np.mean([e @ e.T / e.shape[1] for e in fit], 0)))).astype(np.float32)
        return np.einsum("ij,njt->nit", w, signals[(subject, run)][0]), signals[(subject, run)][1]

    class Shallow(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.temporal = nn.Conv2d(1, 40, (1, 13))
            self.spatial = nn.Conv2d(40, 40, (channels, 1), bias=False)
            self.norm = nn.BatchNorm2d(40)
            self.pool = nn.AvgPool2d((1, 35), (1, 7))
            self.drop = nn.Dropout(0.5)
            self.out = nn.LazyLinear(2)

        def forward(self, x):
            x = self.norm(self.spatial(self.temporal(x[:, None])))
            x = torch.log(torch.clamp(self.pool(x * x), 1e-6))
            return self.out(self.drop(x.flatten(1)))

    subjects, targets = targets_of(signals)
    pools = pools_of(subjects, targets, pool_size)
    out = {}
    for fold in (targets[i::4] for i in range(4)):
        xs, ys, ws = [], [], []
        # Never the fold's other targets, whose runs 7 and 11 are test runs.
        for s in pools[fold[0]] if pool_size else [s for s in subjects if s not in fold]:
            runs = [r for r in POOL_RUNS if (s, r) in signals]
            for r in runs:
                x, y = whitened(s, runs, r)
                xs.append(x), ys.append(y), ws.append(np.ones(len(y)))
        for t in fold:
            x, y = whitened(t, [3], 3)
            xs.append(x), ys.append(y), ws.append(np.full(len(y), 5.0))
        x, y = torch.tensor(np.concatenate(xs)), torch.tensor(np.concatenate(ys))
        w = np.concatenate(ws)
        w = torch.tensor(w / w.sum())
        net = Shallow(x.shape[1])
        net(x[:2])
        opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
        for _ in range(n_epochs):
            net.train()
            order = torch.multinomial(w, len(y), replacement=True)
            for b in range(0, len(order), 64):
                i = order[b : b + 64]
                opt.zero_grad()
                nn.functional.cross_entropy(net(x[i]), y[i]).backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            for t in fold:
                test = [whitened(t, [3], r) for r in TEST_RUNS]
                p = np.concatenate([torch.softmax(net(torch.tensor(a)), 1)[:, 1].numpy() for a, _ in test])
                out[t] = logit(p)
        print("shallow fold done:", ", ".join(fold), flush=True)
    return out


def accuracy(logits, y):
    return float(((logits > 0) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--skip-shallow", action="store_true")
    parser.add_argument("--adaptation", action="store_true", help="also measure stretch, rotation, self-training")
    parser.add_argument("--pool-size", type=int, help="pool subjects per target, drawn from outside its fold")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    epochs = load(args.data_dir)
    results = linear_models(linear_features(epochs), args.adaptation, args.pool_size)
    if not args.skip_shallow:
        for target, logits in shallow_logits(epochs, pool_size=args.pool_size).items():
            results[target]["shallow"] = logits
    rows = {}
    for target, r in results.items():
        row = {name: accuracy(r[name], r["y"]) for name in r if name != "y"}
        for base in ("ts", "views"):
            for extra in ("timecourse", "mlp", "shallow"):
                if extra in r:
                    for weight in (0.25, 0.5, 1.0):
                        row[f"{base}+{weight}*{extra}"] = accuracy(r[base] + weight * r[extra], r["y"])
        rows[target] = row
    print("\ntarget " + " ".join(sorted(next(iter(rows.values())))))
    for target, row in rows.items():
        print(target, " ".join(f"{row[k]:.3f}" for k in sorted(row)))
    print("\nmean over", len(rows), "targets:")
    for name in sorted(next(iter(rows.values()))):
        print(f"  {name:24s} {np.mean([row[name] for row in rows.values()]):.3f}")


if __name__ == "__main__":
    main()
