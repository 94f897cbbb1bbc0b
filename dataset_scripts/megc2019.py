"""Hugging Face `datasets` builder script for the MEGC2019 composite of CASME II, SMIC-HS and SAMM.

The builder lives in the package (`hf_mmmer.data.megc2019.Megc2019`) so that it is tested, versioned and
importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("megc2019.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("megc2019", ...)          # or load_me_dataset("dataset_scripts/megc2019.py", ...)

or instantiate the builder directly: `Megc2019(config_name=..., data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.megc2019 import Megc2019

__all__ = ["Megc2019"]
