"""Image processor for MMMER: from face frames to the model's `flow_values` and `texture_values`.

This file is copied next to saved model weights and imported by transformers' remote-code loader in processes
that never imported `hf_mmmer`, so it imports only the standard library, NumPy, OpenCV, Pillow, transformers and
its sibling modules (single-dot relative imports).
"""

import io
import math
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any, TypedDict

import cv2
import numpy as np
from PIL import Image, ImageOps
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.utils import TensorType

from .face_detection import FaceCrop, find_face
from .optical_flow import (
    DEFAULT_FLOW_METHOD,
    FLOW_NORMALIZATIONS,
    check_frame_size,
    compute_flow,
    flow_to_unit_maps,
    get_flow_method,
)
from .spotting import APEX_SPOTTING, spot_apex


IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
"""File endings taken as frames when a clip is given as a folder."""

ON_NO_FACE = ("error", "full_frame")

# Keys of the output that are per-sample Python lists, not arrays; BatchFeature must not tensorise them.
_LIST_OUTPUTS = ["apex_index", "face_crop"]


class MMMERImageProcessorKwargs(TypedDict, total=False):
    """The processor's parameters: saved in `preprocessor_config.json`, overridable per call."""

    flow_size: int
    texture_size: int
    texture_channels: int
    do_crop_face: bool
    face_margin: float
    do_align_face: bool
    on_no_face: str
    flow_method: str
    flow_normalization: str
    apex_spotting: str
    do_normalize: bool
    flow_mean: list[float]
    flow_std: list[float]
    image_mean: list[float]
    image_std: list[float]


_PARAMETERS = tuple(MMMERImageProcessorKwargs.__annotations__)
# Keys transformers writes into (or once wrote into) preprocessor_config.json besides the processor's parameters.
_TRANSFORMERS_KEYS = {
    "image_processor_type", "auto_map", "processor_class", "_processor_class", "feature_extractor_type",
}


def is_flag(value) -> bool:
    """Whether `value` is a bool (NumPy's too): a setting's `"false"` or `"no"` would otherwise count as true."""
    return isinstance(value, (bool, np.bool_))


def _name(base: str, index: int | None) -> str:
    return base if index is None else f"{base}[{index}]"


def _with_path(name: str, item: Any) -> str:
    """`name` plus the file it came from (a path, or the file a PIL image was opened from, as `datasets` does),
    so that an error about one item of a batch names the file to fix."""
    path = item if isinstance(item, (str, os.PathLike)) else getattr(item, "filename", "")
    return f"{name} ({os.fspath(path)})" if path else name


