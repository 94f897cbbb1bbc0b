"""The public MEGC2019 flow maps as they circulate: a clone of HTNet, or a folder in STSTNet's layout.

The 28x28 u / v / optical-strain maps of the 442 composite samples (68 subjects) are shared in two
layouts, and `data_dir` may be either; the layout is detected:

- **HTNet** (a clone of github.com/wangzhifengharrison/HTNet): `combined_3_class2_for_optical_flow.csv`
  at the root, columns `dataset, sub, filename_o, label, apex, imagename, sub_filename` (`dataset`
  casme2 / smic / samm; `label` 0 negative, 1 positive, 2 surprise; `apex` and `sub_filename` unused);
  maps `datasets/STSNet_whole_norm_u_v_os/<sub>_<filename_o> .png` and apex faces
  `datasets/combined_datasets_whole/<imagename>`. A spreadsheet round trip turns SAMM's `006` into `6`:
  subjects are spelled again as the composite spells them (`sub01`, `s01`, `006`).
- **STSTNet** (also the clone's `datasets/three_norm_u_v_os`): `<subject>/u_test/<label>/<sample> .png`
  and `<subject>/u_train/<label>/<sample> .png`. Each subject folder is that subject's LOSO split, so
  every map appears once under its subject's `u_test` and again under every other subject's `u_train`.
  The test folders are read; the train copies are only checked against them (same label, same pixels,
  never the subject's own sample), since a split that disagrees with itself means a damaged copy. There
  are no apex images: the dataset is flow-only (`apex` is None), for flow-only models.

The public files put a space before `.png`; names without it are accepted too. The columns are those of
the `precomputed` builder. The maps derive from the licensed CASME II, SMIC and SAMM: their licences apply.
"""

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from .annotations import normalize_id, read_csv_table, require_columns, require_filled
from .builder import MEBuilder
from .checks import ensure_known, is_debris
from .features import APEX, FLOW, FLOW_FEATURES, LABEL, SAMPLE_ID, SOURCE_DATASET, SUBJECT, sample_features
from .labels import THREE_CLASSES
from .megc2019 import sample_source
from .precomputed import flow_rows

HTNET_CSV = "combined_3_class2_for_optical_flow.csv"
HTNET_FLOWS = "datasets/STSNet_whole_norm_u_v_os"
HTNET_APEXES = "datasets/combined_datasets_whole"
HTNET_COLUMNS = ("dataset", "sub", "filename_o", "label", "imagename")
SUBJECT_SPELLING = {"casme2": ("sub", 2), "smic": ("s", 2), "samm": ("", 3)}
"""Source -> (prefix, digits) of the composite's subject ids, as in its sample names."""
MAP_SUFFIX = " .png"
TEST_SPLIT = "u_test"
TRAIN_SPLIT = "u_train"
LABEL_FOLDERS = tuple(str(label) for label in range(len(THREE_CLASSES)))


def map_name(stem: str) -> str:
    return stem + MAP_SUFFIX


def read_htnet(root: Path) -> pd.DataFrame:
    """The samples of an HTNet clone's label table (`flow_rows` columns, paths relative to `root`)."""
    csv = root / HTNET_CSV
    table = read_csv_table(csv)
    require_columns(table, HTNET_COLUMNS, csv)
    require_filled(table, HTNET_COLUMNS, csv)
    sources = table["dataset"].str.lower()
    ensure_known(sources, SUBJECT_SPELLING, "datasets", csv)
    ensure_known(table["label"], LABEL_FOLDERS, "labels", csv)
    try:
        subjects = [normalize_id(sub, *SUBJECT_SPELLING[source]) for sub, source in zip(table["sub"], sources)]
    except ValueError as error:
        raise ValueError(f"{csv}: {error}") from None
    sample_ids = [f"{subject}_{clip}" for subject, clip in zip(subjects, table["filename_o"])]
    return pd.DataFrame({
        SAMPLE_ID: sample_ids,
        SUBJECT: subjects,
        SOURCE_DATASET: sources,
        LABEL: [THREE_CLASSES[int(label)] for label in table["label"]],
        FLOW: [f"{HTNET_FLOWS}/{map_name(sample_id)}" for sample_id in sample_ids],
        APEX: [f"{HTNET_APEXES}/{name}" for name in table["imagename"]],
    })


def split_maps(split_dir: Path):
    """`(label folder, path)` of every map under `split_dir/<label>/` (`.png` in any case); another folder there
    is an error. Hidden files (macOS's `._name.png` beside each map of an archive made there) are not maps."""
    if not split_dir.is_dir():
        return
    for label_dir in sorted(path for path in split_dir.iterdir() if path.is_dir() and not is_debris(path.name)):
        if label_dir.name not in LABEL_FOLDERS:
            raise ValueError(f"{label_dir}: not a label folder; expected {list(LABEL_FOLDERS)} "
                             f"({', '.join(THREE_CLASSES)})")
        for path in sorted(label_dir.iterdir()):
            if path.suffix.lower() == ".png" and path.is_file() and not is_debris(path.name):
                yield label_dir.name, path


