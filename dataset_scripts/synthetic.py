"""Hugging Face `datasets` builder script for procedural micro-expression clips (no download).

The builder lives in the package (`hf_mmmer.data.synthetic.Synthetic`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("synthetic.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("synthetic", ...)          # or load_me_dataset("dataset_scripts/synthetic.py", ...)

or instantiate the builder directly: `Synthetic(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.synthetic import Synthetic

__all__ = ["Synthetic"]
