"""Dense optical flow, optical strain and per-sample flow normalisation (apex spotting: `spotting.py`).

A micro-expression is a sub-pixel to few-pixel motion between the onset frame and the apex frame. The model
sees it as three maps: the horizontal flow `u`, the vertical flow `v` and the optical strain magnitude (how
much the face deforms rather than moves). This module computes them from two grayscale frames.

This file is copied next to saved model weights and imported by transformers' remote-code loader, so it may
import only the standard library, NumPy and OpenCV.
"""

from collections.abc import Callable

import cv2
import numpy as np


FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]

MIN_FRAME_SIZE = 12
"""Smallest side, in pixels, of a frame: DIS optical flow fails inside OpenCV below it."""


def check_frame_size(frame: np.ndarray, name: str = "frame", why: str = "optical flow cannot work on less") -> None:
    """Raise a `ValueError` naming `name` when `frame` is smaller than `MIN_FRAME_SIZE` on a side; `why` is
    the reason the message gives (the default is the frames'; a flow map that is already computed has its own)."""
    if min(frame.shape[:2]) < MIN_FRAME_SIZE:
        raise ValueError(
            f"{name} is {frame.shape[1]}x{frame.shape[0]} (width x height); it needs at least "
            f"{MIN_FRAME_SIZE} x {MIN_FRAME_SIZE} pixels ({why})."
        )


def _tvl1_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    # A new solver per call: OpenCV algorithm objects keep state and are not safe to share between threads.
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(onset, apex, None)


def _dis_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # The preset stops one pyramid level above full resolution, which blurs sub-pixel facial motion; going
    # down to full resolution tracks it better (see benchmarks/RESULTS.md).
    dis.setFinestScale(0)
    return dis.calc(onset, apex, None)


def _farneback_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(
        onset, apex, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
    )


def _build_registry() -> dict[str, FlowFunction]:
    registry: dict[str, FlowFunction] = {}
    # TV-L1 ships only in the opencv-contrib build (`cv2.optflow`).
    if hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create"):
        registry["tvl1"] = _tvl1_flow
    registry["dis"] = _dis_flow
    registry["farneback"] = _farneback_flow
    return registry


FLOW_METHODS: dict[str, FlowFunction] = _build_registry()
"""Dense optical flow methods by name; each maps two uint8 gray frames of one size to an `(H, W, 2)` flow."""

DEFAULT_FLOW_METHOD = "dis"
"""As accurate as TV-L1 on sub-pixel facial motion at a small fraction of its time (see benchmarks/RESULTS.md)."""


def get_flow_method(name: str) -> FlowFunction:
    """Return the flow function registered as `name`, or raise a `ValueError` that lists the available ones."""
    if name in FLOW_METHODS:
        return FLOW_METHODS[name]
    message = f"Unknown flow_method {name!r}; available: {sorted(FLOW_METHODS)}."
    if name == "tvl1":
        message += (
            " TV-L1 needs cv2.optflow, which only the contrib build of OpenCV has: "
            "pip install 'opencv-contrib-python-headless<5' (and uninstall any other OpenCV distribution)."
        )
    raise ValueError(message)


def compute_flow(onset: np.ndarray, apex: np.ndarray, method: str) -> np.ndarray:
    """
    Dense optical flow from `onset` to `apex`.

    Args:
        onset, apex (`np.ndarray`): uint8 grayscale frames `(H, W)` of the same size, at least `MIN_FRAME_SIZE`
            pixels a side; any view (a crop, a slice) is accepted.
        method (`str`): a name in `FLOW_METHODS`.

    Returns:
        `np.ndarray` `(H, W, 2)` float32: `flow[y, x] = (u, v)` such that the onset pixel at `(x, y)` is found at
        `(x + u, y + v)` in the apex frame; content moving right gives `u > 0`, moving down gives `v > 0`.
    """
    flow_function = get_flow_method(method)
    for name, frame in (("onset", onset), ("apex", apex)):
        if frame.dtype != np.uint8 or frame.ndim != 2:
            raise ValueError(f"Flow needs uint8 gray (H, W) frames; {name} is {frame.dtype} {frame.shape}.")
        check_frame_size(frame, name)
    if onset.shape != apex.shape:
        raise ValueError(f"Flow needs two frames of one size; got {onset.shape} and {apex.shape}.")
    # OpenCV's flow needs contiguous rows (DIS asserts it); a face crop or slice of a frame is a strided view.
    return flow_function(np.ascontiguousarray(onset), np.ascontiguousarray(apex)).astype(np.float32, copy=False)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """
    Optical strain magnitude `e = sqrt(u_x^2 + v_y^2 + 0.5 * (u_y + v_x)^2)` of a flow `(H, W, 2)`.

    Strain measures deformation (stretch and shear) and ignores rigid translation, so it highlights facial
    muscle action even when the head drifts. Derivatives are central differences, in 1 / pixel.
    """
    u_y, u_x = np.gradient(flow[..., 0])
    v_y, v_x = np.gradient(flow[..., 1])
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def _minmax_per_channel(maps: np.ndarray) -> np.ndarray:
    low = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - low
    # A constant channel carries no motion; it maps to 0, as OpenCV's NORM_MINMAX does.
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


FLOW_NORMALIZATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"minmax": _minmax_per_channel}
"""Per-sample normalisations of `(H, W, 3)` u, v, strain maps to [0, 1] by name."""


def flow_to_unit_maps(flow: np.ndarray, normalization: str = "minmax") -> np.ndarray:
    """
    Stack u, v and optical strain of `flow` and normalise them per sample to [0, 1].

    `"minmax"`: each channel is mapped linearly so that its minimum over the sample is 0 and its maximum is 1
    (a constant channel becomes 0). This is how the public STSTNet / HTNet flow images were made (each channel
    min-max scaled to 0..255 per sample), so a computed sample and such an image divided by 255 are the same
    representation, and a model trained on one works on the other.

    Returns:
        `np.ndarray` `(H, W, 3)` float32 in [0, 1], channels u, v, strain.
    """
    if normalization not in FLOW_NORMALIZATIONS:
        raise ValueError(f"Unknown flow_normalization {normalization!r}; available: {sorted(FLOW_NORMALIZATIONS)}.")
    maps = np.dstack([flow, optical_strain(flow)]).astype(np.float32)
    return FLOW_NORMALIZATIONS[normalization](maps)
