"""MER metrics: UF1, UAR and accuracy from pooled predictions, overall, per source dataset and per fold.

UF1 is the mean over classes of the per-class F1 and UAR the mean per-class recall, both from the
confusion counts of all pooled test predictions (the MEGC2019 protocol), not averaged over folds.
scikit-learn computes them (`f1_score(average="macro")`, `recall_score(average="macro")`):
`evaluate.load` fetches metric scripts from the Hub, which the no-network rule forbids.
"""

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def classification_scores(labels: Sequence[int], predictions: Sequence[int], num_labels: int) -> dict:
    """`{"uf1", "uar", "accuracy", "n"}` of one pool of predictions.

    Classes are fixed to `range(num_labels)`: a class absent from the pool (no true and no predicted
    sample) scores 0 there, as in the pooled MEGC protocol where every class is present overall.
    """
    classes = list(range(num_labels))
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) == 0:
        raise ValueError("cannot score an empty set of predictions")
    return {
        "uf1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "uar": float(recall_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "n": int(len(labels)),
    }


def summarize_predictions(table, num_labels: int) -> dict:
    """Scores of a predictions table (a pandas DataFrame with `label`, `prediction`, `dataset`, `fold`).

    Returns the overall scores plus `per_dataset` (pooled within each source dataset) and `per_fold`
    (each held-out subject alone; small, noisy, for inspection only).
    """
    summary = classification_scores(table["label"], table["prediction"], num_labels)
    summary["per_dataset"] = {
        name: classification_scores(group["label"], group["prediction"], num_labels)
        for name, group in table.groupby("dataset", sort=True)
    }
    summary["per_fold"] = {
        fold: classification_scores(group["label"], group["prediction"], num_labels)
        for fold, group in table.groupby("fold", sort=True)
    }
    return summary


def pooled_confusion_matrix(table, num_labels: int) -> np.ndarray:
    """Counts `[true, predicted]` over all pooled predictions."""
    return confusion_matrix(table["label"], table["prediction"], labels=list(range(num_labels)))


SCORES = ("uf1", "uar", "accuracy")


def summaries_mean_std(summaries: Sequence[dict]) -> tuple[dict, dict]:
    """`(mean, std)` over runs (seeds) of `summarize_predictions` summaries (or `metrics.json`s), each in
    the shape of `metrics.json`: `uf1`, `uar`, `accuracy` and `per_dataset` (std 0 for a single run)."""

    def spread(values):
        values = np.asarray(values, dtype=float)
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    mean, std = {}, {}
    for target, index in ((mean, 0), (std, 1)):
        target.update({score: spread([s[score] for s in summaries])[index] for score in SCORES})
        target["per_dataset"] = {
            name: {score: spread([s["per_dataset"][name][score] for s in summaries])[index] for score in SCORES}
            for name in summaries[0]["per_dataset"]
        }
    return mean, std
