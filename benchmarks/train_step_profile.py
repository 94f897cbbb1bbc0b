#!/usr/bin/env python
"""Where one CPU training step of the recipe's model spends its time (torch.profiler, one thread).

    python benchmarks/train_step_profile.py [--batch_size 32] [--steps 20] [--threads 1] [--compile]

A step is what `train_fold_model` does per batch: forward with labels, backward, AdamW. Random inputs of
the recipe's shape stand in for flow maps (the cost does not depend on the values). Prints the mean
step time and the operators with the largest self time, so speed work goes where the time is.
`--compile` also times the same step with `torch.compile(model)` (inductor, CPU) and its one-off
compilation, to decide whether compiling pays for a fold's few hundred steps.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from hf_mmmer import MMMERConfig
from hf_mmmer.modeling_mmmer import MMMERForMicroExpressionClassification


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MMMERConfig()
    config.class_weights = [1.0] * config.num_labels  # the weighted cross-entropy the trainer's balancing runs
    size = config.flow_image_size
    flow = torch.randn(args.batch_size, config.flow_channels, size, size)
    labels = F.one_hot(torch.randint(0, config.num_labels, (args.batch_size,)), config.num_labels).float()

    def make_step(compiled: bool):
        torch.manual_seed(0)
        model = MMMERForMicroExpressionClassification(config).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        forward = torch.compile(model) if compiled else model

        def step():
            loss = forward(flow_values=flow, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    def time_steps(step):
        """(seconds of the first 5 steps, compilation included; mean ms of the next `--steps`)."""
        started = time.perf_counter()
        for _ in range(5):
            step()
        warmup = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        return warmup, (time.perf_counter() - started) / args.steps * 1000

    step = make_step(compiled=False)
    _, milliseconds = time_steps(step)
    if args.compile:
        compile_seconds, compiled_milliseconds = time_steps(make_step(compiled=True))
        print(f"torch.compile: {compiled_milliseconds:.1f} ms per step against {milliseconds:.1f} eager; its first "
              f"5 steps (compilation included) took {compile_seconds:.1f} s\n")
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"recipe model, batch {args.batch_size}, {args.threads} thread(s): {milliseconds:.1f} ms per training "
          f"step (mean of {args.steps}, unprofiled)\n")
    print("| operator | share of self CPU time | calls per step |")
    print("| --- | --- | --- |")
    for event in events[: args.rows]:
        print(f"| `{event.key}` | {100 * event.self_cpu_time_total / total:.1f} % | {event.count / args.steps:.0f} |")


if __name__ == "__main__":
    main()
