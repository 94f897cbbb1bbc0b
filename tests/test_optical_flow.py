"""Optical flow, optical strain and flow normalisation on synthetic frames of known motion."""

import cv2
import numpy as np
import pytest

from hf_mmmer import optical_flow
from hf_mmmer.optical_flow import (
    DEFAULT_FLOW_METHOD,
    FLOW_METHODS,
    compute_flow,
    flow_to_unit_maps,
    get_flow_method,
    optical_strain,
)


SIZE = 96


def textured_frame(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Smooth random texture, float32 0..255: every pixel has gradient, so flow is well defined everywhere."""
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return 255 * (texture - texture.min()) / (texture.max() - texture.min())


def bump(size: int = SIZE, centre=(0.5, 0.5), sigma: float = 0.12) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))


def moved(frame: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`frame` with its content moved by `(u, v)` px (small, smooth fields), as uint8."""
    grid_y, grid_x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]].astype(np.float32)
    warped = cv2.remap(frame, grid_x - u, grid_y - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(warped, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("method", sorted(FLOW_METHODS))
def test_rightward_shift_of_a_region_gives_positive_u_there_only(method):
    frame = textured_frame()
    region = bump()
    apex = moved(frame, 1.5 * region, np.zeros_like(region))
    flow = compute_flow(frame.round().astype(np.uint8), apex, method)
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    inside, outside = region > 0.8, region < 0.02
    assert flow[..., 0][inside].mean() > 0.9
    assert np.abs(flow[..., 0][outside]).mean() < 0.2
    assert np.abs(flow[..., 1][inside]).mean() < 0.3


def test_strain_of_a_translation_is_zero():
    translation = np.dstack([np.full((32, 32), 1.7), np.full((32, 32), -0.4)]).astype(np.float32)
    assert np.abs(optical_strain(translation)).max() == 0


def test_strain_of_the_flow_of_a_translated_frame_is_near_zero():
    frame = textured_frame(seed=1)
    shift = np.ones((SIZE, SIZE), np.float32)
    flow = compute_flow(frame.round().astype(np.uint8), moved(frame, shift, 0.5 * shift), DEFAULT_FLOW_METHOD)
    interior = (slice(8, -8), slice(8, -8))
    assert np.median(flow[interior][..., 0]) == pytest.approx(1.0, abs=0.1)
    assert optical_strain(flow)[interior].mean() < 0.05


def test_strain_follows_its_formula_on_stretch_and_shear():
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    stretch = np.dstack([0.1 * x, np.zeros_like(x)])  # u_x = 0.1
    shear = np.dstack([0.2 * y, np.zeros_like(x)])  # u_y = 0.2
    assert np.allclose(optical_strain(stretch), 0.1, atol=1e-6)
    assert np.allclose(optical_strain(shear), np.sqrt(0.5) * 0.2, atol=1e-6)


def test_minmax_scales_u_v_strain_to_unit_range_per_channel():
    frame = textured_frame(seed=2)
    apex = moved(frame, 2.0 * bump(), -1.0 * bump(centre=(0.3, 0.6)))
    maps = flow_to_unit_maps(compute_flow(frame.round().astype(np.uint8), apex, DEFAULT_FLOW_METHOD))
    assert maps.shape == (SIZE, SIZE, 3) and maps.dtype == np.float32
    assert np.allclose(maps.min(axis=(0, 1)), 0) and np.allclose(maps.max(axis=(0, 1)), 1)


def test_minmax_maps_a_constant_channel_to_zero():
    still = np.zeros((16, 16, 2), np.float32)
    assert np.array_equal(flow_to_unit_maps(still), np.zeros((16, 16, 3), np.float32))


def test_unknown_normalization_is_rejected():
    with pytest.raises(ValueError, match="flow_normalization 'zscore'.*minmax"):
        flow_to_unit_maps(np.zeros((4, 4, 2), np.float32), "zscore")


def test_registry_has_plain_opencv_methods_and_tvl1_only_with_contrib():
    assert {"dis", "farneback"} <= set(FLOW_METHODS)
    assert ("tvl1" in FLOW_METHODS) == hasattr(cv2, "optflow")


def test_unknown_flow_method_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"Unknown flow_method 'raft'; available: \[.*'dis'.*'farneback'"):
        get_flow_method("raft")


def test_missing_tvl1_says_opencv_contrib_is_needed(monkeypatch):
    monkeypatch.setattr(optical_flow, "FLOW_METHODS", {k: v for k, v in FLOW_METHODS.items() if k != "tvl1"})
    with pytest.raises(ValueError, match="'tvl1'.*opencv-contrib"):
        get_flow_method("tvl1")


def test_flow_frames_of_different_sizes_are_rejected():
    with pytest.raises(ValueError, match="one size"):
        compute_flow(np.zeros((16, 16), np.uint8), np.zeros((16, 17), np.uint8), DEFAULT_FLOW_METHOD)
