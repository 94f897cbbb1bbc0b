"""The `synthetic` dataset: procedural micro-expression clips (see `synthetic_clips`), no download.

Rows carry the onset and apex frames as images plus their indices, like the clip datasets, so the
demo and the tests run the same image processor and trainer as real data. A few hundred samples
render in a few seconds.
"""

from dataclasses import dataclass

from .builder import MEBuilder, MEConfig
from .checks import require_int
from .features import (
    ACTION_UNITS,
    ANNOTATED,
    APEX,
    APEX_FRAME,
    APEX_SOURCE,
    LABEL,
    OFFSET_FRAME,
    ONSET,
    ONSET_FRAME,
    PAIR_FEATURES,
    SAMPLE_ID,
    SOURCE_DATASET,
    SUBJECT,
    sample_features,
)
from .labels import THREE_CLASSES
from .synthetic_clips import CLASS_ACTION_UNITS, subject_clips

NAME = "synthetic"


@dataclass
class SyntheticConfig(MEConfig):
    """Args:
    num_subjects, samples_per_subject: dataset size (classes are balanced within each subject).
    seed: everything is a function of it; subject `i` is the same face whatever `num_subjects` is.
    image_size: frame side in pixels; num_frames: clip length; color: RGB frames instead of gray.
    """

    num_subjects: int = 12
    samples_per_subject: int = 24
    seed: int = 0
    image_size: int = 128
    num_frames: int = 9
    color: bool = False

    def check_sizes(self):
        """Refuse sizes that make no dataset (an empty one, or clips without motion), naming the field.

        `datasets` sets a config's fields after construction, so the builder calls this before rendering;
        the trainer calls it on its arguments before it touches its output folder.
        """
        for field, minimum in (("num_subjects", 1), ("samples_per_subject", 1), ("image_size", 1), ("num_frames", 2)):
            require_int(getattr(self, field), field, minimum, NAME)


class Synthetic(MEBuilder):
    """Procedural faces showing small AU-like motions (negative / positive / surprise), with head jitter,
    noise and blinks; the apex face alone carries no class information."""

    BUILDER_CONFIG_CLASS = SyntheticConfig
    BUILDER_CONFIGS = [SyntheticConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"

    def _features(self):
        return sample_features(THREE_CLASSES, PAIR_FEATURES)

    def _rows(self):
        config = self.config
        config.check_sizes()
        return [
            {
                SAMPLE_ID: f"{clip.subject}_{index:03d}",
                SUBJECT: clip.subject,
                SOURCE_DATASET: NAME,
                LABEL: clip.label,
                ONSET: clip.frames[0],
                APEX: clip.frames[clip.apex_index],
                ONSET_FRAME: 0,
                APEX_FRAME: clip.apex_index,
                OFFSET_FRAME: len(clip.frames) - 1,
                APEX_SOURCE: ANNOTATED,
                ACTION_UNITS: CLASS_ACTION_UNITS[THREE_CLASSES[clip.label]],
            }
            for subject in range(config.num_subjects)
            for index, clip in enumerate(
                subject_clips(config.seed, subject, range(config.samples_per_subject), config.image_size,
                              config.num_frames, config.color)
            )
        ]
