"""Precomputed onset-to-apex flow images and apex face crops (the STSTNet / HTNet distribution format).

`data_dir` holds `samples.csv` with the columns `dataset, subject, sample, label, label_name, flow,
apex`: `flow` and `apex` are image paths relative to `data_dir` (flow: RGB u, v, optical strain scaled
to 0..255; apex: the face at the apex). Any number of source datasets may share one folder; a sample's
id is `{subject}_{sample}`, as in the MEGC2019 list. `label_name` decides the class; `label`, where
given, must agree with it.
"""

from dataclasses import dataclass

import datasets
import pandas as pd

from .annotations import require_columns
from .builder import MEBuilder, MEConfig
from .checks import ensure_known, ensure_unique, listing, report_missing
from .features import APEX, FLOW, LABEL, SAMPLE_ID, SOURCE_DATASET, SUBJECT, sample_features
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
        return sample_features(self.config.label_names, {FLOW: datasets.Image(), APEX: datasets.Image()})

    def _rows(self):
        data_dir = self.require_data_dir()
        csv = data_dir / SAMPLES_FILE
        if not csv.is_file():
            raise FileNotFoundError(f"precomputed: expected {SAMPLES_FILE} in {data_dir}")
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        require_columns(table, REQUIRED_COLUMNS, csv)
        label_names = list(self.config.label_names)
        ensure_known(table[CSV_LABEL_NAME], label_names, "label names", csv)
        if CSV_LABEL in table.columns:
            disagree = table[table[CSV_LABEL] != table[CSV_LABEL_NAME].map(lambda name: str(label_names.index(name)))]
            if len(disagree):
                pairs = [f"{row[CSV_SAMPLE]}: {row[CSV_LABEL]} vs {row[CSV_LABEL_NAME]}"
                         for _, row in disagree.iterrows()]
                raise ValueError(f"{csv}: label and label_name disagree (labels are {label_names}): {listing(pairs)}")
        table[SAMPLE_ID] = table[CSV_SUBJECT] + "_" + table[CSV_SAMPLE]
        ensure_unique(table[SAMPLE_ID], csv)
        on_disk = table[[CSV_FLOW, CSV_APEX]].map(lambda path: (data_dir / path).is_file())
        missing = [
            f"{row[SAMPLE_ID]} (not found: {', '.join(row[c] for c in on_disk if not on_disk.at[index, c])})"
            for index, row in table[~on_disk.all(axis=1)].iterrows()
        ]
        report_missing(missing, self.config.skip_missing, f"precomputed ({csv})")
        return [
            {
                SAMPLE_ID: row[SAMPLE_ID],
                SUBJECT: row[CSV_SUBJECT],
                SOURCE_DATASET: row[CSV_DATASET],
                LABEL: row[CSV_LABEL_NAME],
                FLOW: str(data_dir / row[CSV_FLOW]),
                APEX: str(data_dir / row[CSV_APEX]),
            }
            for _, row in table[on_disk.all(axis=1)].iterrows()
        ]
