"""Bounds on the numbers a user passes to the commands, checked once for `hf-mmmer` and `train.py` alike.

Each check returns `None` when the value is fine, else the reason it is not, for the caller to raise as its
command line does (argparse's usage error, or a `ValueError` naming the option).
"""

import os

MAX_SEED = 2**32 - 1
"""NumPy's and torch's generators all take seeds from 0 to 2**32 - 1."""


def usable_cores() -> int:
    """The cores this process may run on (`taskset` and container limits included), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def seed_problem(seed: int) -> str | None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        return f"must be an integer from 0 to {MAX_SEED}, got {seed!r}"
    return None


def thread_problem(threads: int) -> str | None:
    """Thousands of threads exhaust memory before the work starts; more than the usable cores only stall."""
    if threads > usable_cores():
        return f"{threads} is more than the {usable_cores()} cores this process may use"
    return None
