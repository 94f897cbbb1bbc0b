"""Heatmaps of where an MMMER model looked: importance maps drawn over the apex face.

The pipeline (`return_importance=True`) returns, over the face crop the model saw, the fused attention per
modality (the paper's patch importances: motion, the onset-to-apex optical flow, and texture, the apex
face), the motion importance (gradient x (input - still) on the flow, at every pixel of the flow map), and
the apex face. A person reads the prediction from one image: the plain face next to the overlays, so
a region that drove the decision (a brow, a lip corner) is found by comparing the panels.
"""

import os

import cv2
import numpy as np

from .atomic_files import atomic_path

PANEL_SIZE = 256
"""Default side of each square panel in pixels; small faces (the model's texture input) are enlarged to it."""
HEATMAP_VIEWS = {"motion": "motion importance, gradient x (flow - still)", "attention": "fused attention per modality"}
"""What a heatmap draws. `motion` (the default) localises the moved region, where the attention, a mean over
patch grids, spreads over the face (measured in benchmarks/RESULTS.md, attribution section); `attention` is
the paper's view."""
MAP_TITLES = {"motion": "motion importance", "flow": "motion attention", "texture": "texture attention"}


def _as_rgb(face: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(face, cv2.COLOR_GRAY2RGB) if face.ndim == 2 else face


def overlay_importance(face: np.ndarray, importance: np.ndarray, alpha: float = 0.45,
                       colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Draw `importance` (`(h, w)`, non-negative) over `face` (uint8 `(H, W)` or `(H, W, 3)` RGB).

    The map is resized to the face (bilinear, so patch borders do not draw a grid) and its range is
    stretched over `colormap` (least important blue, most important red with JET): colours are relative,
    so a nearly uniform map still spans the scale; [`render_heatmap`] prints how peaked each map is.
    Returns uint8 `(H, W, 3)` RGB: `(1 - alpha) * face + alpha * colours`; a constant map leaves the face.
    """
    rgb = _as_rgb(face)
    heat = cv2.resize(np.asarray(importance, np.float32), rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    low, high = float(heat.min()), float(heat.max())
    if high <= low:
        return rgb.copy()
    levels = np.round(255.0 * (heat - low) / (high - low)).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, colormap), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(rgb, 1.0 - alpha, colours, alpha, 0.0)


def flow_to_color(flow: np.ndarray, size: int = PANEL_SIZE) -> np.ndarray:
    """The flow of a pipeline output (`"flow"`, `(S, S, 3)` u, v, strain in [0, 1]) as a `size` square RGB image.

    The usual optical-flow colour code: hue is the direction of (u, v), brightness its magnitude. Min-max
    scaling moved "no motion" to an unknown level per sample; most of a face stays still, so each channel's
    median is taken as that level (as the pipeline's motion importance does). The brightest pixel is the
    largest motion of this sample: brightness compares regions, not samples.
    """
    u, v = (flow[..., channel] - np.median(flow[..., channel]) for channel in (0, 1))
    magnitude, angle = cv2.cartToPolar(u.astype(np.float32), v.astype(np.float32), angleInDegrees=True)
    hsv = np.zeros((*u.shape, 3), np.uint8)
    hsv[..., 0] = np.round(angle / 2).astype(np.uint8) % 180  # OpenCV's hue runs over 0..179
    hsv[..., 1] = 255
    peak = float(magnitude.max())
    hsv[..., 2] = np.round(255 * magnitude / peak).astype(np.uint8) if peak > 0 else 0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)


def _label(panel: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write `lines` at the panel's top left, white on a dark outline so they read on any face."""
    scale = panel.shape[0] / 512
    thickness = max(1, round(2 * scale))
    for row, text in enumerate(lines):
        origin = (round(8 * scale) + 2, round((30 + 30 * row) * scale) + 2)
        for colour, width in (((0, 0, 0), thickness + 2), ((255, 255, 255), thickness)):
            cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)
    return panel


def render_heatmap(face: np.ndarray, importance: dict, caption: list[str] | None = None,
                   panel_size: int = PANEL_SIZE) -> np.ndarray:
    """Side-by-side panels, each `panel_size` square: the plain face (with `caption`), then one overlay per
    entry of `importance` (e.g. `{"flow": map, "texture": map}` or `{"motion": map}`), titled by its name and
    by the map's peak as a multiple of its mean (1x: uniform, the model looked everywhere alike).

    Returns uint8 RGB `(panel_size, panel_size * (1 + len(importance)), 3)`.
    """
    rgb = _as_rgb(face)
    interpolation = cv2.INTER_AREA if min(rgb.shape[:2]) > panel_size else cv2.INTER_CUBIC
    face_panel = cv2.resize(rgb, (panel_size, panel_size), interpolation=interpolation)
    panels = [_label(face_panel.copy(), caption or ["apex face"])]
    for modality, importance_map in importance.items():
        overlay = overlay_importance(face_panel, importance_map)
        peak = float(np.max(importance_map) / max(np.mean(importance_map), np.finfo(np.float32).tiny))
        panels.append(_label(overlay, [MAP_TITLES.get(modality, modality), f"peak {peak:.1f}x mean"]))
    return np.concatenate(panels, axis=1)


def heatmap_image(prediction: dict, view: str = "motion", panel_size: int = PANEL_SIZE) -> np.ndarray:
    """The heatmap of one pipeline output (called with `return_importance=True`) in one of `HEATMAP_VIEWS`.

    The face panel is captioned with the best class and its score (and the spotted apex frame, if any).
    Returns uint8 RGB, as [`render_heatmap`].
    """
    if view not in HEATMAP_VIEWS:
        raise ValueError(f"Unknown heatmap view {view!r}; choose one of {sorted(HEATMAP_VIEWS)}.")
    if "importance" not in prediction:
        raise ValueError("This prediction has no importance maps: call the pipeline with return_importance=True.")
    best = prediction["predictions"][0]
    caption = [f"{best['label']} {best['score']:.2f}"]
    if prediction.get("apex_index") is not None:
        caption.append(f"apex frame {prediction['apex_index']}")
    if view == "motion" and "motion_importance" not in prediction:
        raise ValueError("This model does not use the motion (flow) modality, so there is no motion importance: "
                         "draw the attention view.")
    if prediction.get("apex_face") is None:
        raise ValueError("A flow map given without its apex face has no face to draw the heatmap on: give the apex too.")
    maps = {"motion": prediction["motion_importance"]} if view == "motion" else prediction["importance"]
    return render_heatmap(prediction["apex_face"], maps, caption, panel_size)


def save_heatmap(prediction: dict, path: str | os.PathLike, panel_size: int = PANEL_SIZE,
                 view: str = "motion") -> np.ndarray:
    """Write [`heatmap_image`] of one pipeline output as a PNG at `path` and return the image (atomically: a
    link at `path` is replaced, never written through)."""
    image = heatmap_image(prediction, view, panel_size)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the heatmap for {os.fspath(path)!r}.")
    with atomic_path(path) as temporary:
        temporary.write_bytes(png.tobytes())
    return image
