"""Where a path really lies: the one test of "is this that folder, or inside it" that every guard of the
user's folders uses (an output that would land in an input, a cache in the data, a Space in its model)."""

import os


def is_within(path, folder) -> bool:
    """Whether `path` is `folder` or lies under it, by real paths (links followed as far as they go, so a
    link loop is an answer, not an error; neither needs to exist)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder
