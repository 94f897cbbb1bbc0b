"""A run's record of its data, so that `--resume` never mixes results computed on different data.

A resumed run reuses its finished folds and final model; if the samples, their labels or their images
changed since, those would score old predictions against new labels. The fingerprint keeps, per sample
(keyed `source/sample_id`), its class name and a hash of its encoded model inputs (what the folds were
trained and tested on), so a changed dataset is refused and the change named.
"""

import hashlib
from collections import Counter, defaultdict

from ..data.checks import listing
from .encoding import EncodedDataset


def sample_keys(data: EncodedDataset) -> list:
    """`source/sample_id` of each sample; a repeated key gets `#2`, `#3`, ... so none is lost."""
    seen = Counter()
    keys = []
    for source, sample_id in zip(data.datasets, data.sample_ids):
        key = f"{source}/{sample_id}"
        seen[key] += 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def content_digest(data: EncodedDataset, index: int, modalities=("flow", "texture")) -> str:
    """A hash of sample `index`'s encoded inputs of `modalities` (the texture is None for flow-only data)."""
    digest = hashlib.sha256()
    for modality in modalities:
        values = data.flow if modality == "flow" else data.texture
        if values is not None:
            digest.update(values[index].numpy().tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(data: EncodedDataset) -> dict:
    """`{"classes": [...], "samples": {key: {"label": class name, "content": hash of its inputs}}}`."""
    samples = {key: {"label": data.label_names[int(data.labels[index])], "content": content_digest(data, index)}
               for index, key in enumerate(sample_keys(data))}
    return {"classes": list(data.label_names), "samples": samples}


def check_no_twins(data: EncodedDataset, modalities) -> None:
    """Refuse samples whose inputs to the model (`modalities`: a flow-only model never reads the apex face)
    are identical: one sample under two names (a copied file, a clip folder linked under another subject)
    would be trained on while its twin is tested, or weigh twice."""
    by_content = defaultdict(list)
    for index, key in enumerate(sample_keys(data)):
        by_content[content_digest(data, index, modalities)].append(key)
    twins = sorted(" = ".join(keys) for keys in by_content.values() if len(keys) > 1)
    if twins:
        raise ValueError(f"{len(twins)} group(s) of samples have identical inputs, so one sample is there under two "
                         f"names: {listing(twins)}; remove the copies")


def is_fingerprint(record) -> bool:
    """Whether `record` has the shape `data_fingerprint` gives (as its file holds it)."""
    return (isinstance(record, dict) and isinstance(record.get("classes"), list)
            and isinstance(record.get("samples"), dict)
            and all(isinstance(sample, dict) and {"label", "content"} <= sample.keys()
                    for sample in record["samples"].values()))


def data_changes(recorded: dict, current: dict) -> list:
    """What differs between two fingerprints, one phrase per kind of change (empty when identical)."""
    changes = []
    if recorded["classes"] != current["classes"]:
        changes.append(f"classes {recorded['classes']} -> {current['classes']}")
    old, new = recorded["samples"], current["samples"]
    added, removed = new.keys() - old.keys(), old.keys() - new.keys()
    if added:
        changes.append(f"{len(added)} samples added ({listing(sorted(added))})")
    if removed:
        changes.append(f"{len(removed)} samples removed ({listing(sorted(removed))})")
    common = sorted(old.keys() & new.keys())
    relabelled = [f"{k}: {old[k]['label']} -> {new[k]['label']}" for k in common if old[k]["label"] != new[k]["label"]]
    if relabelled:
        changes.append(f"labels changed for {len(relabelled)} samples ({listing(relabelled)})")
    altered = [k for k in common if old[k]["content"] != new[k]["content"]]
    if altered:
        changes.append(f"images or their encoding changed for {len(altered)} samples ({listing(altered)})")
    return changes
