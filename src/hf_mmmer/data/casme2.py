"""CASME II (Institute of Psychology, Chinese Academy of Sciences): 26 subjects, 255 clips at 200 fps.

`data_dir` is the folder of the release: the annotation sheet `CASME2-coding-<date>.xlsx` next to
`Cropped/` (registered faces, `sub01/EP02_01f/reg_img46.jpg`) and/or `CASME2_RAW_selected/` (raw
frames, `img46.jpg`). Frame numbers in the file names are the sheet's absolute frame numbers.
Configs: `3class` (the MEGC2019 composite classes, default) and `5class` (happiness, disgust,
repression, surprise, others). Known quirks, each fixed and reported by `clips`: `sub04/EP12_01f` has
apex `/`, `sub05/EP09_05f` has apex = onset, `sub16/EP01_08` is annotated past its last frame.
"""

from .annotations import CLIP, SheetLayout
from .clips import ClipBuilder, ClipSource, FrameLayout, SourceConfig
from .features import ACTION_UNITS, APEX_FRAME, EMOTION, OFFSET_FRAME, ONSET_FRAME, SUBJECT
from .labels import CASME2_FIVE_CLASSES, COMPOSITE_MAPPING, THREE_CLASSES, five_class_map

NAME = "casme2"
SHEET = SheetLayout(
    pattern="CASME2-coding-*.xlsx",
    columns={
        SUBJECT: "Subject",
        CLIP: "Filename",
        ONSET_FRAME: "OnsetFrame",
        APEX_FRAME: "ApexFrame",
        OFFSET_FRAME: "OffsetFrame",
        ACTION_UNITS: "Action Units",
        EMOTION: "Estimated Emotion",
    },
    subject_prefix="sub",
    subject_width=2,
)
SOURCE = ClipSource(
    name=NAME,
    layouts={
        "cropped": FrameLayout(root="Cropped", pattern=r"reg_img(\d+)\.jpg"),
        "raw": FrameLayout(root="CASME2_RAW_selected", pattern=r"img(\d+)\.jpg"),
    },
    read=SHEET.read,
    annotates_apex=True,
    default_apex_spotting="flow_magnitude",
    sample_pattern=r"(sub\d+)_(.+)",
    manual_download=(
        "CASME II is licensed by the Institute of Psychology, Chinese Academy of Sciences, and released on a "
        "signed license agreement: request it at http://casme.psych.ac.cn/casme/e2, unpack it, and pass the "
        "folder that holds CASME2-coding-*.xlsx and Cropped/ (or CASME2_RAW_selected/) as data_dir."
    ),
)


class Casme2(ClipBuilder):
    """CASME II micro-expression clips (onset and apex frames, all frame paths, action units)."""

    SOURCE = SOURCE
    HOMEPAGE = "http://casme.psych.ac.cn/casme/e2"
    CITATION = (
        "Yan, W.-J. et al. CASME II: An improved spontaneous micro-expression database and the baseline "
        "evaluation. PLoS ONE 9(1): e86041, 2014."
    )
    BUILDER_CONFIGS = [
        SourceConfig(name="3class", label_names=THREE_CLASSES, emotion_map=COMPOSITE_MAPPING[NAME]),
        SourceConfig(
            name="5class",
            label_names=CASME2_FIVE_CLASSES,
            emotion_map=five_class_map(NAME, CASME2_FIVE_CLASSES),
        ),
    ]
    DEFAULT_CONFIG_NAME = "3class"