def _natural_key(file_name: str) -> list:
    """Sort key that orders `img2.jpg` before `img10.jpg`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", file_name)]


def _is_truncated_jpeg(content: bytes) -> bool:
    """
    A JPEG whose last scan has no end-of-image marker after it: OpenCV decodes it with a grey bottom part and
    says so only on stderr. The marker cannot occur inside entropy-coded data (0xFF is stuffed there), and data
    some cameras append after the marker does not hide it.
    """
    last_scan = content.rfind(b"\xff\xda")
    return content.startswith(b"\xff\xd8") and last_scan >= 0 and b"\xff\xd9" not in content[last_scan:]


_EXIF_ORIENTATION = 0x0112
# The array operation that shows a frame upright, per EXIF orientation (2 to 8; 1 is upright), as
# `PIL.ImageOps.exif_transpose` does it: mirror, rotate 180, flip, transpose, rotate 90 clockwise, transverse,
# rotate 90 counter-clockwise.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _exif_orientation(content: bytes) -> int:
    """The EXIF orientation of an encoded image (1, upright, when it has none or Pillow cannot parse it)."""
    try:
        with Image.open(io.BytesIO(content)) as image:  # reads the header only
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 -- a format Pillow does not know has no EXIF it could read either
        return 1
    return orientation if orientation in _UPRIGHT else 1


def _read_file(path: str, name: str) -> np.ndarray:
    """The image at `path`; `name` already names the file (see `_with_path`).

    The file is read once: the truncation check and the decoder see the same bytes.
    """
    if os.path.isdir(path):
        raise ValueError(f"{name}: is a folder; expected an image file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such file.")
    with open(path, "rb") as file:
        content = file.read()
    if _is_truncated_jpeg(content):
        raise ValueError(f"{name}: truncated JPEG (no end-of-image marker); its bottom would decode as grey.")
    array = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED) if content else None
    if array is None:
        raise ValueError(f"{name}: cannot read it as an image (unreadable or not an image format).")
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA if array.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
    # A phone stores a portrait photo as landscape pixels plus an EXIF rotation; every viewer applies it,
    # and so does PIL's `exif_transpose`, which transformers' `load_image` and `datasets` use.
    return _UPRIGHT.get(_exif_orientation(content), lambda a: a)(array)


def _read_array(item: Any, name: str) -> np.ndarray:
    """A path, PIL image or NumPy array as an array, RGB(A) channel order, dtype unchanged."""
    if isinstance(item, (str, os.PathLike)):
        return _read_file(os.fspath(item), name)
    if isinstance(item, Image.Image):
        item = ImageOps.exif_transpose(item)  # upright, as a file is read (a no-op without an EXIF rotation)
        # Float ("F") and 32-bit integer ("I") images keep their values for `_to_uint8`; `convert("RGB")` would
        # truncate them. Other modes (palette, CMYK, ...) have a well-defined RGB rendering.
        keep = item.mode in ("L", "RGB", "RGBA", "F", "I") or item.mode.startswith("I;16")
        return np.asarray(item if keep else item.convert("RGB"))
    if isinstance(item, np.ndarray):
        if item.size == 0:
            raise ValueError(f"{name} is empty (shape {item.shape}).")
        return item
    raise TypeError(f"{name} is a {type(item).__name__}; expected a file path, a PIL image or a NumPy array.")


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """
    Pixel values as uint8, by one rule per dtype, refusing values the rule cannot read rather than clipping them:
    uint8 as is; uint16 as 0..65535 (16-bit PNG / TIFF); other integers must hold 0..255; floats must lie in
    [0, 1] (a float frame in 0..255 or [-1, 1] is refused: a guess from its values would misread some frames).
    """
    kind, bits = array.dtype.kind, array.dtype.itemsize * 8
    if kind == "u" and bits == 8:
        return array
    if kind == "u" and bits == 16:
        return (array / 257.0).round().astype(np.uint8)
    if kind in "ui":
        low, high = array.min(), array.max()
        if low < 0 or high > 255:
            raise ValueError(
                f"{name} is {array.dtype} with values {low}..{high}; integer frames other than uint16 must hold "
                "0..255. Convert it to uint8, to uint16 over the full 0..65535 range, or to float in [0, 1]."
            )
        return array.astype(np.uint8)
    if kind != "f":
        raise ValueError(
            f"{name} has dtype {array.dtype}; expected uint8, uint16, integers in 0..255 or float in [0, 1]."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} is {array.dtype} with values {low:.4g}..{high:.4g}; float frames must lie in [0, 1]. Divide "
            "0..255 data by 255, map [-1, 1] data with (x + 1) / 2, or pass uint8."
        )
    return (array * 255.0).round().astype(np.uint8)


def load_frame(item: Any, name: str = "frame") -> np.ndarray:
    """
    One frame (path, PIL image or NumPy array; gray, RGB or RGBA; any dtype `_to_uint8` reads) as a contiguous
    uint8 `(H, W)` or `(H, W, 3)` RGB array of at least `MIN_FRAME_SIZE` pixels a side. Frames stay uint8 so
    that long clips fit in memory. `name` labels errors (with the file, for a path).
    """
    name = _with_path(name, item)
    array = _read_array(item, name)
    if array.ndim == 3 and array.shape[-1] in (1, 4):
        array = array[..., 0] if array.shape[-1] == 1 else array[..., :3]  # alpha carries no appearance
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(f"{name} has shape {array.shape}; expected a (H, W) gray or (H, W, 3) RGB image.")
    check_frame_size(array, name)
    # OpenCV needs contiguous memory (DIS asserts it); a view such as `frame[:, :60]` is not.
    return np.ascontiguousarray(_to_uint8(array, name))


def load_flow_image(item: Any, name: str = "flow") -> np.ndarray:
    """A precomputed square flow image (channels u, v, strain, each 0..255) as uint8 `(H, W, 3)`."""
    name = _with_path(name, item)
    array = _read_array(item, name)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} has shape {array.shape}; a flow image must have 3 channels (u, v, strain), as the "
            "STSTNet / HTNet flow images do."
        )
    if array.shape[0] != array.shape[1]:
        raise ValueError(
            f"{name} is {array.shape[1]}x{array.shape[0]} (width x height); a precomputed flow image must be "
            "square (resizing it to the square model input would distort the motion)."
        )
    check_frame_size(array, name, why="a smaller map holds too little of the face's motion to be resized to the "
                     "model's input; the public maps are 28 x 28")
    return np.ascontiguousarray(_to_uint8(array, name))


def frame_files(folder: str | os.PathLike, name: str = "frames") -> list[str]:
    """The image files of a folder of frames, in frame order (sorted by the number in their names). Hidden
    names (a leading dot: macOS's `._frame.png` resource forks, editors' backups) are not frames."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: no such folder {folder!r}.")
    files = sorted((f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")),
                   key=_natural_key)
    if not files:
        raise ValueError(f"{name}: folder {folder!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return [os.path.join(folder, f) for f in files]


def load_clip(clip: Any, name: str = "frames") -> list[np.ndarray]:
    """A clip given as a list of frames or as a folder of frame images (`frame_files`)."""
    if isinstance(clip, (str, os.PathLike)):
        return [load_frame(path, f"{name}[{i}]") for i, path in enumerate(frame_files(clip, name))]
    return [load_frame(frame, f"{name}[{i}]") for i, frame in enumerate(clip)]


def _cut_short(path: str) -> bool:
    """Whether an AVI or MP4/QuickTime file ends before its own structure says it does: AVI's RIFF header gives
    the file's size, and MP4's top-level boxes give theirs. Frame counts cannot tell: an AVI's index counts
    the empty chunks a capture tool writes for dropped frames, and WebM's count is an estimate. Other
    containers are not checked."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
            return int.from_bytes(head[4:8], "little") + 8 > size
        if head[4:8] != b"ftyp":
            return False
        offset = 0
        while offset < size:  # each box: a 32-bit size (1: a 64-bit size follows; 0: to the end) and a type
            file.seek(offset)
            box = file.read(16)
            if len(box) < 8 or not all(32 <= byte < 127 for byte in box[4:8]):
                return False  # bytes after the last box (some writers pad), not a box cut off
            length = int.from_bytes(box[:4], "big")
            if length == 1 and len(box) == 16:
                length = int.from_bytes(box[8:16], "big")
            if length < 8:  # 0: the box runs to the end of the file; below 8: not a box header
                return False
            offset += length
        return offset > size


def check_not_cut_short(path: str, name: str) -> None:
    """Refuse a video file cut short (`_cut_short`): it decodes its first part without an error, and a clip
    or a spotting run on that part would look complete."""
    if _cut_short(path):
        raise ValueError(f"{name}: the file ends before its container says it does; it is cut short or damaged "
                         "(copy, download or export it again).")


def load_video(path: str | os.PathLike, name: str = "video") -> list[np.ndarray]:
    """Every frame of a video file, read with OpenCV, as uint8 RGB."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} is a folder; expected a video file (pass a folder of frames as frames=).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such video file {path!r}.")
    check_not_cut_short(path, f"{name} ({path})")
    capture = cv2.VideoCapture(path)
    frames = []
    try:
        ok, frame = capture.read()
        while ok:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            ok, frame = capture.read()
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{name}: cannot read any frame from {path!r} (unreadable or not a video OpenCV decodes).")
    check_frame_size(frames[0], f"{name} ({path})")
    return frames


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A uint8 RGB or gray frame as gray: optical flow and the face cascade work on intensity."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square resize: area averaging when shrinking (no aliasing of fine motion), bilinear when enlarging."""
    shrinking = image.shape[0] >= size and image.shape[1] >= size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _is_sequence(value: Any) -> bool:
    """Lists, tuples and other sequences such as a `datasets` column; not strings, arrays or images."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _as_batch(value: Any, name: str) -> list[tuple[Any, int | None]]:
    """`(item, index)` pairs: a sequence is a batch, anything else one sample (index `None`)."""
    if not _is_sequence(value):
        return [(value, None)]
    if len(value) == 0:
        raise ValueError(f"{name} is an empty batch; pass at least one sample.")
    return [(item, i) for i, item in enumerate(value)]


def _is_clip(value: Any) -> bool:
    return _is_sequence(value) or (isinstance(value, (str, os.PathLike)) and os.path.isdir(value))


def _clip_batch(frames: Any) -> list[tuple[Any, int | None]]:
    """One clip (a folder, or a list of frames) or a batch of clips (a list of folders or of frame lists)."""
    if _is_sequence(frames) and (len(frames) == 0 or _is_clip(frames[0])):
        return _as_batch(frames, "frames")
    return [(frames, None)]


SAMPLE_FORMS = ({"onset", "apex"}, {"flow", "apex"}, {"flow"}, {"frames"}, {"video"})
"""Keys of the dict forms of one sample, as `preprocess` takes them."""


def is_image_file(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) and os.fspath(item).lower().endswith(IMAGE_EXTENSIONS)


def is_frame(item: Any) -> bool:
    return isinstance(item, (np.ndarray, Image.Image)) or is_image_file(item)


def is_frame_list(inputs: Any) -> bool:
    """A non-empty list of frames (arrays, PIL images or image files) is one clip, not a batch."""
    return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(is_frame(item) for item in inputs)


def sample_inputs(sample: Any) -> dict:
    """
    The `preprocess` keyword arguments for one sample given in any form: a dict of one of `SAMPLE_FORMS`, a list
    of frames (a clip), a folder of frames, or a video path. A single image is refused: it has no motion.
    """
    if isinstance(sample, dict):
        if set(sample) not in SAMPLE_FORMS:
            raise ValueError(
                f"A sample dict has keys {sorted(sample)}; expected one of {[sorted(form) for form in SAMPLE_FORMS]}."
            )
        return dict(sample)
    if is_frame_list(sample):
        return {"frames": list(sample)}
    if isinstance(sample, (str, os.PathLike)):
        path = os.fspath(sample)
        if os.path.isdir(path):
            return {"frames": path}
        if is_image_file(path):
            raise ValueError(
                f"{path!r} is a single image; a sample needs motion: pass {{'onset': ..., 'apex': ...}}, a list of "
                "frames, a folder of frames or a video."
            )
        return {"video": path}
    raise TypeError(
        f"Cannot classify a {type(sample).__name__}; pass a dict with onset/apex or flow/apex, a list of frames, a "
        "folder of frames or a video path."
    )


class MMMERImageProcessor(BaseImageProcessor):
    r"""
    Turns a micro-expression sample into the two inputs of the MMMER model:

    - `flow_values` `(B, 3, flow_size, flow_size)`: optical flow `u`, `v` and optical strain from the onset to
      the apex frame;
    - `texture_values` `(B, texture_channels, texture_size, texture_size)`: the apex face.

    Steps for frames: gray conversion; face crop found on the onset and reused on every other frame (so that the
    crop itself does not move); dense optical flow onset to apex; optical strain; per-sample flow normalisation;
    resize; mean / std normalisation. Clips without an apex label are spotted first.

    Flow normalisation (`flow_normalization="minmax"`): u, v and strain are each scaled linearly per sample so
    that the channel's minimum is 0 and its maximum 1 (a constant channel becomes 0), at the resolution the
    flow was computed at. A precomputed flow image (uint8, channels u, v, strain each min-max scaled to 0..255
    per sample, the STSTNet / HTNet format) is divided by 255. Both are then resized (area averaging) to
    `flow_size` and normalised with `flow_mean` / `flow_std`, so computed and precomputed flow are one
    representation and a model trained on either works on raw frames.

    Args:
        flow_size (`int`, *optional*, defaults to 28):
            Side of the square flow maps (28: the size of the public STSTNet / HTNet flow images).
        texture_size (`int`, *optional*, defaults to 56):
            Side of the square apex face texture (`MMMERConfig`'s `texture_image_size`).
        texture_channels (`int`, *optional*, defaults to 1):
            1 for a gray texture, 3 for RGB.
        do_crop_face (`bool`, *optional*, defaults to `False`):
            Crop the face with OpenCV's Haar cascade, found on the onset frame. Off by default, as in the trainer,
            because the datasets ship cropped faces (a face filling the frame is often not detected); turn it on
            for frames that show more than the face.
        face_margin (`float`, *optional*, defaults to 0.1):
            Fraction of the detected face width added on every side of the crop (keeps brows and chin).
        do_align_face (`bool`, *optional*, defaults to `False`):
            Rotate so that the eyes are level (eyes found on the onset); needs `do_crop_face`. Skipped when two
            eyes are not found.
        on_no_face (`str`, *optional*, defaults to `"error"`):
            When no face is found with `do_crop_face`: `"error"` raises, `"full_frame"` uses the whole frame;
            `face_crop` in the output records which happened.
        flow_method (`str`, *optional*, defaults to `"dis"`):
            Dense optical flow method: `"dis"`, `"farneback"`, or `"tvl1"` with opencv-contrib. DIS is the
            default: as accurate as TV-L1 on sub-pixel facial motion at a small fraction of its time (see
            benchmarks/RESULTS.md).
        flow_normalization (`str`, *optional*, defaults to `"minmax"`):
            Per-sample normalisation of u, v, strain, described above. Saved with the processor so that
            training and inference agree.
        apex_spotting (`str`, *optional*, defaults to `"flow_magnitude"`):
            For clips: `"flow_magnitude"` takes the frame where the motion from the onset (the first frame)
            peaks, in regional, head-compensated motion with the eyes left out (`spotting.spot_apex`),
            `"middle"` the frame at `len(clip) // 2`.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Apply `(x - mean) / std` to both outputs; without it both are in [0, 1].
        flow_mean (`list[float]`, *optional*, defaults to `[0.5, 0.5, 0.5]`):
            Mean per flow channel (u, v, strain).
        flow_std (`list[float]`, *optional*, defaults to `[0.5, 0.5, 0.5]`):
            Standard deviation per flow channel.
        image_mean (`list[float]`, *optional*, defaults to 0.5 per texture channel):
            Mean per texture channel (one value is used for every channel).
        image_std (`list[float]`, *optional*, defaults to 0.5 per texture channel):
            Standard deviation per texture channel.

    Call it as `processor(onset=..., apex=...)`, `processor(frames=...)`, `processor(video=...)` or
    `processor(flow=..., apex=...)`; see [`~MMMERImageProcessor.preprocess`].
    """

    model_input_names = ["flow_values", "texture_values"]
    valid_kwargs = MMMERImageProcessorKwargs

    def __init__(
        self,
        flow_size: int = 28,
        texture_size: int = 56,
        texture_channels: int = 1,
        do_crop_face: bool = False,
        face_margin: float = 0.1,
        do_align_face: bool = False,
        on_no_face: str = "error",
        flow_method: str = DEFAULT_FLOW_METHOD,
        flow_normalization: str = "minmax",
        apex_spotting: str = "flow_magnitude",
        do_normalize: bool = True,
        flow_mean: list[float] | None = None,
        flow_std: list[float] | None = None,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - _TRANSFORMERS_KEYS)
        if unknown:
            raise ValueError(
                f"MMMERImageProcessor has no parameter(s) {unknown} (a key of preprocessor_config.json or an "
                f"argument); known parameters: {list(_PARAMETERS)}."
            )
        super().__init__(**kwargs)
        self.flow_size = flow_size
        self.texture_size = texture_size
        self.texture_channels = texture_channels
        self.do_crop_face = do_crop_face
        self.face_margin = face_margin
        self.do_align_face = do_align_face
        self.on_no_face = on_no_face
        self.flow_method = flow_method
        self.flow_normalization = flow_normalization
        self.apex_spotting = apex_spotting
        self.do_normalize = do_normalize
        self.flow_mean = list(flow_mean) if flow_mean is not None else [0.5] * 3
        self.flow_std = list(flow_std) if flow_std is not None else [0.5] * 3
        self.image_mean = list(image_mean) if image_mean is not None else [0.5] * texture_channels
        self.image_std = list(image_std) if image_std is not None else [0.5] * texture_channels
        self._validate()

    def _validate(self):
        """Fail when the processor is made (or loaded), not on the first sample."""
        get_flow_method(self.flow_method)
        choices = {
            "flow_normalization": sorted(FLOW_NORMALIZATIONS),
            "apex_spotting": list(APEX_SPOTTING),
            "on_no_face": list(ON_NO_FACE),
            "texture_channels": [1, 3],
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}={getattr(self, key)!r} is not supported; choose one of {allowed}.")
        for key in ("flow_size", "texture_size"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive int; got {getattr(self, key)!r}.")
        for key in ("do_crop_face", "do_align_face", "do_normalize"):  # bool("false") would be True
            if not is_flag(getattr(self, key)):
                raise ValueError(f"{key} must be true or false; got {getattr(self, key)!r}.")
        margin = self.face_margin
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not math.isfinite(margin) or margin < 0:
            raise ValueError(f"face_margin must be a finite number >= 0; got {margin!r}.")
        if self.do_align_face and not self.do_crop_face:
            raise ValueError("do_align_face=True needs do_crop_face=True: alignment uses the detected face.")
        counts = {"flow_mean": 3, "flow_std": 3, "image_mean": self.texture_channels}
        counts["image_std"] = self.texture_channels
        for key, count in counts.items():
            if len(getattr(self, key)) not in (1, count):
                raise ValueError(f"{key} needs 1 or {count} values; got {getattr(self, key)}.")
        if min(self.flow_std + self.image_std) <= 0:
            raise ValueError("flow_std and image_std must be positive.")

    @classmethod
    def from_config(cls, config, **overrides) -> "MMMERImageProcessor":
        """
        The processor whose outputs the model of `config` (an `MMMERConfig`) takes: output sizes and texture
        channels come from the config, every other parameter from `overrides` or the defaults.
        """
        sizes = {
            "flow_size": config.flow_image_size,
            "texture_size": config.texture_image_size,
            "texture_channels": config.texture_channels,
        }
        processor = cls(**{**sizes, **overrides})
        processor.check_matches(config)
        return processor

    def check_matches(self, config) -> None:
        """
        Raise a `ValueError` when this processor's outputs do not fit the model of `config` (only the modalities
        the model uses count), naming preprocessor_config.json, where a saved processor keeps these values.
        """
        outputs = {"flow": (self.flow_size, 3), "texture": (self.texture_size, self.texture_channels)}
        for modality in config.modalities:
            (size, channels), expected = outputs[modality], (config.image_size(modality), config.channels(modality))
            if (size, channels) != expected:
                raise ValueError(
                    f"The image processor (preprocessor_config.json) makes {modality} inputs of {size}x{size} pixels "
                    f"with {channels} channel(s), but the model (config.json) expects {expected[0]}x{expected[0]} with "
                    f"{expected[1]}; rebuild the processor with MMMERImageProcessor.from_config(model.config) or fix "
                    "preprocessor_config.json."
                )

    def _with_overrides(self, overrides: dict[str, Any]) -> "MMMERImageProcessor":
        unknown = set(overrides) - set(_PARAMETERS)
        if unknown:
            raise TypeError(f"Unknown argument(s) {sorted(unknown)}; processor parameters are {list(_PARAMETERS)}.")
        if not overrides:
            return self
        parameters = {key: getattr(self, key) for key in _PARAMETERS}
        return type(self)(**{**parameters, **overrides})

    def __call__(self, *args, **kwargs) -> BatchFeature:
        """Same as [`~MMMERImageProcessor.preprocess`]."""
        return self.preprocess(*args, **kwargs)

    def preprocess(
        self,
        onset: Any = None,
        apex: Any = None,
        *,
        frames: Any = None,
        video: Any = None,
        flow: Any = None,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Preprocess one sample or a batch, given in exactly one of four forms:

        - `onset=`, `apex=`: the two frames;
        - `frames=`: a clip whose first frame is the onset (a list of frames, or a folder of frame images sorted
          by the number in their names; a list of such clips is a batch); the apex is spotted;
        - `video=`: a video file read with OpenCV, as a clip; a list of paths is a batch;
        - `flow=`, `apex=`: a precomputed flow image (u, v, strain in 0..255) and the apex face crop that goes
          with it. The apex is used as given (not face-cropped again) since the flow was made on that crop.
          `flow=` alone is a flow-only sample (no `texture_values`), for flow-only models and data.

        A frame is a file path, a PIL image or a NumPy array (any view), `(H, W)` or `(H, W, 3)`, at least
        `MIN_FRAME_SIZE` (12) pixels a side; uint8, uint16 (0..65535), other integers holding 0..255, or float in
        [0, 1] (other float ranges are refused, not guessed). `onset`, `apex` and `flow` are one item or a list
        (a batch). Any processor parameter (e.g. `do_crop_face=False`) can be overridden for this call.

        Args:
            return_tensors (`str` or `TensorType`, *optional*):
                `"pt"` for PyTorch tensors, `"np"` or `None` for NumPy arrays.

        Returns:
            `BatchFeature` with `flow_values` `(B, 3, flow_size, flow_size)` and (unless `flow=` came alone)
            `texture_values` `(B, texture_channels, texture_size, texture_size)` float32, plus two per-sample lists:
            `apex_index` (the apex frame index used for a clip, -1 when the caller gave the apex) and
            `face_crop` (`"face"`, `"full_frame"` when no face was found and `on_no_face="full_frame"`, or
            `"off"` when face crop is off or the input is precomputed).
        """
        processor = self._with_overrides(kwargs)
        forms = {"onset": onset, "frames": frames, "video": video, "flow": flow}
        given = sorted(key for key, value in forms.items() if value is not None)
        if given == ["onset"] and apex is not None:
            samples = processor._pairs(onset, apex, "onset", processor.process_pair)
        elif given == ["flow"] and apex is not None:
            samples = processor._pairs(flow, apex, "flow", processor.process_precomputed)
        elif given == ["flow"]:
            samples = [processor.process_precomputed(item, None, index) for item, index in _as_batch(flow, "flow")]
        elif given == ["frames"] and apex is None:
            samples = [processor.process_clip(clip, index) for clip, index in _clip_batch(frames)]
        elif given == ["video"] and apex is None:
            samples = [processor.process_video(path, index) for path, index in _as_batch(video, "video")]
        else:
            raise ValueError(
                "Pass exactly one input form: onset= and apex=, frames=, video=, or flow= (with or without apex=); got "
                f"{given + (['apex'] if apex is not None else []) or 'nothing'}."
            )
        data = {key: np.stack([sample[key] for sample in samples]) for key in self.model_input_names
                if key in samples[0]}  # flow alone (no apex) has no texture_values
        data.update({key: [sample[key] for sample in samples] for key in _LIST_OUTPUTS})
        return BatchFeature(data=data, tensor_type=return_tensors, skip_tensor_conversion=_LIST_OUTPUTS)

    @staticmethod
    def _pairs(first: Any, apex: Any, first_name: str, process) -> list[dict[str, Any]]:
        firsts, apexes = _as_batch(first, first_name), _as_batch(apex, "apex")
        if len(firsts) != len(apexes):
            raise ValueError(f"{first_name} has {len(firsts)} sample(s) but apex has {len(apexes)}; pass one each.")
        return [process(item, apex_item, index) for (item, index), (apex_item, _) in zip(firsts, apexes)]

    def process_pair(self, onset: Any, apex: Any, index: int | None = None) -> dict[str, Any]:
        """
        One (onset, apex) sample, unbatched: `flow_values` `(3, F, F)` and `texture_values` `(C, T, T)` float32
        NumPy arrays, `apex_index` (-1) and `face_crop`. For per-sample use (e.g. `datasets.Dataset.map`).
        `index` is the sample's place in a batch, used only to name it in errors.
        """
        onset_name, apex_name = _name("onset", index), _name("apex", index)
        onset, apex = load_frame(onset, onset_name), load_frame(apex, apex_name)
        if onset.shape[:2] != apex.shape[:2]:
            raise ValueError(
                f"{onset_name} is {onset.shape[1]}x{onset.shape[0]} but {apex_name} is {apex.shape[1]}x"
                f"{apex.shape[0]} (width x height); the two frames of a sample must have one size."
            )
        crop, face_crop = self._face_crop(onset, onset_name)
        apex_face = crop.apply(apex)
        return self._motion_sample(to_gray(crop.apply(onset)), to_gray(apex_face), apex_face, -1, face_crop,
                                   f"{onset_name} and {apex_name}")

    def process_clip(self, frames: Any, index: int | None = None) -> dict[str, Any]:
        """One clip (a list of frames or a folder of frame images, onset first); output as `process_pair`."""
        name = _name("frames", index)
        return self._clip_sample(load_clip(frames, name), name)

    def process_video(self, video: str | os.PathLike, index: int | None = None) -> dict[str, Any]:
        """One video file as a clip; output as `process_pair`."""
        name = _name("video", index)
        return self._clip_sample(load_video(video, name), name)

    def process_precomputed(self, flow: Any, apex: Any = None, index: int | None = None) -> dict[str, Any]:
        """One precomputed flow image with its apex face crop; output as `process_pair`. Without an apex (the
        STSTNet layout of the public maps ships none) the sample is flow-only: it has no `texture_values`."""
        flow_image = load_flow_image(flow, _name("flow", index))
        apex_face = None if apex is None else load_frame(apex, _name("apex", index))
        return self._sample(flow_image.astype(np.float32) / 255.0, apex_face, -1, "off")

    def _clip_sample(self, clip: list[np.ndarray], name: str) -> dict[str, Any]:
        if len(clip) < 2:
            raise ValueError(f"{name} has {len(clip)} frame(s); a clip needs at least 2 (the onset first).")
        for i, frame in enumerate(clip):
            if frame.shape[:2] != clip[0].shape[:2]:
                raise ValueError(
                    f"{name}: frame {i} is {frame.shape[:2]} (height, width) but frame 0 is {clip[0].shape[:2]}; "
                    "all frames of a clip must have one size."
                )
        crop, face_crop = self._face_crop(clip[0], f"{name}, frame 0")
        faces = [crop.apply(frame) for frame in clip]
        grays = [to_gray(face) for face in faces]
        apex_index = spot_apex(grays, self.apex_spotting, self.flow_method)
        return self._motion_sample(grays[0], grays[apex_index], faces[apex_index], apex_index, face_crop,
                                   f"{name}: frame 0 (the onset) and frame {apex_index} (the apex, by "
                                   f"apex_spotting={self.apex_spotting!r})")

    def _face_crop(self, onset: np.ndarray, name: str) -> tuple[FaceCrop, str]:
        """The crop to cut from every frame of the sample (found on the onset) and how it was made."""
        full_frame = FaceCrop(box=(0, 0, onset.shape[1], onset.shape[0]))
        if not self.do_crop_face:
            return full_frame, "off"
        face = find_face(to_gray(onset), margin=self.face_margin, align=self.do_align_face)
        if face is not None:
            return face, "face"
        if self.on_no_face == "full_frame":
            return full_frame, "full_frame"
        raise ValueError(
            f"No face found in {name} (do_crop_face=True). Pass on_no_face='full_frame' to use the whole frame, "
            "or do_crop_face=False if the frames are already cropped faces."
        )

    def _motion_sample(
        self, onset_gray: np.ndarray, apex_gray: np.ndarray, apex_face: np.ndarray, apex_index: int, face_crop: str,
        frames_named: str,
    ) -> dict[str, Any]:
        """The sample of an onset and an apex (gray, cropped); `frames_named` names the two for an error."""
        if np.array_equal(onset_gray, apex_gray):  # the flow would be zero, and its min-max scaling meaningless
            raise ValueError(f"{frames_named} are the same image, so there is no motion to classify; the apex is "
                             "the frame where the expression peaks.")
        flow = compute_flow(onset_gray, apex_gray, self.flow_method)
        return self._sample(flow_to_unit_maps(flow, self.flow_normalization), apex_face, apex_index, face_crop)

    def _sample(self, unit_flow: np.ndarray, apex_face: np.ndarray | None, apex_index: int, face_crop: str) -> dict:
        """Resize and normalise the [0, 1] flow maps `(H, W, 3)` and the uint8 apex face (if any) into model inputs."""
        sample = {
            "flow_values": self._normalize(_resize(unit_flow, self.flow_size), self.flow_mean, self.flow_std),
            "apex_index": apex_index,
            "face_crop": face_crop,
        }
        if apex_face is None:
            return sample
        if self.texture_channels == 1:
            texture = to_gray(apex_face)
        else:
            texture = apex_face if apex_face.ndim == 3 else cv2.cvtColor(apex_face, cv2.COLOR_GRAY2RGB)
        texture = _resize(texture, self.texture_size).astype(np.float32) / 255.0
        return {**sample, "texture_values": self._normalize(texture, self.image_mean, self.image_std)}

    def _normalize(self, image: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
        """`(H, W)` or `(H, W, C)` in [0, 1] to channels-first float32, `(x - mean) / std` when `do_normalize`."""
        if image.ndim == 2:
            image = image[..., None]
        if self.do_normalize:
            image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)

    def flow_zero_level(self) -> np.ndarray:
        """`(3,)` float32: the value of each output flow channel that means "no motion".

        Under per-sample min-max scaling zero motion sits near the middle of u and v (0.5) and at the bottom
        of the strain magnitude (0); `flow_mean` / `flow_std` map that into the values this processor outputs.
        Augmentation mirrors u around it and fills warped borders with it.
        """
        raw = np.array([0.5, 0.5, 0.0], np.float32)
        if not self.do_normalize:
            return raw
        return (raw - np.asarray(self.flow_mean, np.float32)) / np.asarray(self.flow_std, np.float32)
