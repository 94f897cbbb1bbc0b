"""The one training loop of the leaderboard's published baselines (STSTNet, OFF-ApexNet, SSSNet, HTNet).

Each baseline brings its model and its published recipe (optimizer, learning rate, epochs, batch size,
whether batches are shuffled); this module trains it on every fold of a protocol. Folds come from the
package (`protocol_folds` + `held_out_split`, the split with the leak check) and per-fold seeds from
`fold_seed`, so every model of the leaderboard sees the same folds as the package's trainer.

The scored prediction is the final epoch's. Each test subject's best epoch is kept too, only to print
the number papers report beside it, labelled; it chooses nothing.
"""

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from hf_mmmer.data import held_out_split
from hf_mmmer.data.loso import protocol_folds
from hf_mmmer.training.fold_training import fold_seed


@dataclass(frozen=True)
class Recipe:
    """A published training recipe; `source` says where it was read."""

    optimizer: str  # "adam" or "sgd"
    learning_rate: float
    epochs: int
    batch_size: int
    weight_decay: float = 0.0
    momentum: float = 0.0
    shuffle: bool = True
    source: str = ""

    def with_epochs(self, epochs: int | None) -> "Recipe":
        """The same recipe at another epoch budget (None keeps the published one)."""
        return self if epochs is None else replace(self, epochs=epochs)


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    raise ValueError(f"recipe optimizer must be adam or sgd, got {recipe.optimizer!r}")


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    model.eval()
    return model(inputs).argmax(-1).numpy()


def train_step(model, optimizer, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """One cross-entropy step on one batch; returns the loss."""
    model.train()
    loss = F.cross_entropy(model(inputs), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def fit(build_model, inputs: torch.Tensor, labels: torch.Tensor, train, recipe: Recipe, seed: int,
        after_epoch=None):
    """Train a fresh `build_model()` on the `train` rows with `recipe`; `after_epoch(model)` runs after every
    epoch. All randomness (initialisation, order, dropout) comes from `seed`, so the model is built only
    after seeding. Returns the model (in eval mode)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_model()
    optimizer = make_optimizer(model, recipe)
    train = torch.as_tensor(train)
    for _ in range(recipe.epochs):
        order = train[torch.randperm(len(train), generator=generator)] if recipe.shuffle else train
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            train_step(model, optimizer, inputs[batch], labels[batch])
        if after_epoch is not None:
            after_epoch(model)
    return model.eval()


def train_fold(build_model, inputs: torch.Tensor, labels: torch.Tensor, train: np.ndarray, test: np.ndarray,
               recipe: Recipe, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train a fresh `build_model()` on the `train` rows; return `(final-epoch predictions, test-selected predictions)` of
    the `test` rows. The test-selected ones are those of the epoch with the best test accuracy (the latest
    among ties), the papers' protocol, kept for a labelled comparison only."""
    state = {"accuracy": -1.0}
    truth = labels[test].numpy()

    def score_test(trained):
        state["final"] = predict(trained, inputs[test])
        accuracy = float((state["final"] == truth).mean())
        if accuracy >= state["accuracy"]:
            state.update(accuracy=accuracy, selected=state["final"])

    fit(build_model, inputs, labels, train, recipe, seed, after_epoch=score_test)
    return state["final"], state["selected"]


def run_protocol(build_model, inputs: torch.Tensor, labels: torch.Tensor, keys, protocol: str, recipe: Recipe,
                 seed: int):
    """Every fold of `protocol` (`loso` or `lodo`) over the rows' fold `keys`, a fresh `build_model()` each.

    Returns `(final, test_selected, fold of each row, seconds)`.
    """
    started = time.perf_counter()
    final = np.zeros(len(labels), dtype=int)
    selected = np.zeros(len(labels), dtype=int)
    folds = np.empty(len(labels), dtype=object)
    for fold, held_out in protocol_folds(keys, protocol).items():
        train, test = held_out_split(keys, held_out)
        final[test], selected[test] = train_fold(build_model, inputs, labels, train, test, recipe,
                                                 fold_seed(seed, fold))
        folds[test] = fold
    return final, selected, folds.tolist(), time.perf_counter() - started
