"""The base of every builder: shared config fields, split generation and the data_dir check.

Builders produce their rows in `_rows()`; this base turns them into a `train` split, or into `train`
and `test` when `test_subjects` names a fold (a single LOSO fold as builder splits, for users who want
one fold without `loso_folds`).
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import datasets
from PIL import Image

from .checks import listing, report_missing
from .features import SAMPLE_ID, SOURCE_DATASET, SUBJECT
from .loso import fold_key, held_out_split, select_subjects


@dataclass
class MEConfig(datasets.BuilderConfig):
    """Fields every micro-expression builder takes.

    Args:
        skip_missing: skip (with a warning and a count) samples whose files are not on disk or whose images
            cannot be decoded, instead of stopping with a list of them.
        test_subjects: fold keys (`"casme2/sub01"`) or unambiguous subject ids; when given, the builder
            has a `test` split with these subjects and a `train` split with all others.
    """

    skip_missing: bool = False
    test_subjects: list[str] | None = None


def check_fold_names(rows: list[dict], where: str):
    """Refuse source and subject names that would merge or split folds.

    A fold is `source/subject` and its file in a run is `source__subject.json`, so a `/` in either name, or
    `__` in a source, would make two folds one. Two spellings that differ only in case (`sub02`, `SUB02`) are
    almost surely one person, whose samples would then be trained on while that person is tested.
    """
    sources = {row[SOURCE_DATASET] for row in rows}
    bad = sorted(name for name in sources if "/" in name or "__" in name)
    bad += sorted({f"{row[SOURCE_DATASET]}/{row[SUBJECT]}" for row in rows if "/" in row[SUBJECT]})
    if bad:
        raise ValueError(f"{where}: a source or subject name holds '/' (or a source '__'), which fold names use: "
                         f"{listing(bad)}")
    spellings = defaultdict(set)
    for name in sources:
        spellings[name.casefold()].add(name)
    for row in rows:
        spellings[(row[SOURCE_DATASET], row[SUBJECT].casefold())].add(row[SUBJECT])
    clashes = sorted(" and ".join(sorted(names)) for names in spellings.values() if len(names) > 1)
    if clashes:
        raise ValueError(f"{where}: names that differ only in case would be separate folds (one person trained on "
                         f"and tested): {listing(clashes)}; spell each source and subject one way")


class MEBuilder(datasets.GeneratorBasedBuilder):
    """Subclasses define `_features()` and `_rows()` (a list of example dicts with a unique `sample_id`)."""

    BUILDER_CONFIG_CLASS = MEConfig
    HOMEPAGE = ""
    CITATION = ""

    @property
    def manual_download_instructions(self) -> str | None:
        """Where to get licensed data (the user downloads it and passes `data_dir`); None if not needed."""
        return None

    def _features(self) -> datasets.Features:
        raise NotImplementedError

    def _rows(self) -> list[dict]:
        raise NotImplementedError

    def _info(self):
        return datasets.DatasetInfo(
            description=(self.__doc__ or "").strip(),
            features=self._features(),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def require_data_dir(self) -> Path:
        """`config.data_dir` as an absolute path (the dataset keeps its files' paths, which must not depend on
        the folder the user later works in), or an error that says what was expected and where to get it."""
        data_dir = self.config.data_dir
        if data_dir is None or not Path(data_dir).is_dir():
            found = "no data_dir was given" if data_dir is None else f"data_dir {data_dir} is not a directory"
            raise FileNotFoundError(f"{self.name}: {found}. {self.manual_download_instructions or ''}".strip())
        return Path(data_dir).absolute()

    def decodable(self, rows: list[dict]) -> list[dict]:
        """`rows` without those whose image files do not decode, reported as `report_missing` does.

        `datasets` keeps an image column as the file's path and decodes it only when a sample is read, so
        a damaged file would pass the build and fail in the user's loop with a PIL error naming no sample.
        Decoding each image once here costs a few milliseconds a file, and only when the cache is built.
        """
        columns = [name for name, feature in self.info.features.items() if isinstance(feature, datasets.Image)]
        kept, damaged = [], []
        for row in rows:
            problems = []
            for column in columns:
                if isinstance(path := row[column], str):
                    try:
                        with Image.open(path) as image:
                            image.load()
                    except Exception as error:  # PIL's plugins raise OSError, SyntaxError, ValueError, ...
                        problems.append(f"{column} {path}: {error}")
            if problems:
                damaged.append(f"{row[SAMPLE_ID]} ({'; '.join(problems)})")
            else:
                kept.append(row)
        report_missing(damaged, self.config.skip_missing, self.name, problem="images that do not decode")
        return kept

    def _split_generators(self, dl_manager):
        rows = self._rows()
        check_fold_names(rows, self.name)
        rows = self.decodable(rows)
        if not rows:  # e.g. every sample skipped; `datasets` would say 'Instruction "train" corresponds to no data'
            where = f" in {self.config.data_dir}" if self.config.data_dir else ""
            raise ValueError(f"{self.name}: no samples{where}")
        if not self.config.test_subjects:
            return [datasets.SplitGenerator(datasets.Split.TRAIN, gen_kwargs={"rows": rows})]
        keys = [fold_key(row[SOURCE_DATASET], row[SUBJECT]) for row in rows]
        train, test = held_out_split(keys, select_subjects(keys, self.config.test_subjects))
        return [datasets.SplitGenerator(split, gen_kwargs={"rows": [rows[i] for i in side]})
                for split, side in ((datasets.Split.TRAIN, train), (datasets.Split.TEST, test))]

    def _generate_examples(self, rows):
        for row in rows:
            yield row[SAMPLE_ID], row
