"""Argument parsing and logging set-up shared by `examples/train.py` and `hf-mmmer train`."""

import logging
import sys

from transformers import HfArgumentParser

from .arguments import DataArguments, ExperimentArguments


def build_parser(**kwargs) -> HfArgumentParser:
    return HfArgumentParser((DataArguments, ExperimentArguments), **kwargs)


def main(argv=None, prog: str = "train.py"):
    """Parse `argv` (default: `sys.argv[1:]`) and run the experiment; return its metrics."""
    description = "Leave-one-subject-out (or holdout) training and evaluation of MMMER; every artifact goes to --output_dir."
    data_args, args = build_parser(prog=prog, description=description).parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    from .experiment import run_experiment

    return run_experiment(data_args, args)
