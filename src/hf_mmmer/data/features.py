"""Column names and `datasets` features shared by every builder.

Trainers, the image processor and `loso_folds` read these columns by name; one constant each keeps a
rename in one place.
"""

import datasets

SAMPLE_ID = "sample_id"
SUBJECT = "subject"
SOURCE_DATASET = "source_dataset"
LABEL = "label"
EMOTION = "emotion"
ONSET = "onset"
APEX = "apex"
FLOW = "flow"
ONSET_FRAME = "onset_frame"
APEX_FRAME = "apex_frame"
OFFSET_FRAME = "offset_frame"
APEX_SOURCE = "apex_source"
ACTION_UNITS = "action_units"
FRAMES = "frames"
FIXES = "fixes"

ANNOTATED = "annotated"
"""`apex_source` of an apex taken from the annotation; spotted apexes say how they were found."""


def sample_features(label_names, extra: dict) -> datasets.Features:
    """The columns every dataset has (who, from where, which class) followed by `extra`."""
    return datasets.Features(
        {
            SAMPLE_ID: datasets.Value("string"),
            SUBJECT: datasets.Value("string"),
            SOURCE_DATASET: datasets.Value("string"),
            LABEL: datasets.ClassLabel(names=list(label_names)),
            **extra,
        }
    )


PAIR_FEATURES = {
    ONSET: datasets.Image(),
    APEX: datasets.Image(),
    ONSET_FRAME: datasets.Value("int32"),
    APEX_FRAME: datasets.Value("int32"),
    OFFSET_FRAME: datasets.Value("int32"),
    APEX_SOURCE: datasets.Value("string"),
    ACTION_UNITS: datasets.Value("string"),
}
"""The onset and apex frames the image processor turns into flow and texture, and where they lie."""

FLOW_FEATURES = {FLOW: datasets.Image(), APEX: datasets.Image()}
"""A precomputed flow image and the apex face it was made on; the apex is None in a flow-only dataset."""

CLIP_FEATURES = {
    EMOTION: datasets.Value("string"),
    **PAIR_FEATURES,
    FRAMES: datasets.List(datasets.Value("string")),
    FIXES: datasets.List(datasets.Value("string")),
}
"""A clip on disk: its source emotion, every frame from onset to offset, and what was fixed in its row."""
