"""Checks on annotation rows that every builder runs, and how their findings are reported.

A problem is either fatal (the message names the rows, so the user can fix the data) or fixed in a
stated way and reported with an `AnnotationWarning` that gives the count and the first few samples.
"""

import warnings
from collections.abc import Iterable

import pandas as pd

MAX_LISTED = 5
"""How many offending samples a message names before it says how many more there are."""


class AnnotationWarning(UserWarning):
    """An annotation problem that was fixed or skipped, never silently."""


def is_debris(name: str) -> bool:
    """A name that tools and archives leave beside data and that is never data: hidden ones (macOS's `._map.png`
    resource forks, `.ipynb_checkpoints`, `.DS_Store`) and macOS's `__MACOSX` copy of an archive's tree."""
    return name.startswith(".") or name == "__MACOSX"


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def listing(items: list) -> str:
    """The first `MAX_LISTED` items, and how many more."""
    shown = ", ".join(str(item) for item in items[:MAX_LISTED])
    return shown + (f", ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


def ensure_unique(sample_ids: Iterable[str], where: str):
    ids = pd.Series(list(sample_ids), dtype=object)
    duplicated = sorted(ids[ids.duplicated()].unique())
    if duplicated:
        raise ValueError(f"{where}: duplicate sample ids {listing(duplicated)}")


def ensure_known(values: Iterable[str], known: Iterable[str], what: str, where: str):
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown {what} {unknown}; known {what}: {sorted(known)}")


def require_int(value, name: str, minimum: int = 1, where: str | None = None):
    """Refuse a count or size that is not an int of at least `minimum` (a bool or "3" included), naming `name`
    (and `where`, the builder or tool, when the name alone would not say whose field it is)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{f'{where}: ' if where else ''}{name} must be {wanted}, got {value!r}")


def report_missing(missing: list[str], skip: bool, where: str, problem: str = "missing files"):
    """`missing`: one "sample (reason)" line per sample whose files are not on disk (or, as `problem`
    says, are there but unusable)."""
    if not missing:
        return
    if not skip:
        raise FileNotFoundError(
            f"{where}: {count(len(missing), 'sample')} with {problem}: {listing(missing)}. "
            "Pass skip_missing=True (--skip_missing to the commands) to skip them."
        )
    warnings.warn(
        f"{where}: skipped {count(len(missing), 'sample')} with {problem}: {listing(missing)}", AnnotationWarning
    )


def report_fixes(fixed: dict[str, list[str]], where: str):
    """`fixed`: kind of fix -> samples it was applied to."""
    for kind, sample_ids in fixed.items():
        warnings.warn(
            f"{where}: {count(len(sample_ids), 'sample')} fixed ({kind}): {listing(sample_ids)}", AnnotationWarning
        )
