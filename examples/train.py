#!/usr/bin/env python
"""Leave-one-subject-out training and evaluation of MMMER.

    accelerate launch examples/train.py --dataset synthetic --output_dir runs/demo
    python examples/train.py --dataset precomputed --data_dir DIR --output_dir OUT [--epochs N] \
        [--folds all|K|subjA,subjB] [--seed S] [--resume] [--overwrite] [--push_to_hub --hub_model_id NAME]

Plain `python` runs on one CPU process with no accelerate config. `accelerate launch` (after
`accelerate config default`) or `ACCELERATE_USE_CPU=true torchrun --nproc_per_node N` shards the
folds over N processes. Writes predictions.csv, metrics.json, results.md, confusion_matrix.png,
training_curves.png and final_model/ to --output_dir. A refused input is one line on stderr, exit 1.
"""

import sys

from hf_mmmer.training.cli import train_command

if __name__ == "__main__":
    sys.exit(train_command())
