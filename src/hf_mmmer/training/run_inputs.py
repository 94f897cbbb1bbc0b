"""The dataset and the image processor a run's arguments name.

The trainer, `hf-mmmer evaluate` and the benchmarks all read data this way, so they see the same
samples through the same processor; this module imports no training code.
"""

from ..configuration_mmmer import MMMERConfig
from ..data import load_me_dataset
from ..image_processing_mmmer import MMMERImageProcessor
from .arguments import DataArguments


def build_processor(config: MMMERConfig, data_args: DataArguments) -> MMMERImageProcessor:
    """The processor whose output sizes match `config` (it is saved with the final model)."""
    return MMMERImageProcessor.from_config(config, do_crop_face=data_args.crop_face)


def load_dataset_for(data_args: DataArguments, seed: int):
    """The `datasets.Dataset` that `data_args` name (`seed` draws the synthetic set and nothing else)."""
    if data_args.dataset == "synthetic":
        return load_me_dataset("synthetic", num_subjects=data_args.num_subjects,
                               samples_per_subject=data_args.samples_per_subject, seed=seed,
                               cache_dir=data_args.cache_dir)
    kwargs = {"config": data_args.dataset_config} if data_args.dataset_config else {}
    return load_me_dataset(data_args.dataset, data_dir=data_args.data_dir, cache_dir=data_args.cache_dir,
                           skip_missing=data_args.skip_missing, **kwargs)
