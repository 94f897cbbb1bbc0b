"""Hugging Face `datasets` builder script for CASME II (3class / 5class).

The builder lives in the package (`hf_mmmer.data.casme2.Casme2`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("casme2.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("casme2", ...)          # or load_me_dataset("dataset_scripts/casme2.py", ...)

or instantiate the builder directly: `Casme2(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.casme2 import Casme2

__all__ = ["Casme2"]
