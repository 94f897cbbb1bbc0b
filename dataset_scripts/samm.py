"""Hugging Face `datasets` builder script for SAMM (3class / 5class).

The builder lives in the package (`hf_mmmer.data.samm.Samm`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("samm.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("samm", ...)          # or load_me_dataset("dataset_scripts/samm.py", ...)

or instantiate the builder directly: `Samm(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.samm import Samm

__all__ = ["Samm"]
