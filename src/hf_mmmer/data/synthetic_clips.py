"""Procedural micro-expression clips: the package's built-in data for its demo and tests.

Each subject is a procedural face (face shape and position, skin tone and texture, hair, lighting,
placement of brows, eyes, nose and mouth). Each clip shows one class as a small local, AU-like motion
of 0.5 to 2 pixels, a smooth displacement field around the brows or lip corners:

- negative: brows lowered and drawn together, lip corners down (AU4 + AU15),
- positive: lip corners up and out (AU12),
- surprise: brows raised (AU1 + AU2),

under nuisances that a real recording has: global head jitter and drift, sensor noise and blinks.

The class must be learnable from motion, not from the apex face alone, so the apex pose is drawn from
one distribution for all classes (a random resting amount of each motion, wider than the motion
itself) and the onset is the apex minus the class motion. The apex frame therefore carries no class
information at all; only the onset-to-apex motion does. Everything is drawn from generators seeded by
`(seed, subject)` and `(seed, subject, clip)`, so a clip does not depend on how many others are made.
"""

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import cv2
import numpy as np

from .labels import THREE_CLASSES

REFERENCE_SIZE = 128
"""Geometry below is in pixels of a 128x128 frame and scales with `image_size`; motion stays in pixels."""
MOTION_PX = (0.5, 2.0)
"""Range of the class motion's largest displacement."""
REST_POSE_PX = 2.0
"""The apex pose's amount of each motion is uniform in +-this, for every class."""
JITTER_PX = 0.25
DRIFT_PX = 0.4
NOISE_LEVELS = (1.0, 3.0)
"""Per-frame head jitter (std), per-clip head drift from first to last frame (std), sensor noise std range
(gray levels)."""
BLINK_PROBABILITY = 0.3

MOTIONS = ("brow_raise", "brow_inner", "lip_corner_up", "lip_corner_out")
CLASS_MOTIONS = {
    "negative": np.array([-0.8, 0.6, -0.8, 0.0]),
    "positive": np.array([0.0, 0.0, 0.9, 0.45]),
    "surprise": np.array([1.0, 0.0, 0.0, 0.0]),
}
"""Class -> relative amount of each of `MOTIONS` (scaled per face by `class_motion`)."""
CLASS_ACTION_UNITS = {"negative": "4+15", "positive": "12", "surprise": "1+2"}


class SyntheticClip(NamedTuple):
    frames: list  # uint8 arrays, (H, W) gray or (H, W, 3) RGB; frames[0] is the onset
    apex_index: int
    label: int  # index into THREE_CLASSES
    subject: str


class Face(NamedTuple):
    """One subject: albedo with eyes open and closed, eyelid map, lighting, motion fields."""

    open_eyes: np.ndarray
    closed_eyes: np.ndarray
    eye_mask: np.ndarray  # soft mask of the eye openings
    lid_position: np.ndarray  # 0 at the top of each eye opening, 1 at its bottom
    light: np.ndarray  # (H, W) multiplicative lighting
    motion_fields: np.ndarray  # (len(MOTIONS), 2, H, W) displacement (dx, dy) per unit of each motion


def subject_name(index: int) -> str:
    return f"subj{index:02d}"


def _soft(distance):
    """Coverage of a shape from a signed distance in pixels (negative inside): a 1-pixel soft edge."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _ellipse_distance(x, y, cx, cy, ax, ay):
    return (np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2) - 1.0) * min(ax, ay)


def _paint(canvas, coverage, color):
    canvas += coverage[..., None] * (np.asarray(color, np.float32) - canvas)


def _texture(rng, shape, scales_and_amounts):
    """Band-limited noise: a sum of Gaussian-blurred white noise, so flow has texture to track."""
    field = np.zeros(shape, np.float32)
    for sigma, amount in scales_and_amounts:
        noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
        field += amount * noise / (noise.std() + 1e-6)
    return field


def _bump(x, y, cx, cy, sx, sy):
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(np.float32)


def make_face(rng: np.random.Generator, image_size: int = REFERENCE_SIZE, color: bool = False) -> Face:
    """A random subject's face; see the module docstring for what varies."""
    s = image_size / REFERENCE_SIZE
    y, x = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    u = rng.uniform
    cx, cy = image_size / 2 + u(-8, 8) * s, image_size / 2 + u(-5, 8) * s
    ax, ay = u(34, 43) * s, u(44, 53) * s
    skin_level = u(0.45, 0.8)
    skin = skin_level * np.array([u(1.0, 1.12), u(0.84, 0.95), u(0.68, 0.84)])
    hair = u(0.04, 0.3) * np.array([1.0, u(0.8, 1.0), u(0.6, 0.9)])
    background = np.array([u(0.2, 0.9), u(0.2, 0.9), u(0.2, 0.9)])

    canvas = np.empty((image_size, image_size, 3), np.float32)
    canvas[:] = background * (1 + 0.25 * (y / image_size - 0.5))[..., None]
    canvas *= 1 + 0.08 * _texture(rng, (image_size, image_size), [(6 * s, 1.0)])[..., None]
    _paint(canvas, _soft(_ellipse_distance(x, y, cx, cy - 0.18 * ay, 1.1 * ax, 0.95 * ay)), hair)
    skin_texture = 1 + _texture(rng, (image_size, image_size), [(0.8 * s, 0.05), (3 * s, 0.05), (9 * s, 0.04)])
    face = _soft(_ellipse_distance(x, y, cx, cy, ax, ay))
    canvas += face[..., None] * (skin * skin_texture[..., None] - canvas)
    skin_canvas = canvas.copy()  # eyelids are skin, painted where eyes close

    eye_y = cy - u(0.15, 0.24) * ay
    eye_dx, eye_w, eye_h = u(0.36, 0.46) * ax, u(5.5, 7.5) * s, u(2.4, 3.4) * s
    brow_y = eye_y - u(8, 12) * s
    brow_w, brow_t, brow_arch, brow_tilt = u(7, 10) * s, u(1.6, 2.6) * s, u(0.5, 2.5) * s, u(-0.15, 0.15)
    mouth_y, mouth_w = cy + u(0.42, 0.52) * ay, u(9, 13) * s
    lip_h, smile = u(1.8, 3.2) * s, u(-1.2, 1.2) * s
    lips = skin * np.array([u(0.75, 0.95), u(0.45, 0.65), u(0.45, 0.65)])
    nose_y = cy + u(0.08, 0.18) * ay

    eye_mask = np.zeros((image_size, image_size), np.float32)
    lid_position = np.zeros_like(eye_mask)
    fields = np.zeros((len(MOTIONS), 2, image_size, image_size), np.float32)
    for side in (-1, 1):
        ex, bx = cx + side * eye_dx, cx + side * (eye_dx + u(-1, 1) * s)
        along = (x - bx) / brow_w
        centre = brow_y - brow_arch * (1 - np.clip(along, -1, 1) ** 2) + side * brow_tilt * (x - bx)
        brow = _soft(np.maximum(np.abs(y - centre) - 0.5 * brow_t * np.sqrt(np.clip(1 - along**2, 0, 1)),
                                (np.abs(x - bx) - brow_w)))
        _paint(canvas, brow, hair)
        _paint(skin_canvas, brow, hair)
        opening = _soft(_ellipse_distance(x, y, ex, eye_y, eye_w, eye_h))
        eye_mask = np.maximum(eye_mask, opening)
        lid_position += opening * np.clip((y - (eye_y - eye_h)) / (2 * eye_h), 0, 1)
        _paint(canvas, opening, np.full(3, u(0.75, 0.9)))
        _paint(canvas, _soft(np.hypot(x - ex - u(-1, 1) * s, y - eye_y) - 0.9 * eye_h), hair * 0.6)
        lash = _soft(np.abs(y - (eye_y + eye_h * 0.6)) - 0.6 * s) * (np.abs(x - ex) < eye_w)
        _paint(skin_canvas, lash, hair * 0.7)
        _paint(canvas, _soft(np.hypot(x - (cx + side * 3 * s), y - nose_y) - 1.3 * s), skin * 0.5)  # nostril

        fields[0, 1] -= _bump(x, y, bx, brow_y, 0.8 * brow_w, 6 * s)
        fields[1, 0] -= side * _bump(x, y, bx - side * 0.4 * brow_w, brow_y, 0.5 * brow_w, 5 * s)
        corner = cx + side * mouth_w
        fields[2, 1] -= _bump(x, y, corner, mouth_y, 4.5 * s, 4.5 * s)
        fields[3, 0] += side * _bump(x, y, corner, mouth_y, 4.5 * s, 4.5 * s)
    nose = _soft(np.abs(x - cx - u(-1, 1) * s) - 0.8 * s) * (y > eye_y + 4 * s) * (y < nose_y) * 0.35
    mouth_line = mouth_y - smile * (1 - ((x - cx) / mouth_w) ** 2)
    for target in (canvas, skin_canvas):
        _paint(target, nose, skin * 0.7)
        _paint(target, _soft(_ellipse_distance(x, y, cx, mouth_y, mouth_w, lip_h)), lips)
        _paint(target, _soft(np.abs(y - mouth_line) - 0.6 * s) * (np.abs(x - cx) < mouth_w), lips * 0.4)
    closed = canvas * (1 - eye_mask[..., None]) + skin_canvas * eye_mask[..., None]

    angle, strength = u(0, 2 * np.pi), u(0.1, 0.4)
    light = u(0.8, 1.1) * (1 + strength * ((x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)) / ay)
    if not color:
        to_gray = np.array([0.299, 0.587, 0.114], np.float32)
        canvas, closed = canvas @ to_gray, closed @ to_gray
    return Face(canvas, closed, eye_mask, lid_position, light.astype(np.float32), fields)


def class_motion(face: Face, label: int, amplitude: float) -> np.ndarray:
    """Amounts of `MOTIONS` that show class `label` on `face` with a largest displacement of `amplitude` px."""
    unit = CLASS_MOTIONS[THREE_CLASSES[label]]
    return unit * amplitude / np.hypot(*np.tensordot(unit, face.motion_fields, axes=1)).max()


def _profile(num_frames: int, apex: int) -> np.ndarray:
    """Expression intensity per frame: 0 at the onset, 1 at the apex, easing back to 0.3 at the offset."""
    t = np.arange(num_frames, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * np.clip(t / apex, 0, 1)) ** 2
    fall = 1 - 0.7 * np.sin(0.5 * np.pi * np.clip((t - apex) / max(num_frames - 1 - apex, 1), 0, 1)) ** 2
    return np.where(t <= apex, rise, fall)


def render_frames(face: Face, rng: np.random.Generator, label: int, num_frames: int) -> tuple[list, int]:
    """One clip of `face` showing class `label`: uint8 frames and the apex index."""
    apex = int(rng.integers(2, num_frames - 1))
    motion = class_motion(face, label, rng.uniform(*MOTION_PX))
    apex_pose = rng.uniform(-REST_POSE_PX, REST_POSE_PX, len(MOTIONS))
    # Written from the apex pose so that the apex frame is exactly the same whatever the class.
    poses = apex_pose[None] + (_profile(num_frames, apex) - 1)[:, None] * motion[None]
    shifts = (rng.uniform(-1.5, 1.5, 2) + rng.normal(0, DRIFT_PX, 2) * np.linspace(0, 1, num_frames)[:, None]
              + rng.normal(0, JITTER_PX, (num_frames, 2)))
    blink = np.zeros(num_frames)
    if rng.random() < BLINK_PROBABILITY:
        blink = np.clip(1 - np.abs(np.arange(num_frames) - rng.integers(num_frames)) / 1.5, 0, 1)
    noise = rng.uniform(*NOISE_LEVELS)
    return [draw_frame(face, pose, shift, closure, noise, rng) for pose, shift, closure in zip(poses, shifts, blink)], apex


def draw_frame(face: Face, pose: np.ndarray, shift: np.ndarray, closure: float, noise: float,
               rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """One uint8 frame of `face`: `pose` (amount of each of `MOTIONS`), head `shift` (dx, dy) in pixels, eye
    `closure` (0 open, 1 closed), sensor `noise` std (gray levels, drawn from `rng`), lighting `gain`."""
    size = face.light.shape[0]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    lid = np.clip((closure - face.lid_position) * 8 + 0.5, 0, 1) * face.eye_mask * (closure > 0)
    lid = lid[..., None] if face.open_eyes.ndim == 3 else lid
    albedo = (face.open_eyes * (1 - lid) + face.closed_eyes * lid).astype(np.float32)
    dx, dy = (np.tensordot(pose, face.motion_fields, axes=1) + np.asarray(shift)[:, None, None]).astype(np.float32)
    warped = cv2.remap(albedo, x - dx, y - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    light = face.light[..., None] if warped.ndim == 3 else face.light
    pixels = warped * light * (255 * gain) + rng.normal(0, noise, warped.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def face_rng(seed: int, subject: int) -> np.random.Generator:
    return np.random.default_rng([seed, subject, 0])


def clip_rng(seed: int, subject: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, subject, 1, index])


def clip_label(index: int) -> int:
    """Clip `index` of every subject shows class `index % 3`: balanced classes for any clip count."""
    return index % len(THREE_CLASSES)


def subject_clips(
    seed: int,
    subject: int,
    indices: Iterable[int],
    image_size: int = REFERENCE_SIZE,
    num_frames: int = 9,
    color: bool = False,
    label: int | None = None,
) -> Iterator[SyntheticClip]:
    """Clips `indices` of subject `subject`, rendering the face once."""
    if num_frames < 4:
        raise ValueError(f"num_frames must be at least 4 (onset, rise, apex, offset); got {num_frames}")
    face = make_face(face_rng(seed, subject), image_size, color)
    for index in indices:
        clip_class = clip_label(index) if label is None else label
        frames, apex = render_frames(face, clip_rng(seed, subject, index), clip_class, num_frames)
        yield SyntheticClip(frames, apex, clip_class, subject_name(subject))


def render_clip(
    seed: int = 0,
    subject: int = 0,
    index: int = 0,
    label: int | None = None,
    image_size: int = REFERENCE_SIZE,
    num_frames: int = 9,
    color: bool = False,
) -> SyntheticClip:
    """Clip `index` of subject `subject`: its frames from onset to offset (uint8, gray `(H, W)` or RGB
    `(H, W, 3)`) and apex index. The `synthetic` dataset holds the same clip for the same arguments,
    unless `label` overrides its class (for tests that need a given one)."""
    return next(subject_clips(seed, subject, [index], image_size, num_frames, color, label))
