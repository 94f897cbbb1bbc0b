#!/usr/bin/env python
"""Where a CPU training fold spends its time: the trainer's own `train_fold_model`, timed and profiled.

    python -m benchmarks.research.train_step_profile [--samples 301] [--epochs 30] [--profile_epochs 3] [--threads 1]

A fold is what every LOSO sweep repeats once per subject: `train_fold_model` with the recipe's defaults
(augmentation, class weights, AdamW, schedule, EMA) on `--samples` training samples. Random inputs of the
recipe's shapes stand in for flow maps (the cost does not depend on the values), so this runs without any
dataset. Prints the seconds of one whole fold and the mean time per step, the operators with the largest
self CPU time over `--profile_epochs` more epochs, and the per-step cost of the alternatives the trainer
chose between (optimizer implementation, patch projection as a convolution or a matrix product, the EMA
update), so that speed work goes where the time is.

`torch.compile` is not among the alternatives: it does not pay on CPU (benchmarks/RESULTS.md).
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.profiler import ProfilerActivity, profile

from hf_mmmer import MMMERConfig
from hf_mmmer.modeling_mmmer import (MMMERDropout, MMMERForMicroExpressionClassification, MMMERPatchEmbeddings,
                                     randomly_kept)
from hf_mmmer.training.arguments import ExperimentArguments
from hf_mmmer.training.encoding import EncodedDataset
from hf_mmmer.training.fold_training import FoldRecipe, train_fold_model


def random_dataset(config: MMMERConfig, samples: int) -> EncodedDataset:
    """`samples` random flow maps (and textures) of the recipe's shapes, three classes, one subject each."""
    generator = torch.Generator().manual_seed(0)
    shape = lambda m: (samples, config.channels(m), config.image_size(m), config.image_size(m))  # noqa: E731
    return EncodedDataset(
        flow=torch.randn(*shape("flow"), generator=generator),
        texture=torch.randn(*shape("texture"), generator=generator),
        labels=torch.randint(0, config.num_labels, (samples,), generator=generator),
        sample_ids=[str(i) for i in range(samples)], subjects=[str(i) for i in range(samples)],
        datasets=["random"] * samples, label_names=[str(c) for c in range(config.num_labels)],
    )


def milliseconds(call, repeats: int = 300) -> float:
    """Best of three means of `call()` over `repeats` calls, after a warm-up, in ms."""
    for _ in range(20):
        call()
    means = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            call()
        means.append((time.perf_counter() - started) / repeats * 1000)
    return min(means)


def dropout_inputs(model, batch_size: int) -> list:
    """`(drop probability, input, mask shape)` of every dropout and drop-path call of one training forward."""
    calls = []

    def record(module, inputs):
        x = inputs[0].detach().clone().requires_grad_()
        calls.append((module.p, x, module.mask_shape(x)))

    # Drop path is an `MMMERDropout` with a per-sample mask.
    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, MMMERDropout) and m.p]
    size = model.config.image_size("flow")
    flow = torch.randn(batch_size, model.config.channels("flow"), size, size)
    model.train()(flow_values=flow)
    for hook in hooks:
        hook.remove()
    return calls


def component_costs(config: MMMERConfig, batch_size: int) -> dict:
    """`{alternative: ms per training step}` of the pieces the trainer chose between."""
    model = MMMERForMicroExpressionClassification(config)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    costs = {}
    for name, options in [("AdamW, for-loop (torch's CPU default)", {}), ("AdamW, foreach", {"foreach": True}),
                          ("AdamW, fused (the trainer's)", {"fused": True})]:
        costs[name] = milliseconds(torch.optim.AdamW(model.parameters(), lr=1e-3, **options).step)
    pixels = torch.randn(batch_size, config.channels("flow"), config.image_size("flow"), config.image_size("flow"))
    embeddings = [MMMERPatchEmbeddings(config, "flow", p).eval() for p in config.flow_patch_sizes]  # no dropout
    as_convolution = lambda: sum(e.projection(pixels).sum() for e in embeddings).backward()  # noqa: E731
    as_matmul = lambda: sum(e(pixels).sum() for e in embeddings).backward()  # noqa: E731
    costs["patch projections, forward + backward, strided convolutions"] = milliseconds(as_convolution)
    costs["patch projections, forward + backward, one matmul each (the package's)"] = milliseconds(as_matmul)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.98), use_buffers=True)
    calls = dropout_inputs(model, batch_size)
    bernoulli = lambda: sum(  # noqa: E731
        (F.dropout(x, p, True) if shape is None else x * torch.empty(shape).bernoulli_(1 - p) / (1 - p)).sum()
        for p, x, shape in calls).backward()
    uniform = lambda: sum(randomly_kept(x, p, shape).sum() for p, x, shape in calls).backward()  # noqa: E731
    masks = f"dropout masks, forward + backward, {len(calls)} calls"
    costs[f"{masks}, Bernoulli draws (F.dropout)"] = milliseconds(bernoulli)
    costs[f"{masks}, floor(U + keep) (the package's)"] = milliseconds(uniform)
    costs["EMA update (torch's AveragedModel, the trainer's)"] = milliseconds(lambda: ema.update_parameters(model))
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=301, help="Training samples of a fold (the MEGC2019 dev folder minus one subject).")
    parser.add_argument("--epochs", type=int, default=ExperimentArguments().epochs)
    parser.add_argument("--profile_epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = MMMERConfig()
    data = random_dataset(config, args.samples)
    indices = torch.arange(args.samples)
    zero = torch.zeros(config.channels("flow"))

    def fold(epochs: int):
        recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=epochs))
        train_fold_model(config, data, indices, recipe, seed=0, flow_zero=zero)
        return epochs * math.ceil(args.samples / recipe.batch_size)  # optimizer steps taken

    fold(1)  # first-call allocations and kernel selection
    started = time.perf_counter()
    steps = fold(args.epochs)
    seconds = time.perf_counter() - started
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        profiled_steps = fold(args.profile_epochs)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"train_fold_model, recipe defaults, {args.samples} samples, {args.threads} thread(s): {seconds:.2f} s for "
          f"{args.epochs} epochs, {1000 * seconds / steps:.1f} ms per step (unprofiled)\n")
    print("| operator | share of self CPU time | calls per step |")
    print("| --- | --- | --- |")
    for event in events[: args.rows]:
        print(f"| `{event.key}` | {100 * event.self_cpu_time_total / total:.1f} % | "
              f"{event.count / profiled_steps:.0f} |")
    print(f"\n| alternative | ms per step (batch {ExperimentArguments().batch_size}) | s per fold of {steps} steps |")
    print("| --- | --- | --- |")
    for name, cost in component_costs(config, ExperimentArguments().batch_size).items():
        print(f"| {name} | {cost:.2f} | {cost * steps / 1000:.2f} |")


if __name__ == "__main__":
    main()
