"""Turn a micro-expression `datasets.Dataset` into in-memory model inputs, once per run.

Every fold of a leave-one-subject-out sweep trains on the same samples, so the image processor (flow,
strain, face texture) runs once for the whole dataset and the folds index into the resulting tensors;
a few hundred samples of the model's small inputs fit in memory many times over.

Samples are decoded and processed one at a time, so that a bad image (one channel, unreadable, gone
since the dataset was built) is reported with its sample id and file, not as item 17 of a batch.
"""

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from ..data import subject_keys

IMAGE = datasets.Image()


@dataclass
class EncodedDataset:
    """Model inputs and metadata of every sample, in dataset order."""

    flow: torch.Tensor  # (N, 3, flow_size, flow_size)
    texture: torch.Tensor | None  # (N, C, texture_size, texture_size); None for a flow-only dataset
    labels: torch.Tensor  # (N,) int64
    sample_ids: list
    subjects: list  # fold keys "<source>/<subject>"
    datasets: list  # source dataset of each sample
    label_names: list

    def __len__(self):
        return len(self.labels)

    def require(self, modalities):
        """Refuse modalities this dataset has no inputs for (texture on a flow-only dataset)."""
        if "texture" in modalities and self.texture is None:
            raise ValueError(
                "the dataset has no apex images (flow only), so it cannot feed the texture modality: "
                "use a flow-only model (modalities=['flow'], the default)"
            )

    def model_inputs(self, indices, modalities) -> dict:
        """`flow_values` / `texture_values` of the samples at `indices`, for the configured modalities."""
        self.require(modalities)
        tensors = {"flow": self.flow, "texture": self.texture}
        return {f"{m}_values": tensors[m][indices] for m in modalities}


def encode_dataset(dataset, processor, modalities=None) -> EncodedDataset:
    """Run `processor` over `dataset` (precomputed `flow` + `apex`, or `onset` + `apex` columns).

    A dataset whose `apex` images are all missing (None) is flow-only: its `texture` is None, and
    `modalities` (when given) must not include texture.
    """
    first_input = next((name for name in ("flow", "onset") if name in dataset.column_names), None)
    if first_input is None or "apex" not in dataset.column_names:
        raise ValueError(f"dataset needs `flow` + `apex` or `onset` + `apex` columns; it has {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError("the dataset has no samples")
    stored = dataset.select_columns(["sample_id", first_input, "apex"])
    for column in (first_input, "apex"):
        stored = stored.cast_column(column, datasets.Image(decode=False))
    apexes = stored["apex"]
    flow_only = first_input == "flow" and all(apex is None for apex in apexes)
    without_apex = [sample_id for sample_id, apex in zip(stored["sample_id"], apexes) if apex is None]
    if without_apex and not flow_only:
        raise ValueError(f"{len(without_apex)} of {len(dataset)} samples have no apex image (e.g. "
                         f"{without_apex[0]}); a dataset must give an apex for every sample or for none")
    flows, textures = [], []
    for row in stored:
        cells = {first_input: row[first_input], **({} if flow_only else {"apex": row["apex"]})}
        try:
            encoded = processor(**{name: IMAGE.decode_example(cell) for name, cell in cells.items()},
                                return_tensors="np")
        except (ValueError, TypeError, OSError) as error:  # OSError: a file gone, unreadable or truncated
            files = ", ".join(dict.fromkeys(cell["path"] for cell in cells.values() if cell["path"]))
            raise ValueError(f"sample {row['sample_id']}{f' ({files})' if files else ''}: {error}") from error
        flows.append(encoded["flow_values"][0])
        if not flow_only:
            textures.append(encoded["texture_values"][0])
    label_feature = dataset.features["label"]
    columns = dataset.select_columns(["sample_id", "subject", "source_dataset", "label"]).to_dict()
    data = EncodedDataset(
        flow=torch.from_numpy(np.stack(flows)).float(),
        texture=None if flow_only else torch.from_numpy(np.stack(textures)).float(),
        labels=torch.tensor(columns["label"], dtype=torch.long),
        sample_ids=list(columns["sample_id"]),
        subjects=subject_keys(dataset),
        datasets=list(columns["source_dataset"]),
        label_names=list(label_feature.names),
    )
    if modalities is not None:
        data.require(modalities)
    return data
