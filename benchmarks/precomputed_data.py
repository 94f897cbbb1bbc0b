"""A precomputed flow/apex folder encoded exactly as the package's trainer encodes it.

The benchmarks that train outside `examples/train.py` (the STSTNet-style reference, the ideas script)
read the folder through this one function, so they see the same tensors as the trainer's sweeps.
"""

from hf_mmmer import MMMERConfig
from hf_mmmer.training.arguments import DataArguments
from hf_mmmer.training.encoding import encode_dataset
from hf_mmmer.training.experiment import build_processor, load_dataset_for


def encode_precomputed(data_dir: str):
    """`(EncodedDataset, processor)`: the folder through the default recipe's processor (the seed only
    matters for synthetic data, so any will do)."""
    data_args = DataArguments(dataset="precomputed", data_dir=data_dir)
    processor = build_processor(MMMERConfig(), data_args)
    return encode_dataset(load_dataset_for(data_args, seed=0), processor), processor
