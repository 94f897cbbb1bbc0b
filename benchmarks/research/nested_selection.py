#!/usr/bin/env python
"""Choosing a recipe without the test subjects: nested leave-one-subject-out (or -dataset-out) over candidates.

    python -m benchmarks.research.nested_selection --data_dir ../shared/data/megc2019-dev \
        --candidates recipe,with_4x4 [--protocol loso|lodo] [--inner_folds 3] [--seed 0] [--processes 2]

The package's recipe was picked among candidates by their pooled LOSO score on the same subjects it
is reported on: a recipe-level use of the test labels (benchmarks/RESULTS.md says which choices).
This script measures what that costs. For every held-out fold (a subject in LOSO, a source in LODO) it
scores each candidate by grouped `--inner_folds`-fold cross-validation over the fold's *training*
subjects only (pooled UF1 of the inner predictions), keeps the winner (ties go to the earlier
candidate), and scores the winner's model, trained on all training subjects, on the held-out fold. The
table prints each candidate's own score, the candidate a reader of that table would pick (selected on
the test subjects: not a result) and the nested score (selected on training subjects only: an honest
estimate of the recipe *and* its selection). Candidates are `recipe_ideas.py` ideas that change the
config, the trainer's arguments or the model (its `variant_factory`: more scales, input channels,
overlapping patches); every model is the package's `train_fold_model` at the final epoch (EMA), with
the fold seeds `recipe_ideas.py` uses, so each candidate's own row reproduces that script's.
"""

import argparse
import multiprocessing
import time
from collections import Counter

import numpy as np
import torch

from benchmarks.research.recipe_ideas import (IDEAS, MODEL_CHANGES, idea_setup, inner_splits, largest_first,
                                              load_data, model_factory_of, pool_scores, uf1_uar)
from hf_mmmer.data import held_out_split
from hf_mmmer.data.loso import protocol_folds
from hf_mmmer.training.evaluation import predict_probabilities
from hf_mmmer.training.fold_training import fold_seed, train_fold_model
from hf_mmmer.training.metrics import classification_scores

WORKER = {}


def candidate_setup(name: str, epochs=None):
    """`(MMMERConfig, FoldRecipe, model_factory)` of a `recipe_ideas` idea that changes only the config, the
    trainer's arguments or the model; `epochs` (for smoke tests) overrides the recipe's."""
    _, change = IDEAS[name]
    if set(change) - {"config", "recipe", *MODEL_CHANGES}:
        raise ValueError(f"candidate {name!r} changes more than the config, the trainer's arguments or the model")
    config, recipe = idea_setup(change, epochs)
    return config, recipe, model_factory_of(change)


def init_worker(data, flow_zero, candidates, seed, inner_folds, epochs, folds):
    torch.set_num_threads(1)
    WORKER.update(data=data, flow_zero=flow_zero, seed=seed, inner_folds=inner_folds, folds=folds,
                  setups={name: candidate_setup(name, epochs) for name in candidates})


