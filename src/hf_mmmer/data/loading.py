"""`load_me_dataset`: one call that builds any of the package's datasets with `datasets`.

`datasets` 4 and later no longer run dataset scripts (`load_dataset("casme2.py")` raises "Dataset
scripts are no longer supported"), so the builders live in this package and are instantiated directly:
`Builder(config_name=..., data_dir=..., cache_dir=...)`, `download_and_prepare()`, `as_dataset()`.
The scripts in `dataset_scripts/` re-export them, and `load_me_dataset` also accepts a script's path.

Caching: `datasets` keys its cache on the builder's arguments, including the `data_dir` string but not
the data in it, so a changed or replaced folder at the same path would be served stale. This call
therefore passes a fingerprint of the data (every file's path, size and modification time under
`data_dir` and of `PATH_ARGUMENTS`) and of the builder code as the builder's `hash`: different data
never share a cache entry, unchanged data is built once.
"""

import dataclasses
import hashlib
import importlib.util
import inspect
import json
import os
import warnings
from pathlib import Path

import datasets
from datasets.naming import camelcase_to_snakecase

from ..paths import is_within
from .casme2 import Casme2
from .checks import AnnotationWarning
from .megc2019 import Megc2019
from .megc2019_maps import Megc2019Maps
from .precomputed import Precomputed
from .samm import Samm
from .smic import Smic
from .synthetic import Synthetic

BUILDERS = {
    "casme2": Casme2,
    "smic": Smic,
    "samm": Samm,
    "megc2019": Megc2019,
    "megc2019_maps": Megc2019Maps,
    "precomputed": Precomputed,
    "synthetic": Synthetic,
}
NOTES_FILE = "annotation_warnings.json"
"""Beside a cached dataset: the `AnnotationWarning`s its build gave (`prepare_with_notes`)."""
CACHE_ENV = "HF_MMMER_DATASETS_CACHE"
"""Environment variable that moves the default cache (default: `~/.cache/hf_mmmer/datasets`)."""
PATH_ARGUMENTS = ("sample_list", "annotation_file")
"""Builder arguments that name files whose content, like data_dir's, is part of the cache key (as are the
folders of megc2019's `source_dirs` that lie outside data_dir, `folders_outside`)."""
CODE_FILES = sorted(Path(__file__).parent.glob("*.py")) + [
    Path(__file__).parent / "megc2019_samples.txt",
    Path(__file__).parents[1] / "optical_flow.py",  # apex spotting results depend on these two
    Path(__file__).parents[1] / "spotting.py",
]


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hf_mmmer" / "datasets")


