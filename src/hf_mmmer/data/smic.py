"""SMIC-HS (University of Oulu): 16 subjects, 164 clips at 100 fps, three classes given by folder.

`data_dir` is the folder of the release, holding `SMIC_all_cropped/HS/` (registered faces,
`s1/micro/negative/s1_ne_01/reg_image000001.bmp`) and/or `HS/` (raw frames, `image000001.bmp`).
There is no annotation sheet: every folder under `<subject>/micro/<class>/` is a clip cut from onset to
offset, so the onset is its first frame and the offset its last (gaps in the frame numbers are
tolerated). SMIC has no apex annotation, so the builder offers two apexes:

- `apex_spotting="middle"` (the default, `apex_source="middle"`): the midpoint of onset and offset. It is
  what the MEB toolbox and the published SMIC and MEGC2019 composite results use, so numbers stay
  comparable with theirs; SMIC's clips are cut by its annotators from onset to offset, so the expression
  peaks inside them; and it reads no frame, so it is deterministic and free.
- `apex_spotting="flow_magnitude"` (`apex_source="spotted"`): the frame where the motion from the onset
  peaks, in regional, head-compensated motion (`hf_mmmer.spotting.spot_apex`), for clips whose expression is far from their
  middle (its accuracy on synthetic clips: benchmarks/RESULTS.md, "Spotting"), but it is a measurement that
  can be fooled where the middle cannot.
Subject ids are zero-padded to `s01` and sample ids follow the MEGC2019 list (`s01_s01_ne_01`).
`non_micro` folders are not read.
"""

import warnings
from pathlib import Path

import pandas as pd

from .annotations import CLIP, CLIP_DIR, normalize_id
from .checks import AnnotationWarning, is_debris, listing
from .clips import ClipBuilder, ClipSource, FrameLayout, SourceConfig
from .features import ACTION_UNITS, APEX_FRAME, EMOTION, OFFSET_FRAME, ONSET_FRAME, SUBJECT
from .labels import COMPOSITE_MAPPING, THREE_CLASSES

NAME = "smic"
MICRO_DIR = "micro"
SUBJECT_PREFIX = "s"
CLASS_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}
"""How a clip's name spells its class folder (`s3_sur_01` lies in `surprise/`)."""


def is_archive_debris(clip_dir: Path) -> bool:
    """A hidden folder on the way to `clip_dir` (`.ipynb_checkpoints`) or macOS's `__MACOSX` copy of the tree."""
    return any(is_debris(part) for part in clip_dir.parts[-4:])


def misfiled(clip_dir: Path, subject: str) -> bool:
    """Whether the clip's name (`s3_sur_01`) names another subject or class than its folders do."""
    name_subject, _, rest = clip_dir.name.partition("_")
    code = rest.split("_")[0]
    class_code = CLASS_CODES.get(clip_dir.parent.name.strip().lower())
    same_subject = name_subject.lower().startswith(SUBJECT_PREFIX) and name_subject[1:].isdecimal() and (
        int(name_subject[1:]) == int(subject[len(SUBJECT_PREFIX):]))
    return not same_subject or (class_code is not None and code.lower() != class_code)


def read_clip_folders(data_dir: Path, frames_root: Path, annotation_file: Path | None = None) -> pd.DataFrame:
    """One row per clip folder `frames_root/<subject>/micro/<class>/<clip>`; the class is the emotion. Hidden
    folders and `__MACOSX` are not clips; a clip whose name says another subject or class than its folders is
    reported (the folders decide)."""
    clip_dirs = sorted(path for path in frames_root.glob(f"*/{MICRO_DIR}/*/*")
                       if path.is_dir() and not is_archive_debris(path))
    if not clip_dirs:
        raise FileNotFoundError(f"{NAME}: no clip folders matching {frames_root}/*/{MICRO_DIR}/*/*")
    rows, contradicted = [], []
    for clip_dir in clip_dirs:
        try:
            subject = normalize_id(clip_dir.parents[2].name, SUBJECT_PREFIX, 2)
        except ValueError as error:
            raise ValueError(f"{NAME}: {clip_dir.parents[2]}: {error}") from None
        if misfiled(clip_dir, subject):
            contradicted.append(str(clip_dir.relative_to(frames_root)))
        rows.append(
            {
                SUBJECT: subject,
                CLIP: f"{subject}_{clip_dir.name.split('_', 1)[-1]}",
                EMOTION: clip_dir.parent.name,
                ONSET_FRAME: None,
                APEX_FRAME: None,
                OFFSET_FRAME: None,
                ACTION_UNITS: "",
                CLIP_DIR: str(clip_dir),
            }
        )
    if contradicted:
        warnings.warn(f"{NAME}: {len(contradicted)} clip name(s) name another subject or class than their folders, "
                      f"which decide: {listing(contradicted)}", AnnotationWarning)
    return pd.DataFrame(rows)


SOURCE = ClipSource(
    name=NAME,
    layouts={
        "cropped": FrameLayout(root="SMIC_all_cropped/HS", pattern=r"reg_image(\d+)\.bmp"),
        "raw": FrameLayout(root="HS", pattern=r"image(\d+)\.bmp"),
    },
    read=read_clip_folders,
    annotates_apex=False,
    default_apex_spotting="middle",
    sample_pattern=r"(s\d+)_(.+)",
    manual_download=(
        "SMIC is licensed by the University of Oulu (Center for Machine Vision and Signal Analysis, "
        "https://www.oulu.fi/cmvs) and released on a signed license agreement: request the SMIC database "
        "there, unpack it, and pass the folder that holds SMIC_all_cropped/HS/ (or HS/) as data_dir."
    ),
)


class Smic(ClipBuilder):
    """SMIC-HS micro-expression clips (onset and middle or spotted apex frames, all frame paths)."""

    SOURCE = SOURCE
    HOMEPAGE = "https://www.oulu.fi/cmvs"
    CITATION = (
        "Li, X. et al. A spontaneous micro-expression database: Inducement, collection and baseline. "
        "IEEE International Conference on Automatic Face and Gesture Recognition (FG), 2013."
    )
    BUILDER_CONFIGS = [SourceConfig(name="3class", label_names=THREE_CLASSES, emotion_map=COMPOSITE_MAPPING[NAME])]
    DEFAULT_CONFIG_NAME = "3class"
