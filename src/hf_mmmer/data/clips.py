"""Annotated clips on disk -> dataset rows: frames, annotation quirks, apex finding, labels.

CASME II, SAMM and SMIC differ in where their annotations come from (a sheet, the folder tree) but not
in what a row needs: the clip's frames on disk, a usable onset, apex and offset, and a class. This
module does that once for all of them. Every problem with a row is either fixed in a stated way
(recorded in the row's `fixes` column and warned about with a count) or stops the build with the rows
named; nothing is dropped silently.

Frame numbers are the ones in the file names (absolute in CASME II and SAMM), so an annotation can be
checked against the frames that are really there: an offset past the last frame on disk is clipped to
it, an apex that is missing, equal to the onset or outside onset..offset is found again (`apex_source`
says how), and a clip whose onset frame is not on disk counts as missing.
"""

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd

from .annotations import CLIP, CLIP_DIR, normalize_cells
from .builder import MEBuilder, MEConfig
from .checks import ensure_known, ensure_unique, listing, report_fixes, report_missing
from .features import (
    ACTION_UNITS,
    ANNOTATED,
    APEX,
    APEX_FRAME,
    APEX_SOURCE,
    CLIP_FEATURES,
    EMOTION,
    FIXES,
    FRAMES,
    LABEL,
    OFFSET_FRAME,
    ONSET,
    ONSET_FRAME,
    SAMPLE_ID,
    SOURCE_DATASET,
    SUBJECT,
    sample_features,
)
from .labels import THREE_CLASSES
from ..spotting import APEX_SPOTTING, middle_frame, spot_apex

logger = logging.getLogger(__name__)

APEX_SOURCES = {strategy: "middle" if strategy == "middle" else "spotted" for strategy in APEX_SPOTTING}
"""The rows' `apex_source` for each way of finding an apex the annotation lacks (the ways are
`hf_mmmer.spotting.APEX_SPOTTING`: `flow_magnitude`, the frame where the motion from the onset peaks, in regional,
head-compensated motion; `middle`, the middle frame from onset to offset)."""


@dataclass(frozen=True)
class FrameLayout:
    """A frame folder tree: its root under the dataset folder, and a regex of frame file names whose
    first group is the frame number."""

    root: str
    pattern: str


@dataclass(frozen=True)
class ClipSource:
    """What the clip builders need to know about one dataset.

    `layouts`: frame trees by name, the preferred first (`frames="auto"` takes the first present).
    `read(data_dir, frames_root, annotation_file)`: the annotation table (columns of `annotations`).
    `annotates_apex`: whether the annotation gives onset, apex and offset (else clips are cut from onset
    to offset and the apex is always found). `sample_pattern`: regex of its sample ids, `(subject)_(clip)`.
    """

    name: str
    layouts: dict[str, FrameLayout]
    read: Callable[[Path, Path, Path | None], pd.DataFrame]
    annotates_apex: bool
    default_apex_spotting: str
    sample_pattern: str
    manual_download: str


@dataclass
class ClipConfig(MEConfig):
    """Fields of every builder that reads clips.

    Args:
        frames: which frame tree to read: a name from the source's layouts (`"cropped"`, `"raw"`), or
            `"auto"` for the first one present (cropped faces when the folder has them).
        apex_spotting: how to find an apex the annotation lacks, one of `APEX_SOURCES`; `None` takes
            the source's default (SMIC: `middle`, the others: `flow_magnitude`).
    """

    frames: str = "auto"
    apex_spotting: str | None = None


@dataclass
class SourceConfig(ClipConfig):
    """A single dataset's config: its classes and how its emotions map onto them.

    Args:
        label_names: the classes, in label order.
        emotion_map: source emotion -> class name, or `None` for emotions the class set leaves out.
        annotation_file: the annotation sheet, if not the one found in `data_dir`.
    """

    label_names: tuple = THREE_CLASSES
    emotion_map: dict | None = None
    annotation_file: str | None = None


class MissingFrames(Exception):
    """A clip whose frames are not on disk; the message says which."""


