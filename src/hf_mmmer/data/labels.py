"""Class sets and the maps from each dataset's own emotion words to them.

Every map sends a source emotion (lower case, as `annotations.normalize_emotion` spells it) to a class
name, or to `None` when the class set excludes that emotion on purpose. An emotion that a map does not
mention at all is an error, never a silent drop: a new release that spells an emotion differently must
be noticed, and fixed here, in one place.
"""

THREE_CLASSES = ("negative", "positive", "surprise")
"""The MEGC2019 composite classes, in the order every 3-class dataset of the package uses."""

CASME2_FIVE_CLASSES = ("happiness", "disgust", "repression", "surprise", "others")
SAMM_FIVE_CLASSES = ("anger", "contempt", "happiness", "surprise", "other")
"""The 5-class sets in common use: the emotions with at least 10 samples (SAMM: 136 of 159)."""

COMPOSITE_MAPPING = {
    "casme2": {
        "happiness": "positive",
        "surprise": "surprise",
        "disgust": "negative",
        "repression": "negative",
        "others": None,
        "fear": None,
        "sadness": None,
    },
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
    "samm": {
        "happiness": "positive",
        "surprise": "surprise",
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "other": None,
    },
}
"""MEGC2019 (CDE protocol): source dataset -> source emotion -> composite class or excluded."""


def five_class_map(source: str, classes: tuple) -> dict:
    """A dataset's own 5-class map: its classes map to themselves, its other emotions are excluded."""
    return {emotion: (emotion if emotion in classes else None) for emotion in COMPOSITE_MAPPING[source]}
