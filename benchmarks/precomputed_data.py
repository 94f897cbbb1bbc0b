"""A precomputed flow/apex folder encoded exactly as the package's trainer encodes it, and scored alike.

The benchmarks that train outside `examples/train.py` (the reference models, the ideas script) read the
folder and score their predictions through these two functions, so they see the same tensors and get
the same summary (pooled and per source dataset) as the trainer's sweeps.
"""

import pandas as pd

from hf_mmmer import MMMERConfig
from hf_mmmer.training.arguments import DataArguments
from hf_mmmer.training.encoding import encode_dataset
from hf_mmmer.training.run_inputs import build_processor, load_dataset_for
from hf_mmmer.training.metrics import summarize_predictions


def encode_precomputed(data_dir: str):
    """`(EncodedDataset, processor)`: the folder through the default recipe's processor (the seed only
    matters for synthetic data, so any will do)."""
    data_args = DataArguments(dataset="precomputed", data_dir=data_dir)
    processor = build_processor(MMMERConfig(), data_args)
    return encode_dataset(load_dataset_for(data_args, seed=0), processor), processor


def summarize(data, predictions) -> dict:
    """The package's `summarize_predictions` of one predicted label per sample of the encoded `data`."""
    table = pd.DataFrame({"label": data.labels.numpy(), "prediction": predictions, "dataset": data.datasets,
                          "fold": data.subjects})
    return summarize_predictions(table, len(data.label_names))
