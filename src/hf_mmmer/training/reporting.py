"""Run artifacts: predictions table, metrics JSON, a paper-style results table and two plots.

Every file is written atomically (a temporary file in the same folder, then `os.replace`), so a run
killed at any moment leaves either the old file or the new one, never half of one: `--resume` relies
on that for the per-fold results.
"""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..atomic_files import atomic_path, write_atomically  # noqa: E402
from .metrics import pooled_confusion_matrix  # noqa: E402


def give_default_permissions(folder):
    """Give every file under `folder` the mode a file the user creates gets (0o666 less the umask).

    `safetensors` writes `model.safetensors` private (`-rw-------`), unlike every other file of a run.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)


def write_json(path, payload):
    write_atomically(path, json.dumps(payload, indent=2) + "\n")


def prediction_rows(data, indices, scores, folds) -> list:
    """Rows of `predictions.csv` for the samples at `indices` of an `EncodedDataset`.

    `scores`: their `(len(indices), num_labels)` softmax scores; `folds`: the fold name of each sample.
    """
    return [
        {"sample_id": data.sample_ids[i], "subject": data.subjects[i], "dataset": data.datasets[i],
         "label": int(data.labels[i]), "prediction": int(score.argmax()),
         **{f"score_{name}": float(s) for name, s in zip(data.label_names, score)}, "fold": fold}
        for i, score, fold in zip(indices, scores, folds)
    ]


def predictions_table(fold_results, label_names) -> pd.DataFrame:
    """One row per test sample: sample, subject, dataset, label, prediction, per-class scores, fold."""
    rows = [row for result in fold_results for row in result["predictions"]]
    table = pd.DataFrame(rows, columns=["sample_id", "subject", "dataset", "label", "prediction",
                                        *[f"score_{name}" for name in label_names], "fold"])
    return table.sort_values(["fold", "sample_id"], kind="stable").reset_index(drop=True)


def results_markdown(metrics: dict, title: str) -> str:
    """A table a paper would print: UF1 / UAR / accuracy per source dataset and pooled."""
    lines = [f"# {title}", "", f"Protocol: {metrics['protocol']}, seed {metrics['seed']}, "
             f"{metrics['epochs']} epochs per fold, final-epoch model (never selected on the test subject).", "",
             "| data | n | UF1 | UAR | accuracy |", "| --- | --- | --- | --- | --- |"]
    for name, scores in metrics["per_dataset"].items():
        lines.append(f"| {name} | {scores['n']} | {scores['uf1']:.4f} | {scores['uar']:.4f} | {scores['accuracy']:.4f} |")
    lines.append(f"| **all (pooled)** | {metrics['n']} | **{metrics['uf1']:.4f}** | **{metrics['uar']:.4f}** | "
                 f"**{metrics['accuracy']:.4f}** |")
    return "\n".join(lines) + "\n"


def _save_figure(figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=Path(path).suffix[1:], dpi=120, bbox_inches="tight")
    plt.close(figure)


def plot_confusion_matrix(table: pd.DataFrame, label_names, path):
    counts = pooled_confusion_matrix(table, len(label_names))
    figure, axis = plt.subplots(figsize=(4 + 0.4 * len(label_names), 3.5 + 0.4 * len(label_names)))
    image = axis.imshow(counts, cmap="Blues")
    for (row, column), value in pd.DataFrame(counts).stack().items():
        color = "white" if value > counts.max() / 2 else "black"
        axis.text(column, row, str(value), ha="center", va="center", color=color)
    axis.set_xticks(range(len(label_names)), label_names, rotation=30)
    axis.set_yticks(range(len(label_names)), label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("Pooled LOSO confusion matrix")
    figure.colorbar(image, ax=axis)
    _save_figure(figure, path)


def plot_training_curves(fold_results, path):
    """Mean (and per-fold, faint) training loss and accuracy over epochs."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    histories = [pd.DataFrame(r["history"]) for r in fold_results if r["history"]]
    for history in histories:
        loss_axis.plot(history["epoch"], history["train_loss"], color="tab:blue", alpha=0.15)
        accuracy_axis.plot(history["epoch"], history["train_accuracy"], color="tab:blue", alpha=0.15)
    if histories:
        mean = pd.concat(histories).groupby("epoch").mean(numeric_only=True)
        loss_axis.plot(mean.index, mean["train_loss"], color="tab:blue", label="train (mean over folds)")
        accuracy_axis.plot(mean.index, mean["train_accuracy"], color="tab:blue", label="train (mean over folds)")
        if "eval_accuracy" in mean:
            accuracy_axis.plot(mean.index, mean["eval_accuracy"], color="tab:orange",
                               label="held-out subject (not used for selection)")
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Training loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    accuracy_axis.legend(loc="lower right", fontsize=8)
    loss_axis.legend(loc="upper right", fontsize=8)
    _save_figure(figure, path)
