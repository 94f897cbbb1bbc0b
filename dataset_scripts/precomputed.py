"""Hugging Face `datasets` builder script for precomputed flow + apex images listed in samples.csv.

The builder lives in the package (`hf_mmmer.data.precomputed.Precomputed`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("precomputed.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("precomputed", ...)          # or load_me_dataset("dataset_scripts/precomputed.py", ...)

or instantiate the builder directly: `Precomputed(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.precomputed import Precomputed

__all__ = ["Precomputed"]
