"""Micro-expression spotting: where in a clip or a long video a micro-expression happens.

One machinery serves both uses. A face is cut into regions of interest by fixed fractions of its box
(`REGIONS`): brows and mouth, where the AUs of micro-expressions act, and the nose, which the muscles of
expression barely move and so serves as the rigid reference. Each face is resized to `WORK_SIZE` and
standardised in brightness and contrast (lighting flicker is not motion), registered to the reference
frame by its nose region (the head's own motion is removed), and dense optical flow from the reference is
averaged over small cells (averaging sub-pixel flow beats its noise), keeping only cells with texture
enough for flow to see motion. The eye band belongs to no region, so a blink, as short as a
micro-expression and much larger, is never measured.

- A clip whose first frame is the onset (`spot_apex`): the apex is where the signed amount of the
  expression's motion from the onset (`expression_amount`) peaks, located by a peak fitted to the whole
  signal (`peak_frame`) rather than by its largest sample, which wanders on the flat top of an apex.
- A long video (`spot_stretch`, driven by `video_spotting.spot_video`): for each frame `t`, the motion from
  `t - k` to `t` and from `t` to `t + k` (`k` = `WINDOW_S` seconds) are compared, as in the
  feature-difference analysis of Moilanen et al. (ICPR 2014): an expression that rises and falls within
  about `2 k` gives opposite motions and a large difference, while slow drift, a held macro-expression or a
  steady head turn give equal ones. Peaks of that contrast above a robust noise threshold are found with
  `scipy.signal.find_peaks`; candidates lasting longer than `MAX_DURATION_S` or after which the face does
  not come back (a macro-expression's onset or offset) are rejected. Every duration is in seconds, so one
  setting serves 25 to 200 fps; frames are analysed at up to `ANALYSIS_RATE` per second.

This file is copied next to saved model weights and imported by transformers' remote-code loader, so it may
import only the standard library, NumPy, SciPy, OpenCV and its sibling modules (single-dot imports).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.optimize import curve_fit
from scipy.signal import find_peaks, peak_widths

from .optical_flow import DEFAULT_FLOW_METHOD, compute_flow


APEX_SPOTTING = ("flow_magnitude", "middle")
"""Ways to choose the apex frame of a clip (see `spot_apex`)."""

WORK_SIZE = 128
"""Side, in pixels, to which a face is resized before flow: fixes the cost per frame and the cell size."""
CELL = 8
"""Side of the cells, in `WORK_SIZE` pixels, over which flow is averaged."""
TOP_CELLS = 4
"""A frame's motion is the mean of this many largest cell motions: an AU moves a few cells, not a region."""
REGIONS = {
    "brows": (0.15, 0.15, 0.85, 0.35),
    "mouth": (0.25, 0.60, 0.75, 0.90),
}
"""Measured regions as `(x0, y0, x1, y1)` fractions of the face box. The eyes and the nose, between them,
are not measured."""
NOSE = (0.35, 0.45, 0.65, 0.62)
"""The rigid reference region: every face is registered to the reference frame by it."""

MIN_TEXTURE = 0.5
"""Cells with less texture than this fraction of the regions' median are not measured (see `textured_cells`)."""

ANALYSIS_RATE = 50.0
"""Long videos are analysed at most at this many frames per second (every n-th frame above it)."""
WINDOW_S = 0.15
"""Reference distance of the feature difference: about half of a micro-expression's onset-to-offset time."""
MAX_DURATION_S = 0.5
"""Micro-expressions last at most half a second (onset to offset); longer candidates are not micro."""
SMOOTHING = 0.2
"""The contrast is smoothed by a Gaussian of this fraction of a window (an expression's peak is a window
wide; frame-to-frame flow noise is not)."""
BASELINE_S = 2.0
"""Length of the running median that removes slow trends (drift) from the contrast signal."""
THRESHOLD_MAD = 4.0
"""A peak must rise this many robust noise deviations (scaled MAD) above the baseline."""
MIN_CONTRAST = 0.08
"""And at least this much, in pixels of the `WORK_SIZE` face: a still face has tiny MAD."""
RETURN_RATIO = 0.5
"""A micro-expression leaves the face as it found it: the motion from just before the onset to just after
the offset must be below this fraction of the motion at the apex, or the candidate is a macro-expression
(or a head turn) beginning or ending."""


