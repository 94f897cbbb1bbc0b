"""Spot micro-expressions in a long video (or a folder or list of frames), then recognise each one.

The video is read frame by frame and only a small `WORK_SIZE` face is kept per analysed frame (at most
`spotting.ANALYSIS_RATE` per second): 16 KB each, about 50 MB per minute of video. The face is
found with the Haar cascade every `DETECT_EVERY_S` seconds; the crop stays fixed while the face stays in it
(a moving crop would be measured as motion) and a new stretch starts when the face moved out of it. Where the
face is not found, the frames up to the next check are a gap: skipped and reported, not guessed at.
Each stretch is spotted on its own (`spotting.spot_stretch`); then only the onset and apex frames of the
spotted intervals are read again, cut with their stretch's crop and classified in one batch.

This file is copied next to saved model weights and imported by transformers' remote-code loader, so it may
import only the standard library, NumPy, SciPy, OpenCV, torch, tqdm and its sibling modules.
"""

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from .face_detection import FaceCrop, find_face
from .image_processing_mmmer import check_not_cut_short, frame_files, load_frame, to_gray
from .optical_flow import DEFAULT_FLOW_METHOD
from .spotting import (
    Interval,
    SpottingSignal,
    analysis_step,
    prepare_face,
    spot_stretch,
    window_frames,
)


DETECT_EVERY_S = 1.0
"""How often, in seconds of video, the face is looked for again."""
DETECT_WIDTH = 320
"""Frames are shrunk to this width for face detection (a face filling a tenth of the frame is still 32 px
there), which makes the Haar cascade several times faster on large frames; the crop is cut at full size."""
MAX_FACE_SHIFT = 0.2
"""A new crop (and stretch) starts when the face's centre moved more than this fraction of the crop's width."""


@dataclass
class FrameSource:
    """Frames of a video file, a folder of images or a sequence of frames, read in order, any number of
    times. `fps` is the container's frame rate (`None` where it has none); `num_frames` may be `None` for
    videos whose container does not say, and a container's count may be wrong, so each complete `read`
    sets `frames_read` to the number of frames it went through (all of them, not only those wanted). A video
    file cut short is refused when the source is opened (`check_not_cut_short`)."""

    name: str
    fps: float | None
    num_frames: int | None
    _video: str | None = None
    _frames: Sequence | None = None
    frames_read: int | None = None

    def read(self, wanted: Callable[[int], bool]) -> Iterator[tuple[int, np.ndarray]]:
        """`(index, uint8 frame)` for every frame index `wanted` says yes to (videos decode only those)."""
        if self._frames is not None:
            first = None  # a frame of another size (a stray image in the folder) is no frame of this video
            for index in range(len(self._frames)):
                if wanted(index):
                    frame = load_frame(self._frames[index], f"{self.name} frame {index}")
                    first = first or (index, frame.shape[:2])
                    if frame.shape[:2] != first[1]:
                        raise ValueError(
                            f"{self.name}: frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame {first[0]} is "
                            f"{first[1][1]}x{first[1][0]} (width x height); all frames of a video must have one size."
                        )
                    yield index, frame
            self.frames_read = len(self._frames)
            return
        capture = cv2.VideoCapture(self._video)
        try:
            index = 0
            while capture.grab():
                if wanted(index):
                    ok, frame = capture.retrieve()
                    if ok:
                        yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
            self.frames_read = index
        finally:
            capture.release()


def open_source(inputs: Any) -> FrameSource:
    """A video path, a folder of frame images, or a sequence of frames (arrays, PIL images or paths)."""
    if isinstance(inputs, (str, os.PathLike)):
        path = os.fspath(inputs)
        if os.path.isdir(path):
            files = frame_files(path, path)
            return FrameSource(path, None, len(files), _frames=files)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such video file or folder.")
        check_not_cut_short(path, path)
        capture = cv2.VideoCapture(path)
        try:
            if not capture.isOpened() or not capture.grab():
                raise ValueError(f"{path}: OpenCV cannot read a frame from it (not a video, or an unknown codec).")
            fps = capture.get(cv2.CAP_PROP_FPS)
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            capture.release()
        usable_fps = fps if math.isfinite(fps) and 1 <= fps <= 10000 else None
        return FrameSource(path, usable_fps, count if count > 0 else None, _video=path)
    if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)) and len(inputs) > 0:
        return FrameSource("frames", None, len(inputs), _frames=inputs)
    raise TypeError(f"Cannot spot in a {type(inputs).__name__}; pass a video path, a folder of frames or a "
                    "non-empty list of frames.")