def run_task(task):
    """Train one candidate on one split; return `(task, indices predicted, predicted labels)`.

    `task` is `(fold, candidate, inner)`: `inner` None trains on all of the fold's training subjects and
    predicts the held-out fold, an integer trains on that inner fold's training part and predicts its
    validation subjects.
    """
    fold, candidate, inner = task
    data = WORKER["data"]
    train, test = held_out_split(data.subjects, WORKER["folds"][fold])
    if inner is None:
        fit, predict, fold_name = train, test, fold
    else:
        fit, predict = inner_splits(np.asarray(data.subjects), train, WORKER["inner_folds"])[inner]
        fold_name = f"{fold}/inner{inner}"
    config, recipe, model_factory = WORKER["setups"][candidate]
    model, _ = train_fold_model(config, data, fit, recipe, fold_seed(WORKER["seed"], fold_name), WORKER["flow_zero"],
                                model_factory=model_factory)
    return task, predict, predict_probabilities(model, data, predict).argmax(-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--candidates", default="recipe,with_4x4", help="Comma list of recipe_ideas.py ideas.")
    parser.add_argument("--protocol", default="loso", choices=["loso", "lodo"],
                        help="Hold out one subject (loso) or one source dataset (lodo) per outer fold.")
    parser.add_argument("--inner_folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="Override the recipe's epochs (smoke tests).")
    args = parser.parse_args()
    candidates = [name.strip() for name in args.candidates.split(",") if name.strip()]
    for name in candidates:
        if name not in IDEAS:
            parser.error(f"unknown candidate {name!r}; choose from {list(IDEAS)}")
        candidate_setup(name)  # fails early on an idea that changes more than the config, trainer or model
    if len(candidates) < 2 or args.inner_folds < 2:
        parser.error("nested selection needs at least two candidates and two inner folds")

    started = time.perf_counter()
    data, flow_zero = load_data(args.data_dir)
    subjects = np.asarray(data.subjects)
    labels = data.labels.numpy()
    folds = protocol_folds(data.subjects, args.protocol)
    held_out = largest_first(folds, subjects)
    tasks = [(f, c, inner) for f in held_out for c in candidates for inner in [None, *range(args.inner_folds)]]
    context = multiprocessing.get_context("fork")
    with context.Pool(args.processes, initializer=init_worker,
                      initargs=(data, flow_zero, candidates, args.seed, args.inner_folds, args.epochs, folds)) as pool:
        results = pool.map(run_task, tasks, chunksize=1)

    outer = {name: np.full(len(data), -1) for name in candidates}
    inner_predictions = {}
    for (fold, candidate, inner), indices, predicted in results:
        if inner is None:
            outer[candidate][indices] = predicted
        else:
            inner_predictions.setdefault((fold, candidate), []).append((indices, predicted))
    nested, choices, chosen_by_fold = np.full(len(data), -1), Counter(), {}
    for fold in held_out:
        inner_uf1 = {}
        for candidate in candidates:
            indices, predicted = map(np.concatenate, zip(*inner_predictions[(fold, candidate)]))
            inner_uf1[candidate] = classification_scores(labels[indices], predicted, len(data.label_names))["uf1"]
        chosen = chosen_by_fold[fold] = max(candidates, key=lambda c: (inner_uf1[c], -candidates.index(c)))
        choices[chosen] += 1
        test = np.isin(subjects, folds[fold])
        nested[test] = outer[chosen][test]
    seconds = time.perf_counter() - started

    sources = sorted(set(data.datasets))
    print(f"Nested {args.protocol.upper()}, seed {args.seed}, {args.inner_folds} inner folds, {args.processes} "
          f"process(es), {len(tasks)} models in {seconds:.0f} s; UF1 / UAR (in LODO a source's column is the fold "
          "that held it out)\n")
    print("| selection | all | " + " | ".join(sources) + " |")
    print("| --- " * (len(sources) + 2) + "|")
    rows = {f"candidate `{name}`": outer[name] for name in candidates}
    by_test = max(candidates, key=lambda c: classification_scores(labels, outer[c], len(data.label_names))["uf1"])
    rows[f"best candidate by the test subjects' pooled UF1 (`{by_test}`; not a result)"] = outer[by_test]
    rows["nested: chosen per fold on its training subjects"] = nested
    for name, predictions in rows.items():
        scores = pool_scores(data, predictions)
        print(f"| {name} | {uf1_uar(scores['all'])} | " + " | ".join(uf1_uar(scores[s]) for s in sources) + " |")
    print("\nFolds choosing each candidate: " + ", ".join(f"{c} {choices[c]}" for c in candidates))
    if args.protocol == "lodo":
        print("Chosen per held-out source: " + ", ".join(f"{fold} {chosen_by_fold[fold]}" for fold in held_out))


if __name__ == "__main__":
    main()