def builder_class(name: str) -> type[datasets.GeneratorBasedBuilder]:
    """A builder by name (`BUILDERS`), or the builder a dataset script (`path/to/casme2.py`) defines."""
    if name in BUILDERS:
        return BUILDERS[name]
    if not name.endswith(".py"):
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(BUILDERS)} or a dataset script path")
    spec = importlib.util.spec_from_file_location(Path(name).stem, name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [obj for obj in vars(module).values() if inspect.isclass(obj) and issubclass(obj, datasets.DatasetBuilder)]
    if len(found) != 1:
        raise ValueError(f"{name} must define exactly one dataset builder; found {[c.__name__ for c in found]}")
    return found[0]


def check_arguments(builder: type, builder_kwargs: dict):
    """Refuse arguments the builder's config does not have (a typo would otherwise name the whole config)."""
    base = {field.name for field in dataclasses.fields(datasets.BuilderConfig)}
    known = [field.name for field in dataclasses.fields(builder.BUILDER_CONFIG_CLASS) if field.name not in base]
    unknown = sorted(set(builder_kwargs) - set(known))
    if unknown:
        raise ValueError(f"{builder.__name__}: unknown arguments {unknown}; it takes {known}")


def files_under(root: Path) -> list[Path]:
    """Every file under `root` (or `root` itself), through symbolic links to folders, as the builders read them;
    each real folder once, so a link loop ends."""
    if root.is_file():
        return [root]
    seen, files = set(), []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        info = os.stat(folder)
        identity = (info.st_dev, info.st_ino)
        if identity in seen:
            subfolders.clear()
            continue
        seen.add(identity)
        subfolders.sort()
        files.extend(path for path in (Path(folder) / name for name in sorted(names)) if path.is_file())
    return files


def folders_outside(data_dir, builder_kwargs: dict) -> list[str]:
    """megc2019's `source_dirs` (relative to `data_dir`, or absolute) that do not lie under `data_dir`, which the
    cache key must cover too (those under it are walked with it; one linked from it is walked twice, harmlessly)."""
    if data_dir is None:
        return []
    folders = [os.path.join(data_dir, os.fspath(path))
               for path in (builder_kwargs.get("source_dirs") or {}).values() if isinstance(path, (str, os.PathLike))]
    return [folder for folder in folders if not is_within(folder, data_dir)]


def fingerprint(builder: type, paths) -> str:
    """A hash of the builder's code and of every file (path, size, mtime; a linked file's own) under `paths`."""
    digest = hashlib.sha256()
    for code in [*CODE_FILES, Path(inspect.getfile(builder))]:
        digest.update(code.read_bytes() if code.is_file() else b"-")
    for root in paths:
        for path in files_under(Path(root)):
            stat = path.stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def prepare_with_notes(builder: datasets.DatasetBuilder):
    """`builder.download_and_prepare()`, its `AnnotationWarning`s (the data's quirks and what was done about
    them) kept beside the cached dataset and given again when the cache is reused, so a second run of a
    script says what the first said. Other warnings pass through as they came."""
    cached = os.path.isdir(builder.cache_dir)
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AnnotationWarning)
            builder.download_and_prepare()
    finally:  # a build that stops still says what it found first
        for warned in caught:
            warnings.warn_explicit(warned.message, warned.category, warned.filename, warned.lineno)
    notes = Path(builder.cache_dir) / NOTES_FILE
    if not cached:
        notes.write_text(json.dumps([str(warned.message) for warned in caught
                                     if issubclass(warned.category, AnnotationWarning)], indent=1))
    elif notes.is_file():
        for message in json.loads(notes.read_text()):
            warnings.warn(message, AnnotationWarning, stacklevel=3)


def load_me_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    config: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    split: str | None = None,
    **builder_kwargs,
) -> datasets.Dataset | datasets.DatasetDict:
    """Build (or reuse from the cache) a micro-expression dataset.

    Args:
        name: one of `BUILDERS` (`"casme2"`, `"smic"`, `"samm"`, `"megc2019"`, `"megc2019_maps"`,
            `"precomputed"`, `"synthetic"`) or the path of a dataset script from `dataset_scripts/`.
        data_dir: the folder of a licensed dataset (see each builder's manual download instructions),
            or of a precomputed `samples.csv`.
        config: a builder config name, e.g. `"3class"` or `"5class"`; default: the builder's default.
        cache_dir: where Arrow files go; default `$HF_MMMER_DATASETS_CACHE` or `~/.cache/hf_mmmer/datasets`.
        split: a split to return; default: the `train` split as a `Dataset`, or a `DatasetDict` with
            `train` and `test` when `test_subjects` is given.
        builder_kwargs: config fields of the builder, e.g. `skip_missing=True`, `apex_spotting="middle"`,
            `num_subjects=8` (synthetic), `test_subjects=["casme2/sub01"]`.
    """
    builder_type = builder_class(str(name))
    check_arguments(builder_type, builder_kwargs)
    paths = [data_dir, *(builder_kwargs.get(name) for name in PATH_ARGUMENTS),
             *folders_outside(data_dir, builder_kwargs)]
    data_paths = [path for path in paths if path is not None and os.path.exists(path)]
    cache_dir = str(cache_dir or default_cache_dir())
    # datasets writes lock files to cache_dir and the dataset to cache_dir/<name>/, named as it names builders.
    dataset_cache = os.path.join(cache_dir, camelcase_to_snakecase(builder_type.__name__))
    if data_dir is not None and any(is_within(path, data_dir) for path in (cache_dir, dataset_cache)):
        raise ValueError(f"cache_dir {cache_dir} would put the dataset cache ({dataset_cache}) inside data_dir "
                         f"{data_dir}: the data folder is never written into; choose a cache_dir outside it")
    builder = builder_type(
        config_name=config,
        data_dir=None if data_dir is None else str(data_dir),
        cache_dir=cache_dir,
        hash=fingerprint(builder_type, data_paths),
        **builder_kwargs,
    )
    prepare_with_notes(builder)
    dataset = builder.as_dataset(split=split)
    if split is None and list(dataset) == [datasets.Split.TRAIN]:
        return dataset[datasets.Split.TRAIN]
    return dataset
