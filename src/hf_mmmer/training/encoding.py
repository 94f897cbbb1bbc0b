"""Turn a micro-expression `datasets.Dataset` into in-memory model inputs, once per run.

Every fold of a leave-one-subject-out sweep trains on the same samples, so the image processor (flow,
strain, face texture) runs once for the whole dataset and the folds index into the resulting tensors;
a few hundred samples of 28x28 flow and 112x112 texture take a few tens of MB.
"""

from dataclasses import dataclass

import torch

from ..data import subject_keys


@dataclass
class EncodedDataset:
    """Model inputs and metadata of every sample, in dataset order."""

    flow: torch.Tensor  # (N, 3, flow_size, flow_size)
    texture: torch.Tensor  # (N, C, texture_size, texture_size)
    labels: torch.Tensor  # (N,) int64
    sample_ids: list
    subjects: list  # fold keys "<source>/<subject>"
    datasets: list  # source dataset of each sample
    label_names: list

    def __len__(self):
        return len(self.labels)

    def model_inputs(self, indices, modalities) -> dict:
        """`flow_values` / `texture_values` of the samples at `indices`, for the configured modalities."""
        tensors = {"flow": self.flow, "texture": self.texture}
        return {f"{m}_values": tensors[m][indices] for m in modalities}


def encode_dataset(dataset, processor, batch_size: int = 64) -> EncodedDataset:
    """Run `processor` over `dataset` (precomputed `flow` + `apex`, or `onset` + `apex` columns)."""
    if "flow" in dataset.column_names:
        first_input = "flow"
    elif "onset" in dataset.column_names:
        first_input = "onset"
    else:
        raise ValueError(
            f"dataset needs `flow` + `apex` or `onset` + `apex` columns; it has {dataset.column_names}"
        )
    flows, textures = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        encoded = processor(**{first_input: rows[first_input], "apex": rows["apex"]}, return_tensors="pt")
        flows.append(encoded["flow_values"])
        textures.append(encoded["texture_values"])
    label_feature = dataset.features["label"]
    columns = dataset.select_columns(["sample_id", "subject", "source_dataset", "label"]).to_dict()
    return EncodedDataset(
        flow=torch.cat(flows).float(),
        texture=torch.cat(textures).float(),
        labels=torch.tensor(columns["label"], dtype=torch.long),
        sample_ids=list(columns["sample_id"]),
        subjects=subject_keys(dataset),
        datasets=list(columns["source_dataset"]),
        label_names=list(label_feature.names),
    )
