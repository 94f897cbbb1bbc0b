#!/usr/bin/env python
"""The honest MEGC2019 leaderboard: the published flow-map models re-run side by side on the same folds.

    python benchmarks/leaderboard.py --data_dir ../shared/data/megc2019-dev [--seeds 3] \
        [--models all|mmmer,linear,ststnet,offapexnet,sssnet,htnet,htnet_dim32] [--protocols loso,lodo] \
        [--epochs ststnet=100,htnet_dim32=20] [--processes 2] [--output leaderboard.json]

Every model trains with its published recipe (optimizer, learning rate, epochs, batch size, input
size; each model file says where it was read) on the same folds (the package's `protocol_folds` and
`held_out_split`) with the same per-fold seeds, and is scored at its FINAL epoch by the package's
`summarize_predictions`. MMMER runs through the package's trainer exactly as `megc2019.py` runs it.
Each test fold's best epoch (the number many papers print) is reported beside, labelled; it chooses
nothing. `--epochs` runs a model at a reduced budget, and the tables always print the epochs used
beside the published ones. Protocols: `loso` (one fold per subject) and `lodo` (one fold per source
dataset, trained on the others). Tables: pooled and per source, UF1 / UAR mean +- std over seeds, and
the wall time of one sweep per model. `--output` is rewritten after every finished run, so a long run
cut short keeps what it finished.

The baselines live beside this script, one file each (ststnet.py, offapexnet.py, sssnet.py, htnet.py,
linear_reference.py), with one shared training loop (baseline_training.py): they are references for
this table, not something the package's users import.
"""

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

import htnet
import linear_reference
import offapexnet
import sssnet
import ststnet
from baseline_training import Recipe, run_protocol
from hf_mmmer.training.metrics import summaries_mean_std
from megc2019 import run_sweep, test_selected_scores
from precomputed_data import encode_precomputed, summarize, unit_maps

PROTOCOLS = ("loso", "lodo")


@dataclass(frozen=True)
class Baseline:
    """A published model: how to build it, its input from the [0, 1] maps, and its published recipe."""

    build: object
    inputs: object
    recipe: Recipe
    note: str = ""


BASELINES = {
    "ststnet": Baseline(ststnet.STSTNet, ststnet.model_inputs, ststnet.RECIPE),
    "offapexnet": Baseline(offapexnet.OffApexNet, offapexnet.model_inputs, offapexnet.RECIPE),
    "sssnet": Baseline(sssnet.SSSNet, sssnet.model_inputs, sssnet.RECIPE),
    "htnet": Baseline(htnet.HTNet, htnet.model_inputs, htnet.RECIPE),
    "htnet_dim32": Baseline(partial(htnet.HTNet, dim=32), htnet.model_inputs, htnet.RECIPE,
                            note="HTNet at 1/8 of its width (dim 32, paper 256), else as published"),
}
MODELS = ("mmmer", "linear", *BASELINES)
WORKER = {}


def parse_budgets(text: str) -> dict:
    """`"ststnet=100,htnet=5"` -> `{"ststnet": 100, "htnet": 5}` (epochs per baseline)."""
    budgets = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, epochs = item.partition("=")
        if name not in BASELINES or not epochs.isdigit() or int(epochs) < 1:
            raise SystemExit(f"--epochs: {item!r} is not BASELINE=EPOCHS with BASELINE one of {list(BASELINES)}")
        budgets[name] = int(epochs)
    return budgets


def run_baseline(job):
    """One (baseline, protocol, seed) sweep in a worker process; returns its record."""
    name, protocol, seed, epochs = job
    torch.set_num_threads(1)
    data, maps = WORKER["data"], WORKER["maps"]
    baseline = BASELINES[name]
    inputs = baseline.inputs(maps)
    final, selected, folds, seconds = run_protocol(
        lambda: baseline.build(len(data.label_names)), inputs, data.labels, data.subjects, protocol,
        baseline.recipe.with_epochs(epochs), seed)
    return {"model": name, "protocol": protocol, "seed": seed, "seconds": round(seconds, 1),
            "final": summarize(data, final, folds), "test_selected": summarize(data, selected, folds)}


def run_linear(protocol):
    """The logistic-regression reference (deterministic, so one run stands for every seed)."""
    data = WORKER["data"]
    with threadpool_limits(1):
        predictions, folds, chosen, seconds = linear_reference.run_protocol(data.flow, data.labels, data.subjects,
                                                                            protocol)
    return {"model": "linear", "protocol": protocol, "seed": 0, "seconds": round(seconds, 1),
            "final": summarize(data, predictions, folds), "chosen_C": {str(c): n for c, n in sorted(chosen.items())}}


def run_mmmer(data_dir, work, protocol, seed, processes, train_args):
    """One sweep of the package's trainer with the recipe's defaults (as megc2019.py runs it)."""
    metrics, folds, seconds = run_sweep(data_dir, work / f"mmmer-{protocol}-seed{seed}", seed, processes,
                                        ["--protocol", protocol, *train_args])
    return {"model": "mmmer", "protocol": protocol, "seed": seed, "seconds": round(seconds, 1),
            "final": {k: metrics[k] for k in ("uf1", "uar", "accuracy", "n", "per_dataset", "per_fold")},
            "test_selected": test_selected_scores(folds)}


