"""Hugging Face `datasets` builder script for SMIC-HS (3class).

The builder lives in the package (`hf_mmmer.data.smic.Smic`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("smic.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("smic", ...)          # or load_me_dataset("dataset_scripts/smic.py", ...)

or instantiate the builder directly: `Smic(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.smic import Smic

__all__ = ["Smic"]
