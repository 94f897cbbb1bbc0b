"""Logistic regression on the raw flow maps: the simplest reference a learned model has to beat.

Each LOSO fold fits scikit-learn's `LogisticRegression` (balanced class weights) on the flattened
u/v/strain maps of its training subjects. The inverse regularisation strength `C` is chosen inside the
fold by `GridSearchCV` over subject-grouped folds of the training subjects (macro F1), so the test
subject's labels choose nothing. It is a benchmark reference, not part of the package.
"""

import time
from collections import Counter

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)


def flat_maps(flow: torch.Tensor) -> np.ndarray:
    """`(N, C, H, W)` flow maps as the `(N, C*H*W)` feature rows the regression sees."""
    return flow.reshape(len(flow), -1).numpy()


def fit_logistic(flow: torch.Tensor, labels: torch.Tensor, subjects, train: np.ndarray, inner_folds: int = 5):
    """A `GridSearchCV` fitted on the `train` indices; `best_params_["C"]` is the fold's choice."""
    features, groups = flat_maps(flow), np.asarray(subjects)[train]
    search = GridSearchCV(LogisticRegression(class_weight="balanced", max_iter=5000), {"C": C_GRID},
                          scoring="f1_macro", cv=GroupKFold(min(inner_folds, len(set(groups)))))
    return search.fit(features[train], labels.numpy()[train], groups=groups)


def run_loso(flow: torch.Tensor, labels: torch.Tensor, subjects):
    """LOSO over `subjects`; returns `(predictions, {C: folds that chose it}, seconds)`."""
    started = time.perf_counter()
    subjects = np.asarray(subjects)
    features = flat_maps(flow)
    predictions = np.zeros(len(labels), dtype=int)
    chosen = Counter()
    for subject in sorted(set(subjects)):
        test = subjects == subject
        search = fit_logistic(flow, labels, subjects, np.flatnonzero(~test))
        predictions[test] = search.predict(features[test])
        chosen[search.best_params_["C"]] += 1
    return predictions, dict(chosen), time.perf_counter() - started
