"""Hugging Face `datasets` builder script for the public MEGC2019 flow maps (HTNet clone or STSTNet layout).

The builder lives in the package (`hf_mmmer.data.megc2019_maps.Megc2019Maps`) so that it is tested, versioned
and importable; this script only re-exports it, so that tools that take a dataset script find one here.
`datasets` 4 and later refuse to run scripts through `load_dataset("megc2019_maps.py")`; with them use

    from hf_mmmer.data import load_me_dataset
    ds = load_me_dataset("megc2019_maps", data_dir=...)   # or "dataset_scripts/megc2019_maps.py"

or instantiate the builder directly: `Megc2019Maps(data_dir=..., cache_dir=...)`, then
`.download_and_prepare()` and `.as_dataset("train")`.
"""

from hf_mmmer.data.megc2019_maps import Megc2019Maps

__all__ = ["Megc2019Maps"]
