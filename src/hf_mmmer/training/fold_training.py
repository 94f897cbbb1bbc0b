"""Train one model on a set of samples and predict others: the unit of every LOSO fold.

The samples live in memory (`EncodedDataset`), so a step is an index into tensors: no DataLoader,
no per-sample Python. Every random choice of a fold (initialisation, shuffling, augmentation, dropout)
is drawn from that fold's own seed, so a fold gives the same model whether it runs alone, resumed,
or on another process of a sharded sweep.
"""

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import get_cosine_schedule_with_warmup, get_constant_schedule_with_warmup

from ..modeling_mmmer import MMMERForMicroExpressionClassification
from .augmentation import AugmentationConfig, augment_batch
from .encoding import EncodedDataset


def fold_seed(seed: int, fold: str) -> int:
    """A stable per-fold seed (Python's `hash` of a str changes between processes)."""
    return zlib.crc32(f"{seed}/{fold}".encode()) & 0x7FFFFFFF


def balanced_class_weights(labels: torch.Tensor, num_labels: int) -> list:
    """`n / (k * count_c)` per class, from training labels only (absent classes get weight 1)."""
    counts = torch.bincount(labels, minlength=num_labels).float()
    weights = torch.where(counts > 0, len(labels) / (num_labels * counts.clamp_min(1)), torch.ones_like(counts))
    return weights.tolist()


def epoch_order(train_indices: torch.Tensor, labels: torch.Tensor, class_weighting: str, generator) -> torch.Tensor:
    """One epoch's sample order: a shuffle of `train_indices`, or for `"balanced_sampling"` as many draws
    with replacement, each class equally likely (the loss is then unweighted)."""
    if class_weighting != "balanced_sampling":
        return train_indices[torch.randperm(len(train_indices), generator=generator)]
    per_sample = (1 / torch.bincount(labels).float())[labels]
    return train_indices[torch.multinomial(per_sample, len(train_indices), replacement=True, generator=generator)]


@dataclass
class FoldRecipe:
    """The optimisation recipe of one fold (a view of `ExperimentArguments`)."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    lr_scheduler: str
    class_weighting: str
    ema_decay: float = 0.0
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)

    @classmethod
    def from_arguments(cls, args):
        return cls(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, lr_scheduler=args.lr_scheduler,
            class_weighting=args.class_weighting, ema_decay=args.ema_decay,
            augmentation=AugmentationConfig(
                flip_prob=args.flip_prob, max_shift=args.max_shift, max_rotation_deg=args.max_rotation_deg,
                max_scale=args.max_scale, mixup_alpha=args.mixup_alpha,
            ),
        )


def flow_zero_level(processor) -> torch.Tensor:
    """Normalised value of each flow channel meaning 'no motion': 0.5 for u and v, 0 for strain.

    Under per-sample min-max scaling zero motion sits near the middle of u and v and at the bottom of
    the strain magnitude; the processor's mean/std map that into model units.
    """
    raw = torch.tensor([0.5, 0.5, 0.0])
    if not getattr(processor, "do_normalize", True):
        return raw
    return (raw - torch.tensor(processor.flow_mean)) / torch.tensor(processor.flow_std)


def make_scheduler(optimizer, recipe: FoldRecipe, total_steps: int):
    warmup = int(recipe.warmup_ratio * total_steps)
    if recipe.lr_scheduler == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    if recipe.lr_scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    raise ValueError(f"lr_scheduler must be cosine or constant, got {recipe.lr_scheduler!r}")


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


def train_fold_model(config, data: EncodedDataset, train_indices, recipe: FoldRecipe, seed: int, flow_zero,
                     eval_indices=None, progress=None, accelerator=None):
    """Train a fresh model on `train_indices`; return `(model, history)`.

    `history` has one entry per epoch: mean training loss and accuracy, and, when `eval_indices` is
    given, the accuracy on those samples (recorded for curves only; nothing here selects on it).
    With an `accelerator` of several processes the batches are split across them (data parallel).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_indices = torch.as_tensor(train_indices)
    labels = data.labels[train_indices]
    if recipe.class_weighting == "balanced":
        config = config.__class__.from_dict({**config.to_dict(), "class_weights": balanced_class_weights(labels, config.num_labels)})
    elif recipe.class_weighting not in ("none", "balanced_sampling"):
        raise ValueError(f"class_weighting must be none, balanced or balanced_sampling, got {recipe.class_weighting!r}")
    model = MMMERForMicroExpressionClassification(config)
    # The fused kernel updates all ~100 small tensors in one call: 3.3 -> 0.6 ms a CPU step, a tenth of
    # a fold (benchmarks/RESULTS.md, "Speed"); the algorithm is AdamW's, the float rounding differs.
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay,
                                  fused=True)
    steps_per_epoch = math.ceil(len(train_indices) / recipe.batch_size)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch * recipe.epochs)
    rank, world = 0, 1
    if accelerator is not None and accelerator.num_processes > 1:
        model, optimizer = accelerator.prepare(model, optimizer)
        rank, world = accelerator.process_index, accelerator.num_processes
    plain = accelerator.unwrap_model(model) if world > 1 else model  # the module whose weights are updated
    texture_needed = "texture" in config.modalities
    # An exponential moving average of the weights is a fixed rule (no epoch is chosen), and it smooths
    # the last epochs' fluctuations that otherwise decide a final-epoch score.
    ema = None
    if recipe.ema_decay > 0:
        ema = AveragedModel(plain, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
    scored = ema.module if ema is not None else plain  # the model predictions and the caller get
    history = []
    for epoch in range(recipe.epochs):
        model.train()
        order = epoch_order(train_indices, labels, recipe.class_weighting, generator)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            targets = F.one_hot(data.labels[batch], config.num_labels).float()
            flow, texture, targets = augment_batch(
                data.flow[batch], data.texture[batch] if texture_needed else None, targets,
                recipe.augmentation, generator, flow_zero,
            )
            inputs = {"flow_values": flow, "texture_values": texture}
            inputs = {f"{m}_values": inputs[f"{m}_values"][rank::world] for m in config.modalities}
            targets = targets[rank::world]  # this process's share of the batch (all of it with one process)
            output = model(**inputs, labels=targets)
            optimizer.zero_grad(set_to_none=True)
            if world > 1:
                accelerator.backward(output.loss)
            else:
                output.loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(plain)
            total_loss += output.loss.item() * len(targets)
            correct += (output.logits.argmax(-1) == targets.argmax(-1)).sum().item()
            seen += len(targets)
        record = {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_accuracy": correct / seen}
        if eval_indices is not None and len(eval_indices):
            scores = predict_probabilities(scored, data, eval_indices)
            record["eval_accuracy"] = float((scores.argmax(-1) == data.labels[torch.as_tensor(eval_indices)].numpy()).mean())
            record["eval_predictions"] = scores.argmax(-1).tolist()
        history.append(record)
        if progress is not None:
            progress.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_accuracy']:.2f}")
            progress.update(1)
    return scored.eval(), history
