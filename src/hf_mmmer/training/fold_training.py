"""Train one model on a set of samples: the unit of every LOSO fold.

The samples live in memory (`EncodedDataset`), so a batch is one index into its tensors: the DataLoader
hands out whole batches of indices, with no per-sample Python. Every random choice of a fold
(initialisation, sample order, augmentation, dropout) is drawn from that fold's own seed, so a fold gives
the same model whether it runs alone, resumed, or on another process of a sharded sweep.
"""

import math
import zlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import BatchSampler, DataLoader, Sampler, TensorDataset
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from ..modeling_mmmer import MMMERForMicroExpressionClassification
from .arguments import CLASS_WEIGHT_POWERS, CLASS_WEIGHTINGS, LR_SCHEDULERS
from .augmentation import AugmentationConfig, augment_batch
from .encoding import EncodedDataset
from .evaluation import predict_probabilities
from .subject_adversary import SubjectAdversary, check_compatible, subject_ids



def fold_seed(seed: int, fold: str) -> int:
    """A stable per-fold seed (Python's `hash` of a str changes between processes)."""
    return zlib.crc32(f"{seed}/{fold}".encode()) & 0x7FFFFFFF


def balanced_class_weights(labels: torch.Tensor, num_labels: int, power: float = 1.0) -> list:
    """`(n / (k * count_c)) ** power` per class, from training labels only (absent classes get weight 1)."""
    counts = torch.bincount(labels, minlength=num_labels).float()
    weights = torch.where(counts > 0, len(labels) / (num_labels * counts.clamp_min(1)), torch.ones_like(counts))
    return [weight ** power for weight in weights.tolist()]


class EpochOrder(Sampler):
    """Each epoch's sample order: a shuffle of `indices`, or for `"balanced_sampling"` as many draws with
    replacement, each class equally likely (the loss is then unweighted).

    The order is drawn from `generator` when an epoch starts, the same generator the augmentation then
    draws from; with several processes accelerate copies the main process's generator to the others at
    that moment, so they all agree on the order and each takes its own batches of it.
    """

    def __init__(self, indices: torch.Tensor, labels: torch.Tensor, class_weighting: str, generator: torch.Generator):
        self.indices, self.labels, self.class_weighting, self.generator = indices, labels, class_weighting, generator

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        if self.class_weighting != "balanced_sampling":
            order = torch.randperm(len(self.indices), generator=self.generator)
        else:
            per_sample = (1 / torch.bincount(self.labels).float())[self.labels]
            order = torch.multinomial(per_sample, len(self.indices), replacement=True, generator=self.generator)
        return iter(self.indices[order].tolist())


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
    subject_adversary: float = 0.0
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)

    @classmethod
    def from_arguments(cls, args):
        return cls(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, lr_scheduler=args.lr_scheduler,
            class_weighting=args.class_weighting, ema_decay=args.ema_decay, subject_adversary=args.subject_adversary,
            augmentation=AugmentationConfig(
                flip_prob=args.flip_prob, max_shift=args.max_shift, max_rotation_deg=args.max_rotation_deg,
                max_scale=args.max_scale, noise_std=args.noise_std, mixup_alpha=args.mixup_alpha,
            ),
        )


def make_scheduler(optimizer, recipe: FoldRecipe, total_steps: int):
    warmup = int(recipe.warmup_ratio * total_steps)
    if recipe.lr_scheduler == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    if recipe.lr_scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    raise ValueError(f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}, got {recipe.lr_scheduler!r}")


def batches(data: EncodedDataset, sampler: Sampler, batch_size: int, targets: torch.Tensor,
            subjects: torch.Tensor) -> DataLoader:
    """Batches `(flow, texture, targets, subjects)` of `data`, its per-sample `targets` (class probabilities)
    and integer subject ids, in `sampler`'s order, each fetched by one tensor index."""
    # `batch_size=None` with a batch sampler as `sampler`: the dataset is indexed once per batch. The
    # loader draws a worker seed from its own generator each epoch; a private one keeps that draw off the
    # global RNG that dropout and mixup use.
    # Flow-only data (no apex images) has no texture: an empty column keeps one batch layout for both.
    texture = data.texture if data.texture is not None else torch.empty(len(data), 0)
    return DataLoader(TensorDataset(data.flow, texture, targets, subjects),
                      sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None,
                      generator=torch.Generator())


def scored_network(model, ema, accelerator):
    """The network whose predictions count: the weight average when there is one, else `model` itself
    (unwrapped from data-parallel training)."""
    if ema is not None:
        return ema.module
    return accelerator.unwrap_model(model) if accelerator is not None else model


