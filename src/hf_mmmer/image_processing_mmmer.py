"""Image processor for MMMER: from face frames to the model's `flow_values` and `texture_values`.

This file is copied next to saved model weights and imported by transformers' remote-code loader in processes
that never imported `hf_mmmer`, so it imports only the standard library, NumPy, OpenCV, Pillow, transformers and
its sibling modules (single-dot relative imports).
"""

import os
import re
from collections.abc import Sequence
from typing import Any, TypedDict

import cv2
import numpy as np
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.utils import TensorType

from .face_detection import FaceCrop, find_face
from .optical_flow import DEFAULT_FLOW_METHOD, FLOW_NORMALIZATIONS, compute_flow, flow_to_unit_maps, get_flow_method
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


def _name(base: str, index: int | None) -> str:
    return base if index is None else f"{base}[{index}]"


def _natural_key(file_name: str) -> list:
    """Sort key that orders `img2.jpg` before `img10.jpg`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", file_name)]


def _read_array(item: Any, name: str) -> np.ndarray:
    """A path, PIL image or NumPy array as an array, RGB(A) channel order, dtype unchanged."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}: no such file {path!r}.")
        array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if array is None:
            raise ValueError(f"{name}: cannot read {path!r} as an image (unreadable or not an image format).")
        if array.ndim == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA if array.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
        return array
    if isinstance(item, Image.Image):
        return np.asarray(item if item.mode in ("L", "RGB", "RGBA", "I;16") else item.convert("RGB"))
    if isinstance(item, np.ndarray):
        if item.size == 0:
            raise ValueError(f"{name} is empty (shape {item.shape}).")
        return item
    raise TypeError(f"{name} is a {type(item).__name__}; expected a file path, a PIL image or a NumPy array.")


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """
    Pixel values as uint8. uint16 is scaled from 0..65535; other integers are taken as 0..255; floats are
    taken as [0, 1] when their maximum is at most 1, else as [0, 255].
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array / 257.0).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} has dtype {array.dtype}; expected uint8, uint16 or float pixel values.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    scale = 255.0 if array.max() <= 1.0 else 1.0
    return np.clip(array * scale, 0, 255).round().astype(np.uint8)


def load_frame(item: Any, name: str = "frame") -> np.ndarray:
    """
    One frame (path, PIL image or NumPy array; gray, RGB or RGBA; uint8, uint16 or float) as uint8 `(H, W)` or
    `(H, W, 3)` RGB. Frames stay uint8 so that long clips fit in memory. `name` labels errors.
    """
    array = _read_array(item, name)
    if array.ndim == 3 and array.shape[-1] in (1, 4):
        array = array[..., 0] if array.shape[-1] == 1 else array[..., :3]  # alpha carries no appearance
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(f"{name} has shape {array.shape}; expected a (H, W) gray or (H, W, 3) RGB image.")
    if min(array.shape[:2]) < 2:
        raise ValueError(f"{name} has shape {array.shape}; a frame needs at least 2 x 2 pixels.")
    return _to_uint8(array, name)


def load_flow_image(item: Any, name: str = "flow") -> np.ndarray:
    """A precomputed flow image (channels u, v, strain, each 0..255) as uint8 `(H, W, 3)`."""
    array = _read_array(item, name)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} has shape {array.shape}; a flow image must have 3 channels (u, v, strain), as the "
            "STSTNet / HTNet flow images do."
        )
    return _to_uint8(array, name)


def load_clip(clip: Any, name: str = "frames") -> list[np.ndarray]:
    """A clip given as a list of frames or as a folder of frame images (sorted by the number in their names)."""
    if isinstance(clip, (str, os.PathLike)):
        folder = os.fspath(clip)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{name}: no such folder {folder!r}.")
        files = sorted((f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
        if not files:
            raise ValueError(f"{name}: folder {folder!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)}).")
        return [load_frame(os.path.join(folder, f), f"{name} ({f})") for f in files]
    return [load_frame(frame, f"{name}[{i}]") for i, frame in enumerate(clip)]


def load_video(path: str | os.PathLike, name: str = "video") -> list[np.ndarray]:
    """Every frame of a video file, read with OpenCV, as uint8 RGB."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such video file {path!r}.")
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
        texture_size (`int`, *optional*, defaults to 112):
            Side of the square apex face texture.
        texture_channels (`int`, *optional*, defaults to 1):
            1 for a gray texture, 3 for RGB.
        do_crop_face (`bool`, *optional*, defaults to `True`):
            Crop the face with OpenCV's Haar cascade, found on the onset frame. Turn off for datasets that ship
            cropped faces (a face filling the frame is often not detected).
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
            default: on synthetic sub-pixel facial motion it is as accurate as TV-L1 at about 1/30 of its time
            (benchmarks/RESULTS.md).
        flow_normalization (`str`, *optional*, defaults to `"minmax"`):
            Per-sample normalisation of u, v, strain, described above. Saved with the processor so that
            training and inference agree.
        apex_spotting (`str`, *optional*, defaults to `"flow_magnitude"`):
            For clips: `"flow_magnitude"` takes the frame furthest from the onset (the first frame) in regional,
            head-compensated motion with the eyes left out (`spotting.spot_apex`), `"middle"` the frame at
            `len(clip) // 2`.
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
        texture_size: int = 112,
        texture_channels: int = 1,
        do_crop_face: bool = True,
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
        if self.face_margin < 0:
            raise ValueError(f"face_margin must be >= 0; got {self.face_margin}.")
        if self.do_align_face and not self.do_crop_face:
            raise ValueError("do_align_face=True needs do_crop_face=True: alignment uses the detected face.")
        counts = {"flow_mean": 3, "flow_std": 3, "image_mean": self.texture_channels}
        counts["image_std"] = self.texture_channels
        for key, count in counts.items():
            if len(getattr(self, key)) not in (1, count):
                raise ValueError(f"{key} needs 1 or {count} values; got {getattr(self, key)}.")
        if min(self.flow_std + self.image_std) <= 0:
            raise ValueError("flow_std and image_std must be positive.")

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

        A frame is a file path, a PIL image or a NumPy array, `(H, W)` or `(H, W, 3)`, uint8 or float (floats
        with maximum <= 1 are taken as [0, 1], others as [0, 255]). `onset`, `apex` and `flow` are one item or
        a list (a batch). Any processor parameter (e.g. `do_crop_face=False`) can be overridden for this call.

        Args:
            return_tensors (`str` or `TensorType`, *optional*):
                `"pt"` for PyTorch tensors, `"np"` or `None` for NumPy arrays.

        Returns:
            `BatchFeature` with `flow_values` `(B, 3, flow_size, flow_size)` and `texture_values`
            `(B, texture_channels, texture_size, texture_size)` float32, plus two per-sample lists:
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
        elif given == ["frames"] and apex is None:
            samples = [processor.process_clip(clip, index) for clip, index in _clip_batch(frames)]
        elif given == ["video"] and apex is None:
            samples = [processor.process_video(path, index) for path, index in _as_batch(video, "video")]
        else:
            raise ValueError(
                "Pass exactly one input form: onset= and apex=, frames=, video=, or flow= and apex=; got "
                f"{given + (['apex'] if apex is not None else []) or 'nothing'}."
            )
        data = {key: np.stack([sample[key] for sample in samples]) for key in self.model_input_names}
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
        return self._motion_sample(to_gray(crop.apply(onset)), to_gray(apex_face), apex_face, -1, face_crop)

    def process_clip(self, frames: Any, index: int | None = None) -> dict[str, Any]:
        """One clip (a list of frames or a folder of frame images, onset first); output as `process_pair`."""
        name = _name("frames", index)
        return self._clip_sample(load_clip(frames, name), name)

    def process_video(self, video: str | os.PathLike, index: int | None = None) -> dict[str, Any]:
        """One video file as a clip; output as `process_pair`."""
        name = _name("video", index)
        return self._clip_sample(load_video(video, name), name)

    def process_precomputed(self, flow: Any, apex: Any, index: int | None = None) -> dict[str, Any]:
        """One precomputed flow image with its apex face crop; output as `process_pair`."""
        flow_image = load_flow_image(flow, _name("flow", index))
        apex_face = load_frame(apex, _name("apex", index))
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
        return self._motion_sample(grays[0], grays[apex_index], faces[apex_index], apex_index, face_crop)

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
        self, onset_gray: np.ndarray, apex_gray: np.ndarray, apex_face: np.ndarray, apex_index: int, face_crop: str
    ) -> dict[str, Any]:
        flow = compute_flow(onset_gray, apex_gray, self.flow_method)
        return self._sample(flow_to_unit_maps(flow, self.flow_normalization), apex_face, apex_index, face_crop)

    def _sample(self, unit_flow: np.ndarray, apex_face: np.ndarray, apex_index: int, face_crop: str) -> dict:
        """Resize and normalise the [0, 1] flow maps `(H, W, 3)` and the uint8 apex face into model inputs."""
        if self.texture_channels == 1:
            texture = to_gray(apex_face)
        else:
            texture = apex_face if apex_face.ndim == 3 else cv2.cvtColor(apex_face, cv2.COLOR_GRAY2RGB)
        texture = _resize(texture, self.texture_size).astype(np.float32) / 255.0
        return {
            "flow_values": self._normalize(_resize(unit_flow, self.flow_size), self.flow_mean, self.flow_std),
            "texture_values": self._normalize(texture, self.image_mean, self.image_std),
            "apex_index": apex_index,
            "face_crop": face_crop,
        }

    def _normalize(self, image: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
        """`(H, W)` or `(H, W, C)` in [0, 1] to channels-first float32, `(x - mean) / std` when `do_normalize`."""
        if image.ndim == 2:
            image = image[..., None]
        if self.do_normalize:
            image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