def aggregate(runs: list) -> dict:
    """Per model and protocol: mean / std (metrics.json shape) of the final and test-selected scores."""
    table = {}
    for run in runs:
        table.setdefault(run["protocol"], {}).setdefault(run["model"], []).append(run)
    summary = {}
    for protocol, models in table.items():
        for model, records in models.items():
            mean, std = summaries_mean_std([r["final"] for r in records])
            entry = {"seeds": sorted(r["seed"] for r in records), "mean": mean, "std": std,
                     "wall_seconds": statistics.mean(r["seconds"] for r in records)}
            if "test_selected" in records[0]:
                entry["test_selected_mean"] = summaries_mean_std([r["test_selected"] for r in records])[0]
            summary.setdefault(protocol, {})[model] = entry
    return summary


def budget_label(model: str, budgets: dict) -> str:
    if model == "mmmer":
        return "trainer defaults"
    if model == "linear":
        return "C per fold (inner CV)"
    published = BASELINES[model].recipe.epochs
    used = budgets.get(model, published)
    return f"{used} / {published}" + ("" if used == published else " (reduced)")


def print_tables(summary: dict, budgets: dict):
    for protocol, models in summary.items():
        sources = list(next(iter(models.values()))["mean"]["per_dataset"])
        print(f"\n{protocol.upper()}, final epoch, UF1 / UAR mean +- std over seeds\n")
        print("| model | seeds | epochs used / published | pooled UF1 | pooled UAR | "
              + " | ".join(f"{s} UF1" for s in sources)
              + " | test-selected pooled UF1 (papers' protocol, not a result) | wall s per sweep |")
        print("| --- " * (len(sources) + 7) + "|")
        for model, entry in models.items():
            m, s = entry["mean"], entry["std"]
            cells = [f"{m['per_dataset'][x]['uf1']:.4f} +- {s['per_dataset'][x]['uf1']:.4f}" for x in sources]
            selected = entry.get("test_selected_mean")
            print(f"| {model} | {len(entry['seeds'])} | {budget_label(model, budgets)} | "
                  f"{m['uf1']:.4f} +- {s['uf1']:.4f} | {m['uar']:.4f} +- {s['uar']:.4f} | {' | '.join(cells)} | "
                  f"{'-' if selected is None else format(selected['uf1'], '.4f')} | {entry['wall_seconds']:.0f} |",
                  flush=True)
        for model in models:
            if model in BASELINES and BASELINES[model].note:
                print(f"\n{model}: {BASELINES[model].note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default="all", help=f"all, or a comma list of {', '.join(MODELS)}")
    parser.add_argument("--protocols", default="loso,lodo", help="comma list of loso, lodo")
    parser.add_argument("--epochs", default="", help="reduced budgets, e.g. ststnet=100,htnet_dim32=20")
    parser.add_argument("--processes", type=int, default=2, help="CPU processes (trainer shards, baseline runs)")
    parser.add_argument("--train_args", default="", help="extra trainer arguments for MMMER, e.g. '--epochs 2'")
    parser.add_argument("--work_dir", default=None, help="where the trainer's sweeps write (default: a temp dir)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    models = list(MODELS) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [m for m in models if m not in MODELS] + [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise SystemExit(f"unknown models or protocols {unknown}; models: {list(MODELS)}, protocols: {list(PROTOCOLS)}")
    if args.output and Path(args.output).exists():
        raise SystemExit(f"--output {args.output} already exists; choose another file (earlier results are kept)")
    budgets = parse_budgets(args.epochs)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="leaderboard-"))
    started = time.perf_counter()

    torch.set_num_threads(1)
    data, processor = encode_precomputed(args.data_dir)
    WORKER.update(data=data, maps=unit_maps(data, processor))
    runs = []

    def record(run):
        runs.append(run)
        print(f"{run['model']} {run['protocol']} seed {run['seed']}: UF1 {run['final']['uf1']:.4f} "
              f"UAR {run['final']['uar']:.4f} ({run['seconds']:.0f} s)", flush=True)
        if args.output:
            report = {"command_args": vars(args), "budgets": budgets, "runs": runs, "summary": aggregate(runs),
                      "wall_seconds": round(time.perf_counter() - started, 1)}
            Path(args.output).write_text(json.dumps(report, indent=2) + "\n")

    for protocol in protocols:
        if "mmmer" in models:
            for seed in range(args.seeds):
                record(run_mmmer(args.data_dir, work, protocol, seed, args.processes, args.train_args.split()))
        if "linear" in models:
            record(run_linear(protocol))
    jobs = [(name, protocol, seed, budgets.get(name)) for protocol in protocols for name in models
            if name in BASELINES for seed in range(args.seeds)]
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        for run in pool.imap_unordered(run_baseline, jobs):
            record(run)
    print_tables(aggregate(runs), budgets)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s; work dir {work}")


if __name__ == "__main__":
    main()
