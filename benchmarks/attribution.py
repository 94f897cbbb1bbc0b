"""Which heatmap shows where the face moved: attribution maps scored on warps of a real face.

A real face photo (scikit-image's `astronaut`, cropped around its Haar face box as the processor would) is
warped by a known local displacement, like a micro-expression: one or two Gaussian bumps of 1.5 px at their
peak (lip corners up or out, one lip corner, brows raised, inner brows lowered), each at three widths, with
sensor noise on both frames. A model classifies the (onset, apex) pair and each method gives a map over the
flow map's pixels. The score of a map is the share of its mass inside the moved region (the flow-map pixels
whose displacement is at least a quarter of the peak), against the share of the area that region covers: a
map that points at the moved region has a share far above the area; a uniform map has share = area.

Methods, each at the flow map's resolution: the paper's fused attention (`importance["flow"]`, the mean
over patch scales); the pipeline's `motion_importance`, |gradient x (input - still)| of the predicted
class's logit with respect to the flow input, where "still" is each channel's median (the level of no
motion after the processor's per-sample min-max scaling); the flow magnitude (the (u, v) distance from
still); the flow magnitude weighted by the attention; |gradient|; and |gradient x input|.

The model is trained here on the built-in synthetic data (the recipe's defaults, one LOSO fold plus the
final model), or given with `--model`:

    python benchmarks/attribution.py [--model DIR] [--seed 0]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from flow_methods import bump, face_photo, noisy, warp_forward

from hf_mmmer.cli import load_pipeline
from hf_mmmer.training.cli import train_from_argv as train

FACE_SIZE = 112
AMPLITUDE_PX = 1.5
WIDTHS = (0.04, 0.06, 0.09)
"""Bump sigmas as fractions of the face side: a small, a lip-corner-sized and a broad motion."""
MOVED = 0.25
"""A flow-map pixel is in the moved region when its displacement is at least this share of the peak."""
WARPS = {
    # name: [(cx, cy, dx, dy)]: bump centres (fractions of the face crop) and directions
    "lip corners up": [(0.36, 0.76, 0.0, -1.0), (0.64, 0.76, 0.0, -1.0)],
    "left lip corner up": [(0.36, 0.76, 0.0, -1.0)],
    "lip corners out": [(0.36, 0.76, -1.0, 0.0), (0.64, 0.76, 1.0, 0.0)],
    "brows raised": [(0.32, 0.32, 0.0, -1.0), (0.68, 0.32, 0.0, -1.0)],
    "inner brows lowered": [(0.43, 0.34, 0.0, 1.0), (0.57, 0.34, 0.0, 1.0)],
}
METHODS = ("attention", "motion_importance", "flow_magnitude", "attention_x_flow_magnitude", "gradient",
           "gradient_x_input")


def displacement(spec, width: float) -> np.ndarray:
    """The warp's field `(FACE_SIZE, FACE_SIZE, 2)` in px, peaking at `AMPLITUDE_PX`."""
    field = np.zeros((FACE_SIZE, FACE_SIZE, 2), np.float32)
    for cx, cy, dx, dy in spec:
        height = bump(FACE_SIZE, cx, cy, width)
        field[..., 0] += dx * height
        field[..., 1] += dy * height
    return field * (AMPLITUDE_PX / np.linalg.norm(field, axis=-1).max())


def candidate_maps(classify, onset: np.ndarray, apex: np.ndarray, attention: np.ndarray) -> dict:
    """The maps the pipeline does not return, from the model's flow input and its gradient."""
    inputs = classify.image_processor(onset=onset, apex=apex, do_crop_face=False, return_tensors="pt")
    flow = inputs["flow_values"].clone().requires_grad_(True)
    logits = classify.model(flow_values=flow, texture_values=inputs["texture_values"]).logits[0]
    (gradient,) = torch.autograd.grad(logits.max(), flow)
    gradient, flow = gradient[0].numpy(), flow.detach()[0].numpy()
    magnitude = np.hypot(*(flow[:2] - np.median(flow[:2], axis=(1, 2), keepdims=True)))
    return {
        "flow_magnitude": magnitude,
        "attention_x_flow_magnitude": attention * magnitude,
        "gradient": np.abs(gradient).sum(0),
        "gradient_x_input": np.abs((gradient * flow).sum(0)),
    }


def score_warp(classify, face: np.ndarray, spec, width: float, rng: np.random.Generator) -> dict:
    field = displacement(spec, width)
    onset, apex = noisy(face.astype(np.float32), rng), noisy(warp_forward(face.astype(np.float32), field), rng)
    size = classify.model.config.flow_image_size
    moved = cv2.resize(np.linalg.norm(field, axis=-1), (size, size), interpolation=cv2.INTER_AREA)
    region = moved >= MOVED * AMPLITUDE_PX
    result = classify({"onset": onset, "apex": apex}, return_importance=True, do_crop_face=False)
    attention = result["importance"]["flow"]
    maps = {"attention": attention, "motion_importance": result["motion_importance"],
            **candidate_maps(classify, onset, apex, attention)}
    shares = {name: float(m[region].sum() / m.sum()) for name, m in maps.items()}
    return {"area": float(region.mean()), "label": result["predictions"][0]["label"], **shares}


def trained_model(work_dir: Path, seed: int) -> Path:
    train(["--dataset", "synthetic", "--folds", "1", "--seed", str(seed), "--num_threads", "1",
           "--output_dir", str(work_dir / "run"), "--cache_dir", str(work_dir / "cache")])
    return work_dir / "run" / "final_model"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="saved model directory (default: train one on the synthetic data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training and of the sensor noise")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="attribution-") as work_dir:
        classify = load_pipeline(args.model or trained_model(Path(work_dir), args.seed))
        face = cv2.cvtColor(face_photo(FACE_SIZE, margin=0.1), cv2.COLOR_RGB2GRAY)
        rng = np.random.default_rng(args.seed)
        rows = [(name, width, score_warp(classify, face, spec, width, rng))
                for name, spec in WARPS.items() for width in WIDTHS]
    print("share of attribution mass inside the moved region (area: the share of the map it covers)\n")
    print(f"| warp | sigma | area | predicted | {' | '.join(METHODS)} |")
    print(f"| --- | ---: | ---: | --- | {' | '.join('---:' for _ in METHODS)} |")
    for name, width, row in rows:
        cells = " | ".join(f"{row[method]:.3f}" for method in METHODS)
        print(f"| {name} | {width:.2f} | {row['area']:.3f} | {row['label']} | {cells} |")
    for summary, reduce in (("mean", np.mean), ("min", np.min)):
        cells = " | ".join(f"{reduce([row[m] for *_, row in rows]):.3f}" for m in METHODS)
        print(f"| **{summary}** | | {reduce([row['area'] for *_, row in rows]):.3f} | | {cells} |")
    ratios = " | ".join(f"{np.mean([row[m] / row['area'] for *_, row in rows]):.1f}x" for m in METHODS)
    print(f"| **mean share / area** | | | | {ratios} |")


if __name__ == "__main__":
    sys.exit(main())
