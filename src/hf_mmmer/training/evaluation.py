"""Batched prediction, shared by the trainer's folds, and the scoring of one saved model (`hf-mmmer evaluate`).

Scoring runs the trainer's own steps (the saved image processor over the dataset, batched prediction, the
pooled UF1 / UAR / accuracy), so its numbers are comparable with a training run's. Unlike a run's LOSO
metrics they describe held-out performance only when the dataset holds no subject the model was
trained on: evaluating a model on its own training data measures memory, not recognition.
"""

from pathlib import Path

import numpy as np
import torch

from ..atomic_files import write_atomically
from .encoding import EncodedDataset, encode_dataset
from .metrics import summarize_predictions
from .reporting import prediction_rows, predictions_table, write_json


@torch.no_grad()
def predict_probabilities(model, data: EncodedDataset, indices, batch_size: int = 256) -> np.ndarray:
    """Softmax scores `(len(indices), num_labels)` of the samples at `indices`."""
    model.eval()
    indices = torch.as_tensor(indices)
    scores = [
        torch.softmax(model(**data.model_inputs(indices[i : i + batch_size], model.config.modalities)).logits, -1)
        for i in range(0, len(indices), batch_size)
    ]
    return torch.cat(scores).numpy()


def evaluate_model(model, processor, dataset, batch_size: int = 256):
    """Predict every sample of `dataset` (a micro-expression `datasets.Dataset`) and score the predictions.

    Returns `(metrics, table)`: `metrics` has `uf1`, `uar`, `accuracy`, `n`, `per_dataset` (pooled within each
    source dataset) and `per_subject` (each subject alone); `table` has one row per sample (as a run's
    `predictions.csv`, with the subject as its `fold`). The dataset's class names must be the model's, in order.
    """
    data = encode_dataset(dataset, processor)
    model_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if model_labels != data.label_names:
        raise ValueError(
            f"The dataset's classes {data.label_names} are not the model's {model_labels}: "
            "a model is only scored on the classes it was trained to output, in its order."
        )
    scores = predict_probabilities(model, data, np.arange(len(data)), batch_size)
    rows = prediction_rows(data, range(len(data)), scores, data.subjects)
    table = predictions_table([{"predictions": rows}], data.label_names)
    metrics = summarize_predictions(table, model.config.num_labels)
    metrics["per_subject"] = metrics.pop("per_fold")
    return metrics, table


def write_evaluation(metrics: dict, table, output_dir) -> Path:
    """Write `metrics.json` and `predictions.csv` (atomically, as a training run does) to `output_dir`."""
    output_dir = Path(output_dir)
    write_json(output_dir / "metrics.json", metrics)
    write_atomically(output_dir / "predictions.csv", table.to_csv(index=False))
    return output_dir
