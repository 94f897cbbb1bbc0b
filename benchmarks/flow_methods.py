"""Accuracy and speed of the dense optical flow methods on synthetic micro-expressions.

A real face photo (scikit-image's `astronaut`, cropped around the face that the processor's Haar crop finds,
in gray) is warped with a known displacement field like a micro-expression: local sub-pixel to 2 px motion
(a brow raise: both brows up; a lip-corner pull: both mouth corners out and up), plus a global sub-pixel head
jitter, plus sensor noise on both frames. Each method's flow from the original to the warped frame is compared
with the known field:

- EPE all: mean endpoint error `|flow - truth|` over the frame (a 5 % border excluded, where content leaves
  the frame);
- EPE moving: the same on the pixels whose local (expression) motion exceeds 0.1 px;
- ms/pair: median wall time of one flow computation.

Then the per-pair preprocessing time of the processor's default (face crop + flow + strain + normalisation +
resize) on 256 x 256 frames.

    python benchmarks/flow_methods.py [--pairs 8] [--repeats 5]
"""

import argparse
import time
from functools import partial

import cv2
import numpy as np
from skimage import data

from hf_mmmer import MMMERImageProcessor
from hf_mmmer.face_detection import find_face
from hf_mmmer.optical_flow import FLOW_METHODS, compute_flow


SIZES = (128, 256)
MOVING_THRESHOLD_PX = 0.1


def face_photo(size: int, margin: float) -> np.ndarray:
    """The astronaut's face in RGB, cropped with `margin` around the Haar face box, resized to `size` x `size`."""
    rgb = data.astronaut()
    crop = find_face(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), margin=margin)
    return cv2.resize(crop.apply(rgb), (size, size), interpolation=cv2.INTER_AREA)


def bump(size: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    """A Gaussian bump of height 1 centred at `(cx, cy)` (fractions of the frame)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def expression_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """Local motion `(size, size, 2)` in px: a brow raise and a lip-corner pull, each 0.2 to 2 px at its peak."""
    field = np.zeros((size, size, 2), np.float32)
    brow, lips = rng.uniform(0.2, 2.0, size=2)
    for cx in (0.33, 0.67):
        field[..., 1] -= brow * bump(size, cx, 0.30, 0.08)
    for cx, outward in ((0.36, -1.0), (0.64, 1.0)):
        corner = lips * bump(size, cx, 0.78, 0.06)
        field[..., 0] += outward * corner * 0.8
        field[..., 1] -= corner * 0.6
    return field


def warp_forward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """
    The frame in which the content at `p` of `image` has moved to `p + flow(p)`.

    `cv2.remap` samples backwards, so the inverse map `q -> p` with `p + flow(p) = q` is found by fixed-point
    iteration; the known field is then exactly the forward flow on the onset grid.
    """
    size = image.shape[0]
    grid = np.dstack(np.meshgrid(np.arange(size), np.arange(size))).astype(np.float32)
    source = grid.copy()
    for _ in range(10):
        moved = cv2.remap(flow, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        source = grid - moved
    return cv2.remap(image, source[..., 0], source[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image + rng.normal(0.0, 1.5, image.shape), 0, 255).round().astype(np.uint8)


def synthetic_pair(face: np.ndarray, rng: np.random.Generator):
    """`(onset, apex, truth, moving)`: uint8 frames, the true flow and the mask of expression motion."""
    size = face.shape[0]
    local = expression_field(size, rng)
    truth = local + rng.uniform(-0.5, 0.5, size=2).astype(np.float32)
    apex = warp_forward(face.astype(np.float32), truth)
    moving = np.linalg.norm(local, axis=-1) > MOVING_THRESHOLD_PX
    return noisy(face.astype(np.float32), rng), noisy(apex, rng), truth, moving


def dis_opencv_preset(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Reference row: DIS with OpenCV's medium preset unchanged (finest pyramid level 1, not 0)."""
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(onset, apex, None)


def evaluate(flow_function, pairs, repeats: int) -> tuple[float, float, float]:
    errors_all, errors_moving, times = [], [], []
    for onset, apex, truth, moving in pairs:
        size = onset.shape[0]
        border = size // 20
        interior = np.zeros_like(moving)
        interior[border:-border, border:-border] = True
        error = np.linalg.norm(flow_function(onset, apex) - truth, axis=-1)
        errors_all.append(error[interior].mean())
        errors_moving.append(error[interior & moving].mean())
        for _ in range(repeats):
            start = time.perf_counter()
            flow_function(onset, apex)
            times.append(time.perf_counter() - start)
    return float(np.mean(errors_all)), float(np.mean(errors_moving)), 1000 * float(np.median(times))


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def preprocessing_time(repeats: int) -> str:
    """
    Median ms per (onset, apex) pair through the processor with face crop on on 256 x 256 RGB frames framed on the face
    (as micro-expression footage is: the face about 150 px wide), and the face detection's share of it.
    """
    onset = face_photo(256, margin=0.4)
    rng = np.random.default_rng(0)
    field = expression_field(256, rng)
    apex = np.dstack([noisy(warp_forward(onset[..., c].astype(np.float32), field), rng) for c in range(3)])
    processor = MMMERImageProcessor(do_crop_face=True)
    output = processor(onset=onset, apex=apex)  # warm-up: loads the cascade
    total = median_ms(lambda: processor(onset=onset, apex=apex, return_tensors="np"), repeats)
    detection = median_ms(lambda: find_face(cv2.cvtColor(onset, cv2.COLOR_RGB2GRAY)), repeats)
    box = find_face(cv2.cvtColor(onset, cv2.COLOR_RGB2GRAY), margin=processor.face_margin).box
    return (
        f"Default processor ({processor.flow_method}, face crop {output['face_crop'][0]} "
        f"{box[2] - box[0]}x{box[3] - box[1]} px): {total:.1f} ms per 256x256 (onset, apex) pair, "
        f"of which face detection {detection:.1f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="synthetic pairs per frame size")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per pair")
    args = parser.parse_args()

    methods = {name: partial(compute_flow, method=name) for name in FLOW_METHODS}
    methods["dis, OpenCV preset (reference)"] = dis_opencv_preset
    methods["zero flow (baseline)"] = lambda onset, apex: np.zeros((*onset.shape, 2), np.float32)
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; {args.pairs} pairs per size")
    print("| method | size | EPE all (px) | EPE moving (px) | ms/pair |")
    print("| --- | --- | --- | --- | --- |")
    for size in SIZES:
        rng = np.random.default_rng(size)
        face = cv2.cvtColor(face_photo(size, margin=0.25), cv2.COLOR_RGB2GRAY)
        pairs = [synthetic_pair(face, rng) for _ in range(args.pairs)]
        for name, flow_function in methods.items():
            epe_all, epe_moving, ms = evaluate(flow_function, pairs, args.repeats)
            print(f"| {name} | {size}x{size} | {epe_all:.3f} | {epe_moving:.3f} | {ms:.1f} |")
    print()
    print(preprocessing_time(10 * args.repeats))


if __name__ == "__main__":
    main()