def map_sample_id(path: Path) -> str:
    """`sub01_EP02_01f .png` -> `sub01_EP02_01f`."""
    return path.name[: -len(".png")].rstrip()


def same_pixels(first: Path, second: Path) -> bool:
    """Whether two image files hold the same pixels (identical bytes, or the same decoded image)."""
    if first.read_bytes() == second.read_bytes():
        return True
    images = [cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in (first, second)]
    for path, image in zip((first, second), images):
        if image is None:
            raise ValueError(f"{path}: not a readable image")
    return images[0].shape == images[1].shape and np.array_equal(*images)


class TestMap(NamedTuple):
    source: str
    subject: str
    label: str  # its label folder
    path: Path


def read_ststnet(root: Path, subject_dirs: list[Path]) -> pd.DataFrame:
    """The samples of the `u_test` folders, after checking every `u_train` copy against them."""
    tests: dict[str, TestMap] = {}
    for subject_dir in subject_dirs:
        found = 0
        for label, path in split_maps(subject_dir / TEST_SPLIT):
            sample_id = map_sample_id(path)
            source, subject = sample_source(sample_id, path)
            if subject != subject_dir.name:
                raise ValueError(f"{path}: a map of subject {subject} in the test split of {subject_dir.name}")
            if sample_id in tests:
                raise ValueError(f"{path}: sample {sample_id} is also in {tests[sample_id].path}")
            tests[sample_id] = TestMap(source, subject, label, path)
            found += 1
        if not found:
            raise ValueError(f"{subject_dir / TEST_SPLIT}: no maps (expected <label>/{map_name('<sample>')})")
    for subject_dir in subject_dirs:
        for label, path in split_maps(subject_dir / TRAIN_SPLIT):
            test = tests.get(map_sample_id(path))
            if test is None:
                raise ValueError(f"{path}: sample {map_sample_id(path)} is in no {TEST_SPLIT} folder")
            if test.subject == subject_dir.name:
                raise ValueError(f"{path}: the subject's own sample in its training split (a test-subject leak)")
            if label != test.label:
                raise ValueError(f"{path}: label {label}, but {test.path} has label {test.label}")
            if not same_pixels(path, test.path):
                raise ValueError(f"{path}: its pixels differ from {test.path}")
    return pd.DataFrame({
        SAMPLE_ID: list(tests),
        SUBJECT: [test.subject for test in tests.values()],
        SOURCE_DATASET: [test.source for test in tests.values()],
        LABEL: [THREE_CLASSES[int(test.label)] for test in tests.values()],
        FLOW: [str(test.path.relative_to(root)) for test in tests.values()],
        APEX: [None] * len(tests),
    })


class Megc2019Maps(MEBuilder):
    """The public MEGC2019 flow maps (HTNet clone: flow + apex; STSTNet layout: flow only)."""

    HOMEPAGE = "https://github.com/wangzhifengharrison/HTNet"
    CITATION = (
        "Wang, Z., Zhang, K., Luo, W., Sankaranarayana, R. HTNet for micro-expression recognition. "
        "Neurocomputing, 2024. "
        "Liong, S.-T. et al. Shallow triple stream three-dimensional CNN (STSTNet) for micro-expression "
        "recognition. IEEE FG 2019."
    )

    @property
    def manual_download_instructions(self) -> str:
        return (f"Pass a clone of {self.HOMEPAGE} (it holds {HTNET_CSV}) or a folder in the STSTNet layout "
                f"(<subject>/{TEST_SPLIT}/<label>/<sample> .png, e.g. the clone's datasets/three_norm_u_v_os) "
                "as data_dir.")

    def _features(self):
        return sample_features(THREE_CLASSES, FLOW_FEATURES)

    def _rows(self):
        data_dir = self.require_data_dir()
        if (data_dir / HTNET_CSV).is_file():
            table, where = read_htnet(data_dir), f"megc2019_maps ({data_dir / HTNET_CSV})"
        else:
            subject_dirs = sorted(path for path in data_dir.iterdir()
                                  if (path / TEST_SPLIT).is_dir() and not is_debris(path.name))
            if not subject_dirs:
                raise FileNotFoundError(f"megc2019_maps: {data_dir} holds neither {HTNET_CSV} nor subject folders "
                                        f"with {TEST_SPLIT}/. {self.manual_download_instructions}")
            table, where = read_ststnet(data_dir, subject_dirs), f"megc2019_maps ({data_dir})"
        return flow_rows(table, data_dir, self.config.skip_missing, where)
