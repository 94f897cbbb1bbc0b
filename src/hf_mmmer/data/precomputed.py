"""Precomputed onset-to-apex flow images and apex face crops (the STSTNet / HTNet distribution format).

`data_dir` holds `samples.csv` with the columns `dataset, subject, sample, label, label_name, flow,
apex`: `flow` and `apex` are image paths relative to `data_dir` (flow: RGB u, v, optical strain scaled
to 0..255; apex: the face at the apex). Any number of source datasets may share one folder; a sample's
id is `{subject}_{sample}`, as in the MEGC2019 list. `label_name` decides the class; `label`, where
given (a blank cell is not), must agree with it.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .annotations import csv_line, read_csv_table, require_columns, require_filled
from .builder import MEBuilder, MEConfig
from .checks import ensure_known, ensure_unique, listing, report_missing
from .features import APEX, FLOW, FLOW_FEATURES, LABEL, SAMPLE_ID, SOURCE_DATASET, SUBJECT, sample_features
from .labels import THREE_CLASSES

SAMPLES_FILE = "samples.csv"
CSV_DATASET = "dataset"
CSV_SUBJECT = "subject"
CSV_SAMPLE = "sample"
CSV_LABEL = "label"
CSV_LABEL_NAME = "label_name"
CSV_FLOW = "flow"
CSV_APEX = "apex"
REQUIRED_COLUMNS = (CSV_DATASET, CSV_SUBJECT, CSV_SAMPLE, CSV_LABEL_NAME, CSV_FLOW, CSV_APEX)


def label_agrees(cell: str, index: int) -> bool:
    """Whether a `label` cell is blank (not given) or names class `index`: as `1` or as a spreadsheet's `1.0`."""
    if cell == "":
        return True
    try:
        return float(cell) == index
    except ValueError:
        return False


def flow_rows(table: pd.DataFrame, root: Path, skip_missing: bool, where: str) -> list[dict]:
    """The examples of a table of precomputed samples, after checking their ids and files.

    `table` has the dataset columns `sample_id`, `subject`, `source_dataset`, `label` (a class name),
    `flow` and `apex` (image paths relative to `root`; `apex` is None in a flow-only dataset). Duplicate
    ids are an error; samples whose files are missing are an error or skipped (`report_missing`).
    """
    ensure_unique(table[SAMPLE_ID], where)
    rows, missing = [], []
    for row in table[[SAMPLE_ID, SUBJECT, SOURCE_DATASET, LABEL, FLOW, APEX]].to_dict("records"):
        paths = {column: None if row[column] is None else root / row[column] for column in (FLOW, APEX)}
        absent = [row[column] for column, path in paths.items() if path is not None and not path.is_file()]
        if absent:
            missing.append(f"{row[SAMPLE_ID]} (not found: {', '.join(absent)})")
            continue
        rows.append({**row, **{column: None if path is None else str(path) for column, path in paths.items()}})
    report_missing(missing, skip_missing, where)
    return rows


@dataclass
class PrecomputedConfig(MEConfig):
    """Args:
    label_names: the classes in label order (`label_name` values must be among them).
    """

    label_names: tuple = THREE_CLASSES


class Precomputed(MEBuilder):
    """Precomputed flow + apex images listed in samples.csv."""

    BUILDER_CONFIG_CLASS = PrecomputedConfig
    BUILDER_CONFIGS = [PrecomputedConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"

    @property
    def manual_download_instructions(self) -> str:
        return f"Pass the folder that holds {SAMPLES_FILE} and the images it lists as data_dir."

    def _features(self):
        return sample_features(self.config.label_names, FLOW_FEATURES)

    def _rows(self):
        data_dir = self.require_data_dir()
        csv = data_dir / SAMPLES_FILE
        if not csv.is_file():
            raise FileNotFoundError(f"precomputed: expected {SAMPLES_FILE} in {data_dir}")
        table = read_csv_table(csv)
        require_columns(table, REQUIRED_COLUMNS, csv)
        require_filled(table, REQUIRED_COLUMNS, csv)
        label_names = list(self.config.label_names)
        ensure_known(table[CSV_LABEL_NAME], label_names, "label names", csv)
        if CSV_LABEL in table.columns:
            agrees = [label_agrees(cell, label_names.index(name))
                      for cell, name in zip(table[CSV_LABEL], table[CSV_LABEL_NAME])]
            disagree = table[[not agreeing for agreeing in agrees]]
            if len(disagree):
                pairs = [f"{row[CSV_SUBJECT]}_{row[CSV_SAMPLE]} ({csv_line(index)}): {row[CSV_LABEL]} vs "
                         f"{row[CSV_LABEL_NAME]}" for index, row in disagree.iterrows()]
                raise ValueError(f"{csv}: label and label_name disagree (labels are {label_names}): {listing(pairs)}")
        table = pd.DataFrame({
            SAMPLE_ID: table[CSV_SUBJECT] + "_" + table[CSV_SAMPLE],
            SUBJECT: table[CSV_SUBJECT],
            SOURCE_DATASET: table[CSV_DATASET],
            LABEL: table[CSV_LABEL_NAME],
            FLOW: table[CSV_FLOW],
            APEX: table[CSV_APEX],
        })
        return flow_rows(table, data_dir, self.config.skip_missing, f"precomputed ({csv})")
