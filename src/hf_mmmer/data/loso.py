"""Leave-one-subject-out (LOSO) and leave-one-dataset-out (LODO) folds over any dataset of this package.

A subject id is unique only within its source dataset (CASME II `sub01`, SMIC `s01`, SAMM `006`, and a
precomputed folder may hold any ids), so a fold is keyed by `"{source_dataset}/{subject}"`. A LODO fold
holds out every subject of one source, which is how a model meets a dataset nobody tuned it on.
"""

from collections.abc import Iterable, Iterator, Sequence

import datasets
import numpy as np

from .features import SOURCE_DATASET, SUBJECT


def fold_key(source_dataset: str, subject: str) -> str:
    """The key of one subject's fold, e.g. `"casme2/sub01"`."""
    return f"{source_dataset}/{subject}"


def subject_keys(dataset: datasets.Dataset) -> list[str]:
    """The fold key of every row, in row order."""
    columns = dataset.select_columns([SOURCE_DATASET, SUBJECT]).to_dict()
    return [fold_key(source, subject) for source, subject in zip(columns[SOURCE_DATASET], columns[SUBJECT])]


def source_of(key: str) -> str:
    """The source dataset of a fold key (`"casme2/sub01"` -> `"casme2"`)."""
    return key.split("/", 1)[0]


def select_sources(keys: Sequence[str], requested: Iterable[str]) -> np.ndarray:
    """Indices of the rows whose source dataset is one of `requested` (e.g. `["smic"]`).

    Restricting the rows before folds are planned makes a single-database protocol (SMIC alone: one
    fold per SMIC subject). An unknown name raises, listing the sources the rows have.
    """
    sources = np.asarray([source_of(key) for key in keys])
    known = sorted(set(sources.tolist()))
    requested = list(dict.fromkeys(requested))
    unknown = [name for name in requested if name not in known]
    if unknown or not requested:
        raise ValueError(f"unknown sources {unknown or requested}; known sources: {known}")
    return np.flatnonzero(np.isin(sources, requested))


def protocol_folds(keys: Iterable[str], protocol: str) -> dict[str, list[str]]:
    """`{fold name: held-out keys}`, sorted, of `"loso"` (one fold per subject, named by its key) or
    `"lodo"` (one fold per source dataset, named by the source, holding out all its subjects).

    Pass each fold's keys to `held_out_split`, which guards against leaks. LODO needs two sources.
    """
    known = sorted(set(keys))
    if protocol == "loso":
        return {key: [key] for key in known}
    if protocol == "lodo":
        folds = {}
        for key in known:
            folds.setdefault(source_of(key), []).append(key)
        if len(folds) < 2:
            raise ValueError(f"leave-one-dataset-out needs at least two sources; the data has only {sorted(folds)}")
        return folds
    raise ValueError(f"protocol must be lodo or loso, got {protocol!r}")


def select_subjects(keys: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The fold keys that `requested` names, in the order named.

    Each name is a fold key, or a bare subject id that belongs to exactly one source dataset (so
    `"sub01"` works for CASME II, while an id two sources share must be given with its source). One name
    alone may be given as a string (iterating it would give its letters).
    """
    requested = [requested] if isinstance(requested, str) else requested
    known = sorted(set(keys))
    by_id = {}
    for key in known:
        by_id.setdefault(key.split("/", 1)[1], []).append(key)
    chosen, unknown = [], []
    for name in requested:
        matches = [name] if name in known else by_id.get(name, [])
        if len(matches) > 1:
            raise ValueError(f"subject {name!r} is ambiguous; name one of {matches}")
        if matches:
            chosen.extend(matches)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unknown subjects {unknown}; known subjects: {known}")
    return list(dict.fromkeys(chosen))


def held_out_split(keys: Sequence[str], held_out: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(train indices, test indices)` of the rows whose key is, or is not, in `held_out`.

    The one place every protocol (LOSO, holdout, leave-one-dataset-out) and every benchmark splits rows.
    Rows are split by their subject's key, never by row, so no subject can be on both sides; a split by
    hand (row indices chosen elsewhere) is what could leak one. `keys` are fold keys (one per row);
    `held_out` names the keys of the test side. A held-out key with no row or an empty train side raises.
    """
    keys = np.asarray(keys)
    held_out = list(dict.fromkeys(held_out))
    missing = sorted(set(held_out) - set(keys.tolist()))
    if missing:
        raise ValueError(f"held-out subjects {missing} have no rows")
    is_test = np.isin(keys, held_out)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not len(train):
        raise ValueError(f"holding out {held_out} leaves no training rows")
    return train, test


def loso_folds(
    dataset: datasets.Dataset, subjects: Sequence[str] | None = None
) -> Iterator[tuple[str, datasets.Dataset, datasets.Dataset]]:
    """Yield `(fold key, train, test)` for every subject of `dataset` (sorted), or for those named.

    The test set holds all rows of one subject and the train set all other rows; a subject on both
    sides raises (it would leak identity into the evaluation).
    """
    keys = subject_keys(dataset)
    for key in select_subjects(keys, subjects) if subjects is not None else sorted(set(keys)):
        train, test = held_out_split(keys, [key])
        yield key, dataset.select(train), dataset.select(test)