MIN_FPS = 15.0
"""The slowest frame rate spotting takes, a judgement rather than a measured edge: the spotting setting is
made for 25 to 200 fps (`spotting`), and 15 fps, a common low webcam rate, still puts two frames in its
comparison window (`spotting.WINDOW_S`). Slower, a micro-expression (1/25 to 1/2 s) spans a few frames at
most, and an empty result would read as "none" where none could be seen."""


def resolve_fps(source: FrameSource, fps: float | None) -> float:
    """The frame rate to use: the one given, else the container's; frames and folders need it given. Below
    `MIN_FPS` it is refused: an empty result would read as "no micro-expression" where none could be seen."""
    if fps is not None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number; got {fps!r}.")
        fps = float(fps)
    elif source.fps is None:
        what = "the video's container carries" if source._video else "frames carry"
        raise ValueError(f"{source.name}: {what} no frame rate; pass it (--fps F, or fps= in Python).")
    else:
        fps = source.fps
    if fps < MIN_FPS:
        raise ValueError(f"{source.name}: {fps:g} fps is too few to spot micro-expressions (they last 1/25 to 1/2 s); "
                         f"spotting needs at least {MIN_FPS:g} fps.")
    return fps


@dataclass
class SpottingResult:
    """What spotting found in a video: intervals, the analysed frames' times and contrast signal (NaN where
    nothing was analysed), the gaps where the face was lost (seconds), and the crop of each interval."""

    name: str
    fps: float
    num_frames: int
    intervals: list[Interval]
    times: np.ndarray
    signal: np.ndarray
    gaps: list[tuple[float, float]] = field(default_factory=list)
    crops: list[FaceCrop] = field(default_factory=list)


def detect_face(gray: np.ndarray, margin: float) -> FaceCrop | None:
    """`find_face` on the frame shrunk to `DETECT_WIDTH`, with the box scaled back to the frame."""
    scale = min(1.0, DETECT_WIDTH / gray.shape[1])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    found = find_face(small, margin=margin)
    if found is None:
        return None
    x0, y0, x1, y1 = (round(value / scale) for value in found.box)
    return FaceCrop(box=(x0, y0, min(x1, gray.shape[1]), min(y1, gray.shape[0])))


def _same_face(crop: FaceCrop, found: FaceCrop) -> bool:
    (x0, y0, x1, y1), (a0, b0, a1, b1) = crop.box, found.box
    shift = math.hypot((a0 + a1 - x0 - x1) / 2, (b0 + b1 - y0 - y1) / 2)
    return shift <= MAX_FACE_SHIFT * (x1 - x0) and 0.8 <= (a1 - a0) / (x1 - x0) <= 1.25


def _stretches(source: FrameSource, fps: float, step: int, do_crop_face: bool, face_margin: float, progress):
    """Analysed faces grouped in stretches of one crop: `[(crop, SpottingSignal)]`, the gaps `[(first, last)]`
    frame indices where no face was found, and the number of frames in the video (`FrameSource.frames_read`:
    the frames after the last analysed one count too)."""
    detect_every = max(1, round(DETECT_EVERY_S * fps))
    stretches, gaps = [], []
    crop, indices, faces, lost_since = None, [], [], None

    def close():
        if crop is not None and indices:
            stretches.append((crop, SpottingSignal(np.asarray(indices), list(faces))))
        indices.clear()
        faces.clear()

    for index, frame in source.read(lambda i: i % step == 0 or i % detect_every == 0):
        gray = to_gray(frame)
        if progress is not None:
            progress.update(index + 1 - progress.n)
        if index % detect_every == 0:
            if not do_crop_face:
                found = crop or FaceCrop(box=(0, 0, gray.shape[1], gray.shape[0]))
            else:
                found = detect_face(gray, face_margin)
            if found is None:
                if lost_since is None:
                    close()
                    crop, lost_since = None, index
            else:
                if lost_since is not None:
                    gaps.append((lost_since, index - 1))
                    lost_since = None
                if crop is None or not _same_face(crop, found):
                    close()
                    crop = found
        if crop is not None and index % step == 0:
            indices.append(index)
            faces.append(prepare_face(crop.apply(gray)))
    close()
    count = source.frames_read
    if progress is not None:
        progress.update(count - progress.n)
    if lost_since is not None:
        gaps.append((lost_since, count - 1))
    return stretches, gaps, count


