"""Inference cost of MMMER per sample: image processor + model, for each input form a user has.

The default `MMMERConfig()` with random weights (speed does not depend on them) and the processor that
matches it (`MMMERImageProcessor.from_config(config)`: 28x28 flow, the config's gray texture size, DIS flow).
Inputs:

- frames, face crop: a 256x256 RGB (onset, apex) pair framed on a real face (scikit-image's astronaut with
  a micro-expression-like warp, the pair of `flow_methods.py`); the Haar cascade finds the face on the onset;
- frames, no face crop: the same pair with `do_crop_face=False` (datasets that ship cropped faces);
- precomputed: a 28x28 flow image and a 224x224 RGB apex face crop (the STSTNet / HTNet format).

Per form and thread count (`torch.set_num_threads` and `cv2.setNumThreads` alike): median milliseconds of
the processor and of the model forward at batch 1, their sum (the latency of one sample), and the
throughput at batch `--batch_size` (processor over the whole batch, then one forward pass).

    HF_HUB_OFFLINE=1 python benchmarks/inference.py [--repeats 30] [--batch_size 32] [--threads 1 2]

With `--frame_sides`, it times instead the processor alone, once per size, on that pair scaled up to each
side (one thread, with and without the face crop): the flow runs at the crop's own resolution, so this is
what a very large upload costs (the demo page's `MAX_FRAME_PIXELS`).

    HF_HUB_OFFLINE=1 python benchmarks/inference.py --frame_sides 1024 2048 4096 8192
"""

import argparse
import os
import platform
import time

import cv2
import numpy as np
import torch
from flow_methods import expression_field, face_photo, median_ms, noisy, warp_forward

from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification, MMMERImageProcessor

FRAME_SIZE = 256


def face_pair() -> dict:
    """A 256x256 RGB (onset, apex) pair whose apex shows a brow raise and a lip-corner pull on a real face."""
    onset = face_photo(FRAME_SIZE, margin=0.4)
    rng = np.random.default_rng(0)
    field = expression_field(FRAME_SIZE, rng)
    apex = np.dstack([noisy(warp_forward(onset[..., c].astype(np.float32), field), rng) for c in range(3)])
    return {"onset": onset, "apex": apex}


def precomputed_sample() -> dict:
    rng = np.random.default_rng(0)
    return {"flow": rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), "apex": face_photo(224, margin=0.1)}


def cases(config: MMMERConfig) -> dict:
    """Input form -> (processor matching `config`, one sample as the processor's keyword arguments)."""
    pair = face_pair()
    return {
        f"frames {FRAME_SIZE}x{FRAME_SIZE}, face crop": (MMMERImageProcessor.from_config(config, do_crop_face=True), pair),
        f"frames {FRAME_SIZE}x{FRAME_SIZE}, no face crop": (MMMERImageProcessor.from_config(config), pair),
        "precomputed flow 28x28 + apex 224x224": (MMMERImageProcessor.from_config(config), precomputed_sample()),
    }


def model_inputs(encoded) -> dict:
    return {"flow_values": encoded["flow_values"], "texture_values": encoded["texture_values"]}


@torch.inference_mode()
def measure(processor, model, sample: dict, threads: int, repeats: int, batch_size: int) -> dict:
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    encode = lambda: processor(**sample, return_tensors="pt")  # noqa: E731
    encoded = encode()  # warm-up (and the face crop check below)
    if "onset" in sample and processor.do_crop_face and encoded["face_crop"][0] != "face":
        raise RuntimeError("the face crop case found no face; the timing would not include a crop")
    model(**model_inputs(encoded))
    processor_ms = median_ms(encode, repeats)
    model_ms = median_ms(lambda: model(**model_inputs(encoded)), repeats)
    batch = {key: [value] * batch_size for key, value in sample.items()}
    batch_ms = median_ms(lambda: model(**model_inputs(processor(**batch, return_tensors="pt"))), max(3, repeats // 10))
    return {"processor_ms": processor_ms, "model_ms": model_ms, "latency_ms": processor_ms + model_ms,
            "throughput": batch_size / (batch_ms / 1000)}


def large_frame_rows(config: MMMERConfig, sides: list[int]) -> list[str]:
    """One processor call per side and crop setting on the face pair resized to `side` x `side`."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    for side in sides:
        pair = {key: cv2.resize(frame, (side, side), interpolation=cv2.INTER_LINEAR) for key, frame in face_pair().items()}
        cells = []
        for crop in (True, False):
            processor = MMMERImageProcessor.from_config(config, do_crop_face=crop)
            started = time.perf_counter()
            encoded = processor(**pair)
            cells.append(f"{time.perf_counter() - started:.2f} s ({encoded['face_crop'][0]})")
        rows.append(f"| {side}x{side} | {side * side / 1e6:.1f} | {' | '.join(cells)} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per batch-1 measurement (median)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frame_sides", type=int, nargs="+", default=[],
                        help="time the processor on the pair scaled to these sides instead (one run each)")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = MMMERConfig()
    model = MMMERForMicroExpressionClassification(config).eval()
    parameters = sum(p.numel() for p in model.parameters())
    load_before = os.getloadavg()
    started = time.perf_counter()
    if args.frame_sides:
        rows = large_frame_rows(config, args.frame_sides)
        print(f"OpenCV {cv2.__version__}, one thread; load average {load_before[0]:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after ({time.perf_counter() - started:.0f} s)\n")
        print("| frame | megapixels | processor, face crop (crop made) | processor, no face crop |")
        print("| --- | --- | --- | --- |")
        print("\n".join(rows))
        return
    rows = []
    for name, (processor, sample) in cases(config).items():
        for threads in args.threads:
            result = measure(processor, model, sample, threads, args.repeats, args.batch_size)
            rows.append(
                f"| {name} | {threads} | {result['processor_ms']:.1f} | {result['model_ms']:.1f} | "
                f"**{result['latency_ms']:.1f}** | {result['throughput']:.0f} |"
            )
    print(f"MMMERConfig() defaults: {parameters / 1e6:.2f} M parameters, flow {config.flow_image_size} px "
          f"{config.flow_patch_sizes}, texture {config.texture_image_size} px {config.texture_patch_sizes}; "
          f"processor flow_method={MMMERImageProcessor().flow_method}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"OpenCV {cv2.__version__}; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
          f"({time.perf_counter() - started:.0f} s)\n")
    print(f"| input | threads | processor ms | model ms | latency ms (batch 1) | samples/s (batch {args.batch_size}) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