def region_cells() -> np.ndarray:
    """Boolean `(WORK_SIZE // CELL,) * 2` mask of the cells inside `REGIONS`."""
    cells = WORK_SIZE // CELL
    mask = np.zeros((cells, cells), bool)
    for x0, y0, x1, y1 in REGIONS.values():
        mask[round(y0 * cells) : round(y1 * cells), round(x0 * cells) : round(x1 * cells)] = True
    return mask


_REGION_CELLS = region_cells()


def prepare_face(gray: np.ndarray) -> np.ndarray:
    """A uint8 gray face crop resized to `WORK_SIZE` and standardised to mean 128, contrast 40 (flicker)."""
    face = cv2.resize(gray, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    face = (face - face.mean()) * (40.0 / max(float(face.std()), 1e-3)) + 128.0
    return np.clip(face, 0, 255).astype(np.uint8)


def _box(fractions, size: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (round(f * size) for f in fractions)
    return slice(y0, y1), slice(x0, x1)


def register(reference: np.ndarray, face: np.ndarray) -> np.ndarray:
    """`face` shifted so that its nose region lies on the reference's (phase correlation, sub-pixel): the
    head's own translation is removed before flow, so textureless skin, where flow cannot see motion, does
    not show the head motion as a residual."""
    rows, cols = _box(NOSE, WORK_SIZE)
    nose_reference, nose = reference[rows, cols].astype(np.float32), face[rows, cols].astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(nose_reference, nose, cv2.createHanningWindow(nose.shape[::-1], cv2.CV_32F))
    shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
    return cv2.warpAffine(face, shift, face.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def textured_cells(reference: np.ndarray) -> np.ndarray:
    """Boolean per-cell mask of the cells with texture enough for flow to measure motion (the aperture
    problem): a cell's mean smallest structure-tensor eigenvalue is at least `MIN_TEXTURE` of the median."""
    texture = cv2.cornerMinEigenVal(reference, blockSize=5)
    cells = WORK_SIZE // CELL
    texture = cv2.resize(texture, (cells, cells), interpolation=cv2.INTER_AREA)
    return texture >= MIN_TEXTURE * np.median(texture[_REGION_CELLS])


def cell_motion(reference: np.ndarray, face: np.ndarray, method: str = DEFAULT_FLOW_METHOD) -> np.ndarray:
    """Head-compensated flow from `reference` to `face` (both from `prepare_face`), averaged over cells.

    The face is registered to the reference by its nose region (`register`), and the nose region's median
    residual flow is subtracted. Returns `(cells, cells, 2)` float32 mean `(u, v)` per cell.
    """
    flow = compute_flow(reference, register(reference, face), method)
    flow -= np.median(flow[_box(NOSE, WORK_SIZE)].reshape(-1, 2), axis=0)
    cells = WORK_SIZE // CELL
    return cv2.resize(flow, (cells, cells), interpolation=cv2.INTER_AREA)


def measured_cells(reference: np.ndarray) -> np.ndarray:
    """The cells whose motion counts: inside `REGIONS` and textured in `reference` (`textured_cells`)."""
    return _REGION_CELLS & textured_cells(reference)


def motion_score(cells: np.ndarray, measured: np.ndarray) -> float:
    """The mean of the `TOP_CELLS` largest cell motion magnitudes among the `measured` cells."""
    magnitudes = np.linalg.norm(cells, axis=-1)[measured]
    return float(np.sort(magnitudes)[-TOP_CELLS:].mean()) if magnitudes.size else 0.0


def expression_amount(faces: Sequence[np.ndarray], method: str = DEFAULT_FLOW_METHOD) -> np.ndarray:
    """Signed amount of the expression in each face (from `prepare_face`) relative to the first.

    An expression moves its cells in one fixed pattern whose amount rises and falls, so the regional,
    head-compensated motions of all faces from the first (`cell_motion`, measured cells only) are projected
    on their principal component (SVD). The projection averages the flow noise of every measured cell,
    and being signed, noise averages to zero around the amount instead of adding to it as a magnitude
    would. The sign is chosen so that the largest amount is positive; the first face's amount is 0.
    """
    measured = measured_cells(faces[0])
    motions = np.stack([cell_motion(faces[0], face, method)[measured].ravel() for face in faces[1:]])
    amounts = np.concatenate([[0.0], motions @ np.linalg.svd(motions, full_matrices=False)[2][0]])
    return amounts * np.sign(amounts[np.argmax(np.abs(amounts))] or 1.0)


def two_sided_peak(t: np.ndarray, apex: float, height: float, before: float, rise: float, after: float,
                   fall: float) -> np.ndarray:
    """A peak at `apex` of `height` with its own Gaussian flank on each side: it rises from the level
    `before` over about `rise` frames and falls to the level `after` over about `fall` frames."""
    left = before + (height - before) * np.exp(-0.5 * ((t - apex) / rise) ** 2)
    right = after + (height - after) * np.exp(-0.5 * ((t - apex) / fall) ** 2)
    return np.where(t <= apex, left, right)


def peak_frame(amounts: np.ndarray) -> int:
    """The frame where a rising-then-falling `amounts` signal peaks, from a fit of `two_sided_peak`.

    Near its apex an expression is flat (its speed is zero there), so within a frame or two of it the
    amount differs from the peak by less than the flow noise and the largest sample wanders. The flanks,
    where the amount changes fast, say where the peak is: a least-squares fit of a peak with a free
    position, height, speed and end level on each side (`scipy.optimize.curve_fit`) uses every frame.
    Nothing in it is tied to a frame rate or a profile shape beyond "rises, then falls". Signals too short
    to fit (fewer than 7 frames) or where the fit does not converge give the largest sample. The fitted
    peak lies between two frames; the apex is the one of them with the larger amount.
    """
    largest = int(np.argmax(amounts))
    last = len(amounts) - 1
    if len(amounts) < 7:
        return max(largest, 1)
    t = np.arange(len(amounts), dtype=np.float64)
    start = [largest, amounts[largest], 0.0, max(largest, 1) / 2, 0.0, max(last - largest, 1) / 2]
    lower, upper = [0, 0, -np.inf, 0.3, -np.inf, 0.3], [last, np.inf, np.inf, len(t), np.inf, len(t)]
    try:
        parameters, _ = curve_fit(two_sided_peak, t, amounts, p0=start, bounds=(lower, upper), maxfev=5000)
    except (RuntimeError, ValueError):
        return max(largest, 1)
    apex = min(max(parameters[0], 1.0), last)
    return max((int(np.floor(apex)), int(np.ceil(apex))), key=lambda frame: amounts[frame])


def spot_apex(
    frames: Sequence[np.ndarray], strategy: str = "flow_magnitude", method: str = DEFAULT_FLOW_METHOD
) -> int:
    """
    Index of the apex frame of a clip whose first frame is the onset.

    `"flow_magnitude"` finds where the regional, head-compensated motion from the onset peaks: the signed
    amount of the expression per frame (`expression_amount`; the module docstring says how blinks, head
    motion and flicker are kept out) and the position of its fitted peak (`peak_frame`). `"middle"` picks
    `middle_frame(len(frames))`, for clips trimmed around the expression.

    Args:
        frames (`Sequence[np.ndarray]`): at least two uint8 grayscale face crops of one size, onset first.
        strategy (`str`): one of `APEX_SPOTTING`.
        method (`str`): the optical flow method.
    """
    if strategy not in APEX_SPOTTING:
        raise ValueError(f"Unknown apex_spotting {strategy!r}; available: {list(APEX_SPOTTING)}.")
    if len(frames) < 2:
        raise ValueError(f"Apex spotting needs a clip of at least 2 frames; got {len(frames)}.")
    if strategy == "middle":
        return middle_frame(len(frames))
    return peak_frame(expression_amount([prepare_face(frame) for frame in frames], method))


def middle_frame(num_frames: int) -> int:
    """The middle frame of a clip from onset to offset, the MEB toolbox's apex where none is annotated."""
    return num_frames // 2


@dataclass(frozen=True)
class Interval:
    """A spotted micro-expression: frame indices into the video, times in seconds, and its spotting score
    (the feature-difference contrast at the apex, in pixels of the `WORK_SIZE` face)."""

    onset: int
    apex: int
    offset: int
    onset_time: float
    offset_time: float
    score: float


@dataclass
class SpottingSignal:
    """The analysed frames of one stretch of video where the face was seen: their frame indices, the faces
    from `prepare_face`, and the contrast signal (filled by `contrast_signal`)."""

    indices: np.ndarray
    faces: list
    contrast: np.ndarray | None = None


def analysis_step(fps: float) -> int:
    """Analyse every n-th frame so that at most `ANALYSIS_RATE` frames per second are analysed."""
    return max(1, int(fps // ANALYSIS_RATE))


def window_frames(rate: float) -> int:
    """`WINDOW_S` in analysed frames (at least 1)."""
    return max(1, round(WINDOW_S * rate))


def contrast_signal(faces: list, window: int, method: str = DEFAULT_FLOW_METHOD) -> np.ndarray:
    """Feature-difference contrast per analysed face: `|m(t - k -> t) - m(t -> t + k)| / 2` per cell, where
    `m` is `cell_motion`, reduced by `motion_score`; 0 where `t - k` or `t + k` is outside the stretch."""
    forward = [None] * len(faces)  # forward[t] = m(t - k -> t)
    for t in range(window, len(faces)):
        forward[t] = cell_motion(faces[t - window], faces[t], method)
    contrast = np.zeros(len(faces), np.float32)
    for t in range(window, len(faces) - window):
        contrast[t] = motion_score((forward[t] - forward[t + window]) / 2.0, measured_cells(faces[t]))
    return contrast


def find_intervals(contrast: np.ndarray, rate: float) -> list[tuple[int, int, int, float]]:
    """Candidate `(onset, apex, offset, score)` positions in a contrast signal sampled at `rate` per second.

    The contrast is smoothed (`SMOOTHING`), its baseline is a running median (`BASELINE_S`) and the noise the
    scaled MAD of what is left; peaks must rise `THRESHOLD_MAD` noise deviations and `MIN_CONTRAST` pixels
    above the baseline, be at most `MAX_DURATION_S` wide at half height, and be two windows apart (a strong
    expression's side lobes lie one window from its peak). The interval is the peak's width at half height
    widened by half a window on each side.
    """
    if len(contrast) < 3:
        return []
    window = window_frames(rate)
    contrast = gaussian_filter1d(contrast, SMOOTHING * window, mode="nearest")
    baseline = median_filter(contrast, size=max(3, round(BASELINE_S * rate)), mode="nearest")
    detail = contrast - baseline
    noise = 1.4826 * float(np.median(np.abs(detail - np.median(detail))))
    height = max(THRESHOLD_MAD * noise, MIN_CONTRAST)
    peaks, _ = find_peaks(detail, height=height, distance=2 * window,
                          width=(None, MAX_DURATION_S * rate))
    if len(peaks) == 0:
        return []
    _, _, left, right = peak_widths(detail, peaks, rel_height=0.5)
    last = len(contrast) - 1
    return [
        (max(0, int(np.floor(lo)) - window // 2), int(p), min(last, int(np.ceil(hi)) + window // 2), float(detail[p]))
        for p, lo, hi in zip(peaks, left, right)
    ]


def returns_to_neutral(faces: list, onset: int, apex: int, offset: int, rate: float,
                       method: str = DEFAULT_FLOW_METHOD) -> bool:
    """Whether the face after `offset` is close to the face before `onset`, relative to the apex motion."""
    margin = window_frames(rate) // 2
    before, after = faces[max(0, onset - margin)], faces[min(len(faces) - 1, offset + margin)]
    measured = measured_cells(before)
    peak = motion_score(cell_motion(before, faces[apex], method), measured)
    residual = motion_score(cell_motion(before, after, method), measured)
    return residual < RETURN_RATIO * max(peak, 1e-6)


def spot_stretch(stretch: SpottingSignal, fps: float, step: int, method: str = DEFAULT_FLOW_METHOD) -> list[Interval]:
    """Spot the intervals of one stretch of analysed faces (every `step`-th frame of a video at `fps`)."""
    rate = fps / step
    stretch.contrast = contrast_signal(stretch.faces, window_frames(rate), method)
    intervals = []
    for onset, apex, offset, score in find_intervals(stretch.contrast, rate):
        if not returns_to_neutral(stretch.faces, onset, apex, offset, rate, method):
            continue
        frames = [int(stretch.indices[i]) for i in (onset, apex, offset)]
        intervals.append(Interval(*frames, frames[0] / fps, frames[2] / fps, score))
    return intervals