def spot_video(inputs: Any, fps: float | None = None, *, do_crop_face: bool = True, face_margin: float = 0.1,
               method: str = DEFAULT_FLOW_METHOD, progress: bool = False) -> SpottingResult:
    """
    Spot the micro-expressions of a long video, a folder of frames or a list of frames.

    Args:
        inputs: a video path, a folder of frame images (sorted by the number in their names) or a list of
            frames (arrays, PIL images or paths).
        fps (`float`, *optional*): frame rate; required for frames and folders and for videos whose container
            does not carry it.
        do_crop_face (`bool`): find the face (Haar cascade); `False` for videos of cropped faces.
        face_margin (`float`): fraction of the face width added around the detected face.
        method (`str`): optical flow method.
        progress (`bool`): show a progress bar (tqdm) over the frames read.

    Raises `ValueError` in one line when the video has no frame rate and none is given, when no face is found
    in it (with the time range searched), or when it is too short for one spotting window.
    """
    source = open_source(inputs)
    fps = resolve_fps(source, fps)
    step = analysis_step(fps)
    bar = tqdm(total=source.num_frames, unit="frame", desc="spotting") if progress else None
    try:
        stretches, gaps, num_frames = _stretches(source, fps, step, do_crop_face, face_margin, bar)
        minimum = 2 * window_frames(fps / step) + 1
        usable = [(crop, stretch) for crop, stretch in stretches if len(stretch.indices) >= minimum]
        if not stretches:
            raise ValueError(f"{source.name}: no face found in the video (0.00-{num_frames / fps:.2f} s, checked "
                             f"every {DETECT_EVERY_S:g} s); pass do_crop_face=False (--no_face_crop) for cropped faces.")
        if not usable:
            raise ValueError(f"{source.name}: too short to spot in: the face is seen for at most "
                             f"{max(len(s.indices) for _, s in stretches) * step / fps:.2f} s at a time; spotting "
                             f"needs at least {minimum * step / fps:.2f} s.")
        intervals, crops = [], []
        for crop, stretch in usable:
            found = spot_stretch(stretch, fps, step, method)
            intervals += found
            crops += [crop] * len(found)
    finally:
        if bar is not None:
            bar.close()
    times = np.arange(0, num_frames, step) / fps
    signal = np.full(len(times), np.nan, np.float32)
    for _, stretch in usable:
        signal[stretch.indices // step] = stretch.contrast
    return SpottingResult(source.name, fps, num_frames, intervals, times, signal,
                          [(first / fps, (last + 1) / fps) for first, last in gaps], crops)


def recognise(model, image_processor, inputs: Any, result: SpottingResult) -> list[dict]:
    """Classify each spotted interval (its onset and apex frames, cut with its crop) with `model`.

    Returns one dict per interval, in time order: `onset`, `apex`, `offset` (frame indices), `onset_time`,
    `offset_time` (seconds), `label` and `score` (the classifier's best class and its probability) and
    `spot_score` (the spotting contrast).
    """
    if not result.intervals:
        return []
    wanted = {i for interval in result.intervals for i in (interval.onset, interval.apex)}
    frames = {}
    for index, frame in open_source(inputs).read(wanted.__contains__):
        frames[index] = frame
        if len(frames) == len(wanted):  # the rest of the video need not be decoded again
            break
    onsets = [crop.apply(frames[interval.onset]) for interval, crop in zip(result.intervals, result.crops)]
    apexes = [crop.apply(frames[interval.apex]) for interval, crop in zip(result.intervals, result.crops)]
    for interval, onset, apex in zip(result.intervals, onsets, apexes):  # else the batch's error names an index
        if np.array_equal(to_gray(onset), to_gray(apex)):  # as the processor compares them
            raise ValueError(f"{result.name}: the interval at {interval.onset_time:.2f}-{interval.offset_time:.2f} s "
                             f"has the same image at its onset (frame {interval.onset}) and apex (frame "
                             f"{interval.apex}): the video repeats frames there, and there is no motion to classify.")
    batch = image_processor(onset=onsets, apex=apexes, do_crop_face=False, return_tensors="pt")
    with torch.no_grad():
        logits = model(flow_values=batch["flow_values"].to(model.device, model.dtype),
                       texture_values=batch["texture_values"].to(model.device, model.dtype)).logits
    probabilities = torch.softmax(logits.float(), dim=-1)
    scores, labels = probabilities.max(dim=-1)
    return sorted(
        (
            {
                "onset": interval.onset, "apex": interval.apex, "offset": interval.offset,
                "onset_time": round(interval.onset_time, 4), "offset_time": round(interval.offset_time, 4),
                "label": model.config.id2label[int(label)], "score": float(score),
                "spot_score": round(interval.score, 4),
            }
            for interval, label, score in zip(result.intervals, labels, scores)
        ),
        key=lambda entry: entry["onset"],
    )


def spot_and_classify(model, image_processor, inputs: Any, fps: float | None = None, progress: bool = False,
                      **spot_kwargs) -> list[dict]:
    """`spot_video` then `recognise`: the spotted intervals with their labels (see `recognise`)."""
    result = spot_video(inputs, fps, progress=progress, **spot_kwargs)
    return recognise(model, image_processor, inputs, result)