def frame_layout(source: ClipSource, data_dir: Path, frames: str) -> FrameLayout:
    names = list(source.layouts) if frames == "auto" else [frames]
    unknown = [name for name in names if name not in source.layouts]
    if unknown:
        raise ValueError(f"{source.name}: unknown frames {frames!r}; choose 'auto' or one of {list(source.layouts)}")
    for name in names:
        if (data_dir / source.layouts[name].root).is_dir():
            return source.layouts[name]
    expected = " or ".join(f"{source.layouts[name].root}/" for name in names)
    raise FileNotFoundError(f"{source.name}: expected the frame folder {expected} in {data_dir}")


def list_frames(clip_dir: Path, pattern: str) -> dict[int, str]:
    """Frame number -> path of the frames in `clip_dir`, in frame order (empty if there is no folder); the
    extension's case does not matter, and two files of one frame number are an error."""
    if not clip_dir.is_dir():
        return {}
    regex = re.compile(pattern, re.IGNORECASE)  # copies made on some systems spell the extension .JPG or .BMP
    found = {}
    for path in sorted(clip_dir.iterdir()):
        if match := regex.fullmatch(path.name):
            number = int(match.group(1))
            if number in found:
                raise ValueError(f"{clip_dir}: frame {number} twice ({Path(found[number]).name}, {path.name})")
            found[number] = str(path)
    return dict(sorted(found.items()))


def find_apex(paths: list[str], spotting: str) -> int:
    """Index into `paths` (onset first) of the apex, by `spotting` (see `APEX_SOURCES`)."""
    if spotting == "middle":
        return middle_frame(len(paths))  # without reading the frames
    frames = [cv2.imread(path, cv2.IMREAD_GRAYSCALE) for path in paths]
    unreadable = [path for path, frame in zip(paths, frames) if frame is None]
    if unreadable:
        raise ValueError(f"{unreadable[0]}: not a readable image (empty, damaged or not readable by this user); "
                         f"spotting the apex of its clip reads every frame ({len(unreadable)} of {len(paths)} "
                         "unreadable)")
    return spot_apex(frames, strategy=spotting)


def read_source(source: ClipSource, data_dir: Path, frames: str, annotation_file, emotion_map: dict):
    """The source's annotation table with a `label` per row, and the frame layout it points into.

    Unknown emotions and duplicate sample ids stop here; rows of emotions the class set excludes are
    left out (and logged with their count).
    """
    layout = frame_layout(source, data_dir, frames)
    table = source.read(data_dir, data_dir / layout.root, Path(annotation_file) if annotation_file else None)
    table = normalize_cells(table).assign(**{SAMPLE_ID: lambda t: t[SUBJECT] + "_" + t[CLIP]})
    ensure_known(table[EMOTION], emotion_map, "emotions", source.name)
    ensure_unique(table[SAMPLE_ID], source.name)
    if source.annotates_apex:
        unusable = table[SAMPLE_ID][table[ONSET_FRAME].isna() | table[OFFSET_FRAME].isna()].tolist()
        if unusable:
            raise ValueError(f"{source.name}: rows without an onset or offset frame number: {listing(unusable)}")
    labels = table[EMOTION].map(emotion_map)
    excluded = table[EMOTION][labels.isna()]
    if len(excluded) and len(excluded) == len(table):  # "no samples" later would not say why
        raise ValueError(f"{source.name}: all {len(table)} samples have emotions outside the class set "
                         f"({sorted(excluded.unique())}); the emotions this config keeps are "
                         f"{sorted(emotion for emotion, label in emotion_map.items() if label is not None)}")
    if len(excluded):
        logger.info("%s: %d samples of emotions %s are outside the class set", source.name, len(excluded),
                    sorted(excluded.unique()))
    return table[labels.notna()].assign(**{LABEL: labels[labels.notna()]}), layout


def apex_problem(apex, onset: int, offset: int, frames: dict) -> str | None:
    """Why an annotated apex cannot be used, or None if it can."""
    if pd.isna(apex):
        return "apex not annotated"
    if apex == onset:
        return "apex equals onset"
    if not onset < apex <= offset:
        return "apex outside onset..offset"
    if apex not in frames:
        return "apex frame not on disk"
    return None


