"""Leave-one-subject-out (LOSO) folds over any micro-expression dataset of this package.

A subject id is unique only within its source dataset (CASME II `sub01`, SMIC `s01`, SAMM `006`, and a
precomputed folder may hold any ids), so a fold is keyed by `"{source_dataset}/{subject}"`.
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


def select_subjects(keys: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The fold keys that `requested` names, in the order named.

    Each name is a fold key, or a bare subject id that belongs to exactly one source dataset (so
    `"sub01"` works for CASME II, while an id two sources share must be given with its source).
    """
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


def loso_folds(
    dataset: datasets.Dataset, subjects: Sequence[str] | None = None
) -> Iterator[tuple[str, datasets.Dataset, datasets.Dataset]]:
    """Yield `(fold key, train, test)` for every subject of `dataset` (sorted), or for those named.

    The test set holds all rows of one subject and the train set all other rows; a subject on both
    sides raises (it would leak identity into the evaluation).
    """
    keys = np.asarray(subject_keys(dataset))
    for key in select_subjects(keys, subjects) if subjects is not None else sorted(set(keys)):
        test = np.flatnonzero(keys == key)
        train = np.flatnonzero(keys != key)
        shared = set(keys[train]) & set(keys[test])
        if shared:
            raise RuntimeError(f"fold {key}: subjects {sorted(shared)} are in both train and test")
        yield key, dataset.select(train), dataset.select(test)
