#!/usr/bin/env python
"""Parameters, FLOPs and CPU forward latency of an MMMER config.

    python benchmarks/model_size.py [--config_overrides 'hidden_size=32'] [--threads 2]

FLOPs come from torch's own counter (`torch.utils.flop_counter.FlopCounterMode`, which counts a
multiply-add as 2 FLOPs; fused attention kernels are counted too). Latency is the median of repeated
`torch.no_grad()` forwards of the classifier in eval mode after warm-up.
"""

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification
from hf_mmmer.training.arguments import parse_overrides


def random_inputs(config, batch):
    return {f"{m}_values": torch.randn(batch, config.channels(m), config.image_size(m), config.image_size(m))
            for m in config.modalities}


def median_ms(model, inputs, repeats):
    with torch.no_grad():
        for _ in range(3):
            model(**inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(**inputs)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_overrides", default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MMMERConfig(**parse_overrides(args.config_overrides))
    model = MMMERForMicroExpressionClassification(config).eval()
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**random_inputs(config, 1))
    flops = counter.get_total_flops()
    print(f"config: modalities={config.modalities} flow {config.flow_image_size}px patches {config.flow_patch_sizes}, "
          f"texture {config.texture_image_size}px x{config.texture_channels} patches {config.texture_patch_sizes}, "
          f"hidden {config.hidden_size}, layers {config.num_hidden_layers}, heads {config.num_attention_heads}, "
          f"fusion {config.fusion}; torch {torch.__version__}, {args.threads} threads")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| parameters | {params:,} |")
    print(f"| forward FLOPs per sample | {flops / 1e6:.1f} M |")
    for batch in (1, 32):
        ms = median_ms(model, random_inputs(config, batch), args.repeats)
        print(f"| CPU forward latency, batch {batch} | {ms:.2f} ms ({ms / batch:.3f} ms/sample) |")


if __name__ == "__main__":
    main()
