"""The MEGC2019 composite (CDE protocol): CASME II, SMIC-HS and SAMM in three classes, 442 samples.

`data_dir` holds the three datasets, each in its own folder as its builder expects it (`CASME2/`,
`SMIC/`, `SAMM/` by default; `source_dirs` renames them). Each source's emotions are mapped with
`labels.COMPOSITE_MAPPING`, and the samples kept are those of a sample list, which is data, not code:
public loaders disagree on which two of the 147 CASME II candidates to drop, so the list decides.

The shipped list, `megc2019_samples.txt`, is the one that circulates with STSTNet as `video442Names.txt`
(github.com/christy1206/STSTNet, 442 names: CASME II 145, SMIC-HS 164, SAMM 133; 68 subjects). It holds
sample names only, no image data. Pass `sample_list=` to use another; listed samples that cannot be
found (absent from the annotations, or of an excluded emotion) are reported with a warning.
"""

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import casme2, samm, smic
from .builder import MEBuilder
from .checks import AnnotationWarning, count, ensure_unique, listing
from .clips import ClipConfig, clip_examples, read_source
from .features import CLIP_FEATURES, SAMPLE_ID, SOURCE_DATASET, SUBJECT, sample_features
from .labels import COMPOSITE_MAPPING, THREE_CLASSES

SAMPLE_LIST = Path(__file__).with_name("megc2019_samples.txt")
SOURCES = (casme2.SOURCE, smic.SOURCE, samm.SOURCE)
DEFAULT_SOURCE_DIRS = {"casme2": "CASME2", "smic": "SMIC", "samm": "SAMM"}


def sample_source(sample_id: str, where) -> tuple[str, str]:
    """The source dataset and subject of a composite sample id (`sub01_EP02_01f` -> casme2, sub01)."""
    for source in SOURCES:
        if match := re.fullmatch(source.sample_pattern, sample_id):
            return source.name, match.group(1)
    raise ValueError(f"{where}: {sample_id!r} is not a sample id of {[s.name for s in SOURCES]} "
                     "(e.g. sub01_EP02_01f, s01_s01_ne_01, 006_006_1_2)")


def read_sample_list(path: Path) -> pd.DataFrame:
    """`source_dataset`, `subject`, `sample_id` of every name in the list (one per line)."""
    rows = []
    for sample_id in Path(path).read_text().split():
        source_name, subject = sample_source(sample_id, path)
        rows.append({SOURCE_DATASET: source_name, SUBJECT: subject, SAMPLE_ID: sample_id})
    if not rows:
        raise ValueError(f"{path}: no sample ids (expected one per line)")
    table = pd.DataFrame(rows, columns=[SOURCE_DATASET, SUBJECT, SAMPLE_ID])
    ensure_unique(table[SAMPLE_ID], str(path))
    return table


@dataclass
class Megc2019Config(ClipConfig):
    """Args:
    sample_list: the file of sample ids to keep (default: the shipped MEGC2019 list).
    source_dirs: source dataset -> its folder, relative to `data_dir` (or absolute); a source left out keeps
        its default folder.
    """

    sample_list: str | None = None
    source_dirs: dict = field(default_factory=lambda: dict(DEFAULT_SOURCE_DIRS))


class Megc2019(MEBuilder):
    """The MEGC2019 composite micro-expression set (CASME II + SMIC-HS + SAMM, 3 classes)."""

    BUILDER_CONFIG_CLASS = Megc2019Config
    BUILDER_CONFIGS = [Megc2019Config(name="3class")]
    DEFAULT_CONFIG_NAME = "3class"
    CITATION = (
        "See, J., Yap, M. H., Li, J., Hong, X., Wang, S.-J. MEGC 2019 - The Second Facial Micro-Expressions "
        "Grand Challenge. IEEE International "
        "Conference on Automatic Face and Gesture Recognition (FG), 2019."
    )

    @property
    def manual_download_instructions(self) -> str:
        folders = ", ".join(f"{name}/" for name in DEFAULT_SOURCE_DIRS.values())
        return f"Pass the folder that holds {folders} (see source_dirs) as data_dir. " + " ".join(
            source.manual_download for source in SOURCES
        )

    def _features(self):
        return sample_features(THREE_CLASSES, CLIP_FEATURES)

    def _rows(self):
        data_dir = self.require_data_dir()
        unknown = sorted(set(self.config.source_dirs) - set(DEFAULT_SOURCE_DIRS))
        if unknown:
            raise ValueError(f"megc2019: source_dirs names unknown sources {unknown}; the sources are "
                             f"{sorted(DEFAULT_SOURCE_DIRS)}")
        source_dirs = {**DEFAULT_SOURCE_DIRS, **self.config.source_dirs}
        listed = read_sample_list(self.config.sample_list or SAMPLE_LIST)
        rows = []
        for source in SOURCES:
            wanted = set(listed[SAMPLE_ID][listed[SOURCE_DATASET] == source.name])
            if not wanted:
                continue
            table, layout = read_source(
                source, data_dir / source_dirs[source.name], self.config.frames, None,
                COMPOSITE_MAPPING[source.name],
            )
            absent = sorted(wanted - set(table[SAMPLE_ID]))
            if absent:
                warnings.warn(
                    f"megc2019: {count(len(absent), 'listed ' + source.name + ' sample')} not found among its "
                    f"samples of the composite classes: {listing(absent)}",
                    AnnotationWarning,
                )
            rows += clip_examples(source, table[table[SAMPLE_ID].isin(wanted)], layout, self.config)
        return rows