def resolve_clip(row: dict, layout: FrameLayout, spotting: str, annotates_apex: bool) -> tuple[dict, dict]:
    """The row's frame fields and its fixes (kind -> what was done); raises `MissingFrames`."""
    clip_dir = Path(row[CLIP_DIR])
    frames = list_frames(clip_dir, layout.pattern)
    numbers = list(frames)
    if len(numbers) < 2:
        raise MissingFrames(f"{len(numbers)} frames matching {layout.pattern!r} in {clip_dir}")
    onset = numbers[0] if pd.isna(row[ONSET_FRAME]) else int(row[ONSET_FRAME])
    offset = numbers[-1] if pd.isna(row[OFFSET_FRAME]) else int(row[OFFSET_FRAME])
    fixes = {}
    if offset < onset:
        fixes["offset before onset"] = f"offset {offset} < onset {onset}: set to the last frame on disk, {numbers[-1]}"
        offset = numbers[-1]
    elif offset > numbers[-1]:
        fixes["offset past the frames on disk"] = f"offset {offset} clipped to the last frame on disk, {numbers[-1]}"
        offset = numbers[-1]
    if onset not in frames:
        raise MissingFrames(f"onset frame {onset} not in {clip_dir}")
    clip = [number for number in numbers if onset <= number <= offset]
    if len(clip) < 2:
        raise MissingFrames(f"only frame {onset} of onset..offset {onset}..{offset} in {clip_dir}")
    apex = row[APEX_FRAME]
    problem = apex_problem(apex, onset, offset, frames) if annotates_apex else "apex not annotated"
    apex_source = ANNOTATED
    if problem:
        annotated = apex
        apex = clip[find_apex([frames[number] for number in clip], spotting)]
        apex_source = APEX_SOURCES[spotting]
        if annotates_apex:
            fixes[problem] = f"{problem} (onset {onset}, apex {annotated}, offset {offset}): {apex_source} frame {apex}"
    fields = {
        ONSET: frames[onset],
        APEX: frames[int(apex)],
        ONSET_FRAME: onset,
        APEX_FRAME: int(apex),
        OFFSET_FRAME: offset,
        APEX_SOURCE: apex_source,
        FRAMES: [frames[number] for number in clip],
        FIXES: list(fixes.values()),
    }
    return fields, fixes


def clip_examples(source: ClipSource, table: pd.DataFrame, layout: FrameLayout, config: ClipConfig) -> list[dict]:
    """Dataset rows of the labelled annotation `table`; reports fixes and missing clips with counts."""
    spotting = config.apex_spotting or source.default_apex_spotting
    if spotting not in APEX_SOURCES:
        raise ValueError(f"unknown apex_spotting {spotting!r}; choose one of {list(APEX_SOURCES)}")
    examples, missing, fixed = [], [], defaultdict(list)
    for row in table.to_dict("records"):
        try:
            fields, fixes = resolve_clip(row, layout, spotting, source.annotates_apex)
        except MissingFrames as error:
            missing.append(f"{row[SAMPLE_ID]} ({error})")
            continue
        for kind in fixes:
            fixed[kind].append(row[SAMPLE_ID])
        examples.append(
            {
                SAMPLE_ID: row[SAMPLE_ID],
                SUBJECT: row[SUBJECT],
                SOURCE_DATASET: source.name,
                LABEL: row[LABEL],
                EMOTION: row[EMOTION],
                ACTION_UNITS: row[ACTION_UNITS],
                **fields,
            }
        )
    report_missing(missing, config.skip_missing, source.name)
    report_fixes(fixed, source.name)
    return examples


class ClipBuilder(MEBuilder):
    """A builder of one clip dataset (`SOURCE`); subclasses give `SOURCE` and `BUILDER_CONFIGS`."""

    BUILDER_CONFIG_CLASS = SourceConfig
    SOURCE: ClipSource

    @property
    def manual_download_instructions(self) -> str:
        return self.SOURCE.manual_download

    def _features(self):
        return sample_features(self.config.label_names, CLIP_FEATURES)

    def _rows(self):
        data_dir = self.require_data_dir()
        table, layout = read_source(
            self.SOURCE, data_dir, self.config.frames, self.config.annotation_file, self.config.emotion_map
        )
        return clip_examples(self.SOURCE, table, layout, self.config)
