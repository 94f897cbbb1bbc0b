"""Logistic regression on the raw flow maps: the simplest reference a learned model has to beat.

Each fold (LOSO or leave-one-dataset-out) fits scikit-learn's `LogisticRegression` (balanced class
weights) on the flattened u/v/strain maps of its training subjects. The inverse regularisation strength
`C` is chosen inside the fold by `GridSearchCV` over subject-grouped folds of the training subjects
(macro F1), so the test subjects' labels choose nothing. It is a benchmark reference, not part of the
package.
"""

import time
from collections import Counter

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold

from hf_mmmer.data import held_out_split
from hf_mmmer.data.loso import protocol_folds

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


def run_protocol(flow: torch.Tensor, labels: torch.Tensor, keys, protocol: str = "loso"):
    """Every fold of `protocol` (`loso` or `lodo`) over the rows' fold `keys`, split by the package's
    `held_out_split`; returns `(predictions, folds, {C: folds that chose it}, seconds)`."""
    started = time.perf_counter()
    features = flat_maps(flow)
    predictions = np.zeros(len(labels), dtype=int)
    folds = np.empty(len(labels), dtype=object)
    chosen = Counter()
    for fold, held_out in protocol_folds(keys, protocol).items():
        train, test = held_out_split(keys, held_out)
        search = fit_logistic(flow, labels, keys, train)
        predictions[test] = search.predict(features[test])
        folds[test] = fold
        chosen[search.best_params_["C"]] += 1
    return predictions, folds.tolist(), dict(chosen), time.perf_counter() - started