def train_fold_model(config, data: EncodedDataset, train_indices, recipe: FoldRecipe, seed: int, flow_zero,
                     eval_indices=None, progress=None, accelerator=None,
                     model_factory=MMMERForMicroExpressionClassification, augment=augment_batch, targets=None,
                     name="the model"):
    """Train a fresh model on `train_indices`; return `(model, history)`.

    `history` has one entry per epoch: mean training loss and accuracy (with the subject adversary also
    the subject head's loss, whose chance level is the log of the number of subjects), and, when `eval_indices` is
    given, the accuracy on those samples (recorded for curves only; nothing here selects on it).
    `flow_zero` `(3,)` is the processor's zero-motion level (`MMMERImageProcessor.flow_zero_level`).
    With an `accelerator` of several processes the model trains data-parallel: accelerate's prepared
    DataLoader gives each process its own batches of the epoch's order and averages the gradients.
    Experiments vary the network through `model_factory(config)` (an `MMMERForMicroExpressionClassification`
    or a subclass) and the augmentation through `augment`, called as `augment_batch` is.
    `targets` `(len(data), num_labels)`, class probabilities per sample, replaces the one-hot labels as what
    the model learns (soft targets, e.g. a teacher's probabilities mixed with the labels); the labels still
    decide the class weights and the sampling.
    With `recipe.subject_adversary > 0` a subject head trains beside the model through a gradient reversal
    of that strength (`subject_adversary.py`); only the model is returned.
    A loss that turns NaN or infinite stops the training with a `ValueError` that begins with `name` (the fold,
    or the final model): a user's setting, usually the learning rate, not a bug.
    """
    if recipe.class_weighting not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, got {recipe.class_weighting!r}"
        )
    check_compatible(recipe.augmentation.mixup_alpha, recipe.subject_adversary)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    flow_zero = torch.as_tensor(flow_zero)
    train_indices = torch.as_tensor(train_indices)
    labels = data.labels[train_indices]
    if targets is None:
        targets = F.one_hot(data.labels, config.num_labels).float()
    elif tuple(targets.shape) != (len(data), config.num_labels):
        raise ValueError(f"targets must have shape {(len(data), config.num_labels)} (one row of class "
                         f"probabilities per sample), got {tuple(targets.shape)}")
    model = model_factory(config)
    subjects, num_subjects = subject_ids(data.subjects)
    adversary = None
    if recipe.subject_adversary > 0:
        # It reads the class head's input, the output's modality embeddings concatenated (`pooled_output`).
        width = config.hidden_size * len(config.modalities)
        adversary = SubjectAdversary(width, num_subjects, recipe.subject_adversary)
        adversary.apply(model._init_weights)
    if recipe.class_weighting in CLASS_WEIGHT_POWERS:
        model.set_class_weights(balanced_class_weights(labels, config.num_labels,
                                                       CLASS_WEIGHT_POWERS[recipe.class_weighting]))
    # Fused: one kernel for all the small tensors, AdamW's algorithm (benchmarks/RESULTS.md, "Speed").
    parameters = [*model.parameters(), *(adversary.parameters() if adversary is not None else ())]
    optimizer = torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=recipe.weight_decay, fused=True)
    loader = batches(data, EpochOrder(train_indices, labels, recipe.class_weighting, generator), recipe.batch_size,
                     targets, subjects)
    # An exponential moving average of the weights is a fixed rule (no epoch is chosen), and it smooths
    # the last epochs' fluctuations that otherwise decide a final-epoch score.
    ema = None
    if recipe.ema_decay > 0:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
    data_parallel = accelerator is not None and accelerator.num_processes > 1
    if data_parallel:
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        if adversary is not None:
            adversary = accelerator.prepare(adversary)
    scheduler = make_scheduler(optimizer, recipe, len(loader) * recipe.epochs)
    history = []
    for epoch in range(recipe.epochs):
        model.train()
        total_loss, subject_loss, correct, seen = 0.0, 0.0, 0, 0
        for flow, texture, batch_targets, batch_subjects in loader:
            flow, texture, batch_targets = augment(
                flow, texture if "texture" in config.modalities else None, batch_targets, recipe.augmentation,
                generator, flow_zero,
            )
            inputs = {"flow_values": flow, "texture_values": texture}
            output = model(**{f"{m}_values": inputs[f"{m}_values"] for m in config.modalities}, labels=batch_targets)
            loss = output.loss
            if adversary is not None:
                pooled = torch.cat([getattr(output, f"{m}_embeds") for m in config.modalities], dim=-1)
                naming = adversary(pooled, batch_subjects)
                loss = loss + naming
                subject_loss += naming.item() * len(batch_targets)
            optimizer.zero_grad(set_to_none=True)
            if data_parallel:
                accelerator.backward(loss)
            else:
                loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            total_loss += output.loss.item() * len(batch_targets)
            correct += (output.logits.argmax(-1) == batch_targets.argmax(-1)).sum().item()
            seen += len(batch_targets)
        record = {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_accuracy": correct / seen}
        if adversary is not None:
            record["train_subject_loss"] = subject_loss / seen
        if eval_indices is not None and len(eval_indices):
            predicted = predict_probabilities(scored_network(model, ema, accelerator), data, eval_indices).argmax(-1)
            record["eval_accuracy"] = float((predicted == data.labels[torch.as_tensor(eval_indices)].numpy()).mean())
            record["eval_predictions"] = predicted.tolist()
        if not math.isfinite(record["train_loss"]):  # the weights are NaN too: every score after it would be noise
            raise ValueError(f"{name}: training diverged: the mean loss of epoch {epoch + 1} is "
                             f"{record['train_loss']}; the usual cause is a learning rate too high for the data (now "
                             f"{recipe.learning_rate})")
        history.append(record)
        if progress is not None:
            progress.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_accuracy']:.2f}")
            progress.update(1)
    return scored_network(model, ema, accelerator).eval(), history

