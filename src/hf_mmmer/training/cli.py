"""The trainer's command line, shared by `examples/train.py` and `hf-mmmer train`.

`train_from_argv` parses and runs (raising on bad input, for callers in Python); `train_command` is the
same behind the command line's error contract (`hf_mmmer.errors`): one line and exit status 1 for a
user error.
"""

import logging
import sys

from transformers import HfArgumentParser

from ..errors import exit_status
from .arguments import DataArguments, ExperimentArguments

DESCRIPTION = ("Leave-one-subject-out (or holdout) training and evaluation of MMMER; every artifact goes to "
               "--output_dir.")


def build_trainer_parser(**kwargs) -> HfArgumentParser:
    return HfArgumentParser((DataArguments, ExperimentArguments), **kwargs)


def train_from_argv(argv=None, prog: str = "train.py"):
    """Parse `argv` (default: `sys.argv[1:]`) and run the experiment; return its metrics."""
    data_args, args = build_trainer_parser(prog=prog, description=DESCRIPTION).parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    from .experiment import run_experiment

    return run_experiment(data_args, args)


def train_command(argv=None, prog: str = "train.py") -> int:
    """`train_from_argv` as a command: its exit status, with a user error reported in one line."""
    return exit_status(prog, train_from_argv, argv, prog)
