"""Command-line arguments of the trainer, as dataclasses parsed by `transformers.HfArgumentParser`.

The defaults are the package's recipe; `examples/train.py` and `hf-mmmer train` share this parser so
that `--help` is the same everywhere. Each dataclass checks its values on construction (as
`transformers.TrainingArguments` does), so a bad argument is refused before data are loaded and
before anything is written.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..configuration_mmmer import MMMERConfig
from ..data.checks import require_int
from ..data.synthetic import SyntheticConfig
from ..limits import seed_problem, thread_problem
from .subject_adversary import check_compatible

DATASETS = ("synthetic", "precomputed", "casme2", "smic", "samm", "megc2019", "megc2019_maps")
LR_SCHEDULERS = ("cosine", "constant")
CLASS_WEIGHT_POWERS = {"balanced": 1.0, "sqrt_balanced": 0.5}
"""The class weightings that weight the loss, and the power each raises the balanced weights to.

Power 1 weighs every class equally in the loss, which targets the mean recall (UAR); the macro F1 (UF1)
also counts each rare class's precision, which full weighting lowers by over-predicting it.
"""
CLASS_WEIGHTINGS = ("none", *CLASS_WEIGHT_POWERS, "balanced_sampling")


@dataclass
class DataArguments:
    dataset: str = field(default="synthetic", metadata={"help": f"One of {', '.join(DATASETS)}."})
    data_dir: Optional[str] = field(default=None, metadata={"help": "Root of a licensed dataset or precomputed folder."})
    sources: Optional[str] = field(
        default=None,
        metadata={"help": "Comma list of source datasets to keep (e.g. smic, or casme2,smic), applied before folds "
                          "are planned: --sources smic is SMIC's own LOSO. Default: every source."},
    )
    dataset_config: Optional[str] = field(default=None, metadata={"help": "Builder config, e.g. 3class or 5class."})
    num_subjects: int = field(default=8, metadata={"help": "Synthetic data: number of subjects."})
    samples_per_subject: int = field(default=24, metadata={"help": "Synthetic data: clips per subject."})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Cache of prepared datasets."})
    skip_missing: bool = field(
        default=False,
        metadata={"help": "Skip (with a warning and a count) samples whose files are missing or do not decode, "
                          "instead of stopping with a list of them."},
    )
    crop_face: bool = field(
        default=False, metadata={"help": "Haar face crop before the flow (off for datasets that ship cropped faces)."}
    )

    def __post_init__(self):
        # The builders name a bad --dataset or --data_dir themselves, but only once the run folder is placed.
        if self.dataset == "synthetic":
            SyntheticConfig(num_subjects=self.num_subjects, samples_per_subject=self.samples_per_subject).check_sizes()
            if self.skip_missing:
                raise ValueError("--skip_missing applies to data read from a folder; --dataset synthetic is generated")
            if self.data_dir is not None:  # else a forgotten --dataset would train on generated clips, silently
                raise ValueError(f"--data_dir {self.data_dir} is given, but --dataset is synthetic, which is generated "
                                 f"and reads no folder; name the data's kind: --dataset {' | '.join(DATASETS[1:])}")


PROTOCOLS = ("loso", "lodo", "holdout")


@dataclass
class ExperimentArguments:
    output_dir: str = field(default="runs/demo", metadata={"help": "Where every artifact of the run is written."})
    protocol: str = field(
        default="loso",
        metadata={"help": "loso (one fold per subject), lodo (leave one dataset out: one fold per source dataset, "
                          "trained on the other sources) or holdout (--test_subjects)."},
    )
    folds: str = field(
        default="all",
        metadata={"help": "all, a number K (the first K folds in sorted order), or a comma list of subjects "
                          "(loso) or of sources (lodo)."},
    )
    test_subjects: Optional[str] = field(default=None, metadata={"help": "holdout: comma list of test subjects."})
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "Model config overrides, e.g. 'hidden_size=32,flow_patch_sizes=[7,14],modalities=[\"flow\"]'."},
    )
    epochs: int = field(default=30, metadata={"help": "Training epochs per fold; the final epoch's model is scored."})
    batch_size: int = field(default=32)
    learning_rate: float = field(default=1e-3)
    weight_decay: float = field(default=0.05)
    warmup_ratio: float = field(default=0.1, metadata={"help": "Linear warmup share of steps before cosine decay."})
    lr_scheduler: str = field(
        default="cosine", metadata={"help": "cosine or constant (after warmup).", "choices": list(LR_SCHEDULERS)}
    )
    class_weighting: str = field(
        default="sqrt_balanced",
        metadata={"choices": list(CLASS_WEIGHTINGS),
                  "help": "none; balanced: cross-entropy weights n / (k * count) from each fold's training "
                          "labels; sqrt_balanced: their square roots (a softer weighting); or balanced_sampling: "
                          "each epoch draws its samples with replacement, every class equally likely, and the "
                          "loss is unweighted."},
    )
    ema_decay: float = field(
        default=0.98, metadata={"help": "Per-step exponential moving average of the weights (0 disables); the EMA "
                                       "model is the one scored and saved."})
    flip_prob: float = field(default=0.5, metadata={"help": "Horizontal flip (negates flow u)."})
    max_shift: float = field(default=0.05, metadata={"help": "Affine jitter: shift as a fraction of the side."})
    max_rotation_deg: float = field(default=8.0)
    max_scale: float = field(default=0.05)
    noise_std: float = field(
        default=0.1, metadata={"help": "Gaussian noise on the training flow maps, in the processor's normalised units "
                                      "(0 disables)."})
    mixup_alpha: float = field(default=0.0, metadata={"help": "Mixup Beta(alpha, alpha); 0 disables."})
    subject_adversary: float = field(
        default=0.1, metadata={"help": "Strength of the gradient reversal between the encoder and a head that learns "
                                      "to name each training sample's subject (0 disables; training only, the "
                                      "saved model is unchanged)."})
    seed: int = field(default=0)
    num_threads: Optional[int] = field(
        default=1,
        metadata={"help": "torch intra-op threads per process. One by default: these small models gain little from "
                          "more, and on a busy machine extra threads stall (benchmarks/RESULTS.md); use more processes "
                          "(the folds are sharded over them) to use more cores. 0 keeps torch's default."},
    )
    final_model: bool = field(default=True, metadata={"help": "Train and save a model on all subjects."})
    record_test_curve: bool = field(
        default=False,
        metadata={"help": "Also score the held-out subject after every epoch (for plots and labelled "
                          "comparisons with test-selected papers; never used to choose anything)."},
    )
    resume: bool = field(default=False, metadata={"help": "Skip folds already finished in output_dir."})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace the run in output_dir (only a run of this package holding nothing else; the new "
                          "run is built beside it and swapped in when it has finished)."},
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Upload final_model/ to the Hub (HF_ENDPOINT)."})
    hub_model_id: Optional[str] = field(default=None, metadata={"help": "Repo id for --push_to_hub."})
    hub_private: bool = field(default=False)

    def __post_init__(self):
        require_int(self.epochs, "--epochs")
        require_int(self.batch_size, "--batch_size")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "holdout" and not (self.test_subjects or "").strip(", "):
            raise ValueError("--protocol holdout needs --test_subjects (comma list of subjects)")
        if not self.folds.strip(", ") or (self.folds.strip().isdigit() and int(self.folds) == 0):
            raise ValueError(f"--folds must be all, a positive number or a comma list of subjects, got {self.folds!r}")
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the run in --output_dir and --overwrite replaces it: pass one of them")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (the repo to create or update)")
        if self.push_to_hub and not self.final_model:
            raise ValueError("--push_to_hub uploads final_model/, which --no_final_model leaves out")
        if self.hub_model_id is not None:  # said now, not after every fold has trained
            try:
                validate_repo_id(self.hub_model_id)
            except HFValidationError as error:
                raise ValueError(f"--hub_model_id {self.hub_model_id!r} is not a Hub repo id: {error}") from None
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
        for name in PROBABILITIES:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name} must be between 0 and 1, got {getattr(self, name)}")
        check_compatible(self.mixup_alpha, self.subject_adversary)
        if self.ema_decay == 1:
            raise ValueError("--ema_decay must be below 1 (at 1 the averaged weights never leave their initial "
                             "values); 0 disables the average")
        if problem := seed_problem(self.seed):
            raise ValueError(f"--seed {problem}")
        if self.num_threads is not None and self.num_threads < 0:
            raise ValueError(f"--num_threads must be >= 0 (0 keeps torch's default), got {self.num_threads}")
        if self.num_threads and (problem := thread_problem(self.num_threads)):
            raise ValueError(f"--num_threads {problem}")
        overrides = parse_overrides(self.config_overrides)
        check_config_overrides(overrides)
        try:
            MMMERConfig(**overrides)
        except (TypeError, ValueError) as error:
            raise type(error)(f"--config_overrides: {error}") from None


NON_NEGATIVE = ("learning_rate", "weight_decay", "max_shift", "max_rotation_deg", "max_scale", "noise_std",
                "mixup_alpha", "subject_adversary")
"""Trainer numbers where a negative value would silently mean "off" (or diverge) instead of being refused."""
PROBABILITIES = ("warmup_ratio", "ema_decay", "flip_prob")
"""Trainer numbers that are shares or probabilities, refused outside [0, 1]."""

CONFIG_FIELDS = MMMERConfig.own_fields()
"""The `MMMERConfig` fields `--config_overrides` may set (its own; the classes come from the dataset)."""


def check_config_overrides(overrides: dict):
    """Refuse keys that are not `MMMERConfig` fields, which the config would otherwise keep silently."""
    classes = sorted(overrides.keys() & {"num_labels", "id2label", "label2id"})
    if classes:
        raise ValueError(f"--config_overrides may not set {', '.join(classes)}: the classes are the dataset's")
    unknown = sorted(overrides.keys() - set(CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"--config_overrides: unknown key{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                         f"known keys: {', '.join(CONFIG_FIELDS)}")


def parse_overrides(text: Optional[str]) -> dict:
    """`'a=1,b=[7,14],c="x",d=rollout'` -> `{"a": 1, "b": [7, 14], "c": "x", "d": "rollout"}`.

    Values are JSON where they parse as JSON, else plain strings; commas inside brackets are kept.
    """
    if not text:
        return {}
    items, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{" and 1 or 0
        depth -= char in "]}" and 1 or 0
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    overrides = {}
    for item in filter(None, (i.strip() for i in items)):
        if "=" not in item:
            raise ValueError(f"config override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in overrides:  # the last would win without a word
            raise ValueError(f"config override {key!r} is set twice")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


ADDED_SINCE_RUNS_WERE_RECORDED = {"noise_std": 0.0, "subject_adversary": 0.0, "skip_missing": False}
"""Result-determining arguments added after runs began to record theirs, each with the value that means what
a run recorded without it did: such a run resumes under that value and no other."""


def recorded_signature(run_args: dict) -> dict:
    """A run's recorded `run_args.json`, with the arguments it predates at the values it trained with."""
    return {**ADDED_SINCE_RUNS_WERE_RECORDED, **run_args}


def same_argument(key: str, recorded, current) -> bool:
    """Whether a recorded and a current run argument mean the same: a data folder by where it really is
    (`data/`, `./data` and its absolute path are one folder), config overrides by their parsed values
    (`hidden_size = 16` is `hidden_size=16`), anything else as written."""
    if key == "data_dir" and recorded and current:
        return os.path.realpath(recorded) == os.path.realpath(current)
    if key == "config_overrides":
        try:
            return parse_overrides(recorded) == parse_overrides(current)
        except ValueError:  # a recorded text that no longer parses differs from any that does
            return False
    return recorded == current


def run_signature(data_args: DataArguments, args: ExperimentArguments) -> dict:
    """The arguments that determine a run's results (what `--resume` must find unchanged); the data folder as an
    absolute path, so that a resume from another working folder is checked against the same folder."""
    ignored = {"output_dir", "resume", "overwrite", "push_to_hub", "hub_model_id", "hub_private", "num_threads",
               "cache_dir"}
    signature = {k: v for k, v in {**asdict(data_args), **asdict(args)}.items() if k not in ignored}
    if signature.get("data_dir"):
        signature["data_dir"] = os.path.abspath(signature["data_dir"])
    return signature
