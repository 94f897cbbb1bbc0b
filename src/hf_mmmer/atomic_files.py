"""Files written atomically: a temporary sibling, then `os.replace` onto the name.

A process killed at any moment leaves either the old file or the new one, never half of one (`--resume`
relies on that for the per-fold results), and the name is replaced, not written through: a name that is a
symbolic or hard link to someone's file gets a new file of its own, and their file is untouched.
"""

import os
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary sibling of `path` to write; on success rename it onto `path` (atomically).

    The temporary name is `.NAME.<random>.tmp`, which `run_folder` recognises as the run's own
    leftover. It is created here, exclusively (`open(..., "x")`), before anything is written to it: a file
    that happens to have that name is never written over or, on failure, deleted, and the final file gets
    the user's umask like any other file they create (`tempfile.mkstemp` would make it `-rw-------`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.open("x").close()  # from here on the file is ours to replace or delete
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path, text: str):
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        file.write(text)
