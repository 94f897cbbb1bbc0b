"""SAMM (Manchester Metropolitan University): 32 subjects, 159 micro-movements at 200 fps, gray.

`data_dir` is the folder of the release: the sheet `SAMM_Micro_FACS_Codes_v<N>.xlsx` (its table starts
under a preamble, at the row whose first cell is `Subject`) next to `SAMM_CROP/` and/or `SAMM/`, frames
`006/006_1_2/006_05562.jpg` (absolute frame numbers). Configs: `3class` (MEGC2019 composite, default)
and `5class` (anger, contempt, happiness, surprise, other). A few apex cells are missing or negative:
the apex is found and the fix reported.
"""

from .annotations import CLIP, SheetLayout
from .clips import ClipBuilder, ClipSource, FrameLayout, SourceConfig
from .features import ACTION_UNITS, APEX_FRAME, EMOTION, OFFSET_FRAME, ONSET_FRAME, SUBJECT
from .labels import COMPOSITE_MAPPING, SAMM_FIVE_CLASSES, THREE_CLASSES, five_class_map

NAME = "samm"
FRAME_PATTERN = r"\d+_(\d+)\.jpg"
SHEET = SheetLayout(
    pattern="SAMM_Micro_FACS_Codes_v*.xlsx",
    columns={
        SUBJECT: "Subject",
        CLIP: "Filename",
        ONSET_FRAME: "Onset Frame",
        APEX_FRAME: "Apex Frame",
        OFFSET_FRAME: "Offset Frame",
        ACTION_UNITS: "Action Units",
        EMOTION: "Estimated Emotion",
    },
    subject_prefix="",
    subject_width=3,
)
SOURCE = ClipSource(
    name=NAME,
    layouts={
        "cropped": FrameLayout(root="SAMM_CROP", pattern=FRAME_PATTERN),
        "raw": FrameLayout(root="SAMM", pattern=FRAME_PATTERN),
    },
    read=SHEET.read,
    annotates_apex=True,
    default_apex_spotting="flow_magnitude",
    sample_pattern=r"(\d+)_(.+)",
    manual_download=(
        "SAMM is licensed by Manchester Metropolitan University and released on a signed license agreement: "
        "request it at http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php, unpack it, and pass the folder "
        "that holds SAMM_Micro_FACS_Codes_v*.xlsx and SAMM_CROP/ (or SAMM/) as data_dir."
    ),
)


class Samm(ClipBuilder):
    """SAMM micro-movement clips (onset and apex frames, all frame paths, action units)."""

    SOURCE = SOURCE
    HOMEPAGE = "http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php"
    CITATION = (
        "Davison, A. K. et al. SAMM: A spontaneous micro-facial movement dataset. IEEE Transactions on "
        "Affective Computing 9(1): 116-129, 2018."
    )
    BUILDER_CONFIGS = [
        SourceConfig(name="3class", label_names=THREE_CLASSES, emotion_map=COMPOSITE_MAPPING[NAME]),
        SourceConfig(
            name="5class", label_names=SAMM_FIVE_CLASSES, emotion_map=five_class_map(NAME, SAMM_FIVE_CLASSES)
        ),
    ]
    DEFAULT_CONFIG_NAME = "3class"
