"""A small STSTNet-style CNN on 28x28 u/v/strain flow maps: the field's reference point.

After Liong et al. 2019 ("Shallow triple stream three-dimensional CNN"): three parallel 3x3 conv
branches (3, 5 and 8 channels) over the flow map, max-pooling, average pooling, concatenation and one
linear layer. Trained per LOSO fold with Adam 1e-3, batch 64, for a fixed number of epochs, and scored
at the final epoch (the honest number) and, for comparison with papers only, at each test subject's
best epoch (labelled test-selected). It is a benchmark reference, not part of the package.
"""

import time

import numpy as np
import torch
from torch import nn

from hf_mmmer.training.fold_training import fold_seed


class STSTNetStyle(nn.Module):
    def __init__(self, num_labels: int = 3):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(width),
                          nn.MaxPool2d(3, stride=3, padding=1), nn.Dropout(0.5))
            for width in (3, 5, 8)
        )
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(16 * 5 * 5, num_labels)

    def forward(self, flow):
        features = torch.cat([branch(flow) for branch in self.branches], dim=1)
        return self.head(self.pool(features).flatten(1))


def train_ststnet(flow: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, seed: int, epochs: int = 200,
                  batch_size: int = 64, learning_rate: float = 1e-3, after_epoch=None) -> STSTNetStyle:
    """One fold's CNN trained on the `train` indices; `after_epoch(model)` runs after each epoch."""
    torch.manual_seed(seed)
    model = STSTNetStyle(int(labels.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    for _ in range(epochs):
        model.train()
        order = train[torch.randperm(len(train))]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(flow[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(model)
    return model.eval()


def run_loso(flow: torch.Tensor, labels: torch.Tensor, subjects, epochs: int = 200, seed: int = 0,
             batch_size: int = 64, learning_rate: float = 1e-3):
    """LOSO over `subjects`; returns `(final_predictions, test_selected_predictions, seconds)`."""
    started = time.perf_counter()
    subjects = np.asarray(subjects)
    final = np.zeros(len(labels), dtype=int)
    selected = np.zeros(len(labels), dtype=int)
    for subject in sorted(set(subjects)):
        test = torch.as_tensor(np.flatnonzero(subjects == subject))
        train = torch.as_tensor(np.flatnonzero(subjects != subject))
        best = {"accuracy": -1.0}

        def keep_test_best(model):  # test-subject selection: reported only as the papers' number
            model.eval()
            with torch.no_grad():
                predictions = model(flow[test]).argmax(-1)
            accuracy = (predictions == labels[test]).float().mean().item()
            if accuracy > best["accuracy"]:
                best.update(accuracy=accuracy, predictions=predictions.numpy())
            best["last"] = predictions.numpy()

        train_ststnet(flow, labels, train, fold_seed(seed, subject), epochs, batch_size, learning_rate,
                      after_epoch=keep_test_best)
        final[test.numpy()] = best["last"]
        selected[test.numpy()] = best["predictions"]
    return final, selected, time.perf_counter() - started
