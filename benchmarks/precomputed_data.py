"""A flow/apex folder encoded exactly as the package's trainer encodes it, and scored alike.

The benchmarks that train outside `examples/train.py` (the reference models, the leaderboard's
baselines) read the folder and score their predictions through these functions, so they see the same
tensors and get the same summary (pooled, per source dataset, per fold) as the trainer's sweeps.
"""

from pathlib import Path

import pandas as pd
import torch

from hf_mmmer import MMMERConfig
from hf_mmmer.training.arguments import DataArguments
from hf_mmmer.training.encoding import encode_dataset
from hf_mmmer.training.run_inputs import build_processor, load_dataset_for
from hf_mmmer.training.metrics import summarize_predictions


def dataset_name(data_dir) -> str:
    """`precomputed` for a folder with `samples.csv`, else `megc2019_maps`: the layouts in which the public
    STSTNet / HTNet maps circulate (a clone of either repository), which that builder reads."""
    return "precomputed" if (Path(data_dir) / "samples.csv").is_file() else "megc2019_maps"


def encode_precomputed(data_dir: str):
    """`(EncodedDataset, processor)`: the folder through the default recipe's processor (the seed only
    matters for synthetic data, so any will do)."""
    data_args = DataArguments(dataset=dataset_name(data_dir), data_dir=data_dir)
    processor = build_processor(MMMERConfig(), data_args)
    return encode_dataset(load_dataset_for(data_args, seed=0), processor), processor


def unit_maps(data, processor) -> torch.Tensor:
    """The encoded flow maps back in [0, 1] (the processor's normalisation undone), the scale from which
    each baseline builds its published input."""
    mean = torch.tensor(processor.flow_mean).view(1, -1, 1, 1)
    std = torch.tensor(processor.flow_std).view(1, -1, 1, 1)
    return data.flow * std + mean


def summarize(data, predictions, folds=None) -> dict:
    """The package's `summarize_predictions` of one predicted label per sample of the encoded `data`;
    `folds` names each sample's fold (default: its subject, as in LOSO)."""
    table = pd.DataFrame({"label": data.labels.numpy(), "prediction": predictions, "dataset": data.datasets,
                          "fold": data.subjects if folds is None else folds})
    return summarize_predictions(table, len(data.label_names))
