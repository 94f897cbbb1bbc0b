"""Procedural long videos with micro-expressions at known times among distractors, for spotting.

A video shows one procedural face (`synthetic_clips.make_face`) for 10 to 60 seconds at any frame rate.
Its timeline is a sequence of events separated by calm stretches of 0.6 to 2 s:

- micro-expressions: one class's AU-like motion (`synthetic_clips.class_motion`) of 0.5 to 2 px that rises
  and falls back to neutral within 0.2 to 0.5 s (the ground truth: onset, apex, offset, class);
- macro-expressions: the same motions, 3 to 6 px, held for 0.6 to 2 s with 0.25 to 0.5 s rises and falls;
- head turns: the head moves 2 to 6 px over 0.3 to 0.8 s and stays there;

and, independently of these, what a recording always has: blinks (0.1 to 0.3 s, every 2 to 6 s, even during
an expression), slow head drift and per-frame jitter, sensor noise, and lighting flicker (a per-frame gain
and occasional brightness steps). Every quantity is drawn in seconds, so the same seed gives the same events
at 25, 100 or 200 fps. Frames are rendered on access (`SyntheticVideo.frames[i]`), so an hour of video
costs no memory.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .labels import THREE_CLASSES
from .synthetic_clips import JITTER_PX, MOTIONS, NOISE_LEVELS, REFERENCE_SIZE, Face, class_motion, draw_frame, make_face

MICRO_S = (0.2, 0.5)
MACRO_HOLD_S, MACRO_RISE_S, MACRO_PX = (0.6, 2.0), (0.25, 0.5), (3.0, 6.0)
TURN_S, TURN_PX = (0.3, 0.8), (2.0, 6.0)
CALM_S = (0.6, 2.0)
EVENT_KINDS = {"micro": 0.5, "macro": 0.25, "turn": 0.25}
"""Event kinds and their probabilities."""
BLINK_S, BLINK_EVERY_S = (0.1, 0.3), (2.0, 6.0)
FLICKER_GAIN_STD, FLICKER_STEP = 0.01, (0.9, 1.1)


@dataclass(frozen=True)
class MicroExpression:
    """Ground truth: frame indices and class (an index into `THREE_CLASSES`)."""

    onset: int
    apex: int
    offset: int
    label: int


def _smoothstep(t):
    return np.sin(0.5 * np.pi * np.clip(t, 0.0, 1.0)) ** 2


@dataclass
class _Timeline:
    """Per-frame pose, head shift, eye closure and lighting gain of a whole video (small arrays)."""

    poses: np.ndarray
    shifts: np.ndarray
    closure: np.ndarray
    gain: np.ndarray
    micro: list = field(default_factory=list)


def _timeline(face: Face, rng: np.random.Generator, fps: float, num_frames: int) -> _Timeline:
    times = np.arange(num_frames) / fps
    poses = np.tile(rng.uniform(-1.0, 1.0, len(MOTIONS)), (num_frames, 1))
    shifts = np.zeros((num_frames, 2))
    micro = []
    start = rng.uniform(*CALM_S)
    duration = num_frames / fps
    kinds, weights = list(EVENT_KINDS), list(EVENT_KINDS.values())
    while True:
        kind = kinds[rng.choice(len(kinds), p=weights)]
        label = int(rng.integers(len(THREE_CLASSES)))
        if kind == "micro":
            length = rng.uniform(*MICRO_S)
            peak = start + length * rng.uniform(0.4, 0.6)
            profile = np.where(times <= peak, _smoothstep((times - start) / (peak - start)),
                               _smoothstep((start + length - times) / (start + length - peak)))
            amplitude = rng.uniform(0.5, 2.0)
        elif kind == "macro":
            rise, hold, fall = rng.uniform(*MACRO_RISE_S), rng.uniform(*MACRO_HOLD_S), rng.uniform(*MACRO_RISE_S)
            length = rise + hold + fall
            profile = _smoothstep((times - start) / rise) * _smoothstep((start + length - times) / fall)
            amplitude = rng.uniform(*MACRO_PX)
        else:
            length = rng.uniform(*TURN_S)
            angle = rng.uniform(0, 2 * np.pi)
            step = rng.uniform(*TURN_PX) * np.array([np.cos(angle), np.sin(angle)])
            shifts += _smoothstep((times - start) / length)[:, None] * step
        if start + length + 0.3 > duration:
            break
        if kind != "turn":
            poses += profile[:, None] * class_motion(face, label, amplitude)[None]
        if kind == "micro":
            onset, apex, offset = (int(round(t * fps)) for t in (start, peak, start + length))
            micro.append(MicroExpression(onset, apex, offset, label))
        start += length + rng.uniform(*CALM_S)
    # Slow drift (a smoothed random walk) and per-frame jitter, in pixels.
    drift = np.cumsum(rng.normal(0, 0.3, (int(duration) + 2, 2)), axis=0)
    shifts += np.stack([np.interp(times, np.arange(len(drift)), drift[:, i]) for i in range(2)], axis=1)
    closure = np.zeros(num_frames)
    blink = rng.uniform(*BLINK_EVERY_S)
    while blink < duration:
        half = rng.uniform(*BLINK_S) / 2
        closure = np.maximum(closure, np.clip(1 - np.abs(times - blink - half) / half, 0, 1))
        blink += rng.uniform(*BLINK_EVERY_S)
    gain = np.ones(num_frames)
    for _ in range(max(1, int(duration // 10))):
        gain[times >= rng.uniform(0, duration)] *= rng.uniform(*FLICKER_STEP)
    # Drawn last: their number depends on the frame rate, everything above does not.
    shifts += rng.normal(0, JITTER_PX, (num_frames, 2))
    gain *= 1 + rng.normal(0, FLICKER_GAIN_STD, num_frames)
    return _Timeline(poses, shifts, closure, gain, micro)


class _Frames(Sequence):
    """The frames of a `SyntheticVideo`, rendered on access (a sequence of uint8 `(H, W)` arrays)."""

    def __init__(self, face: Face, timeline: _Timeline, noise: float, seed: int):
        self._face, self._timeline, self._noise, self._seed = face, timeline, noise, seed

    def __len__(self) -> int:
        return len(self._timeline.gain)

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        t = self._timeline
        rng = np.random.default_rng([self._seed, 2, index])
        return draw_frame(self._face, t.poses[index], t.shifts[index], t.closure[index], self._noise, rng,
                          t.gain[index])


@dataclass(frozen=True)
class SyntheticVideo:
    """A synthetic long video: lazily rendered gray frames, its frame rate and its micro-expressions."""

    frames: _Frames
    fps: float
    micro_expressions: list

    def write(self, path) -> None:
        """Write the video to `path` as MJPG (every OpenCV build writes and reads it)."""
        size = self.frames[0].shape[::-1]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, size, isColor=False)
        try:
            for frame in self.frames:
                writer.write(frame)
        finally:
            writer.release()


def render_video(seed: int = 0, duration_s: float = 20.0, fps: float = 25.0,
                 image_size: int = REFERENCE_SIZE) -> SyntheticVideo:
    """A `duration_s` second video at `fps` of a face drawn from `seed`; see the module docstring."""
    if duration_s <= 0 or fps <= 0:
        raise ValueError(f"duration_s and fps must be positive; got {duration_s} and {fps}")
    rng = np.random.default_rng([seed, 3])
    face = make_face(rng, image_size)
    num_frames = int(round(duration_s * fps))
    timeline = _timeline(face, np.random.default_rng([seed, 4]), fps, num_frames)
    noise = rng.uniform(*NOISE_LEVELS)
    return SyntheticVideo(_Frames(face, timeline, noise, seed), fps, timeline.micro)
