#!/usr/bin/env python
"""MEGC2019-style leave-one-subject-out benchmark of the package's recipe on a precomputed folder.

    python benchmarks/megc2019.py --data_dir ../shared/data/megc2019-dev [--seeds 3] [--output results.json] \
        [--ablations] [--baseline] [--processes 2]

Runs the package's own trainer (`examples/train.py`, sharded over `--processes` CPU processes with
torchrun) once per seed with the recipe's defaults, and prints per source dataset and pooled UF1 / UAR
(mean +- std over seeds) and the wall time of each sweep. Every number is the final-epoch model's. The
test-selected numbers (each test subject's best epoch, as many papers report) are printed beside them
for comparison with papers, labelled as such; nothing is ever chosen by them.

`--ablations` adds one-seed sweeps on the same folds: flow + texture (with and without the contrastive
loss), texture only, no whole-map scale, added 4x4 patches, a single scale, and fusion mean / plain
[CLS]. `--baseline` adds two reference points on the same folds: STSTNet on the normalised flow maps with
the research scripts' partner recipe (benchmarks/ststnet.py; `benchmarks/leaderboard.py` runs its
published recipe) and a logistic regression on the raw maps (benchmarks/linear_reference.py).
`--output` writes, per seed, the keys of `metrics.json` plus `"mean"` and `"std"`, each in the shape of
`metrics.json` (`uf1`, `uar`, `accuracy`, `per_dataset`). `--train_args "--sources smic"` runs SMIC's own
LOSO, `--train_args "--protocol lodo"` leaves one dataset out. A folder without `samples.csv` is read as
the public maps layouts (`megc2019_maps`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from hf_mmmer.training.metrics import summaries_mean_std, summarize_predictions
from precomputed_data import dataset_name

REPO = Path(__file__).resolve().parents[1]

# Variants of the recipe (flow only, patches 7/14/28, rollout fusion), each one change away from it.
ABLATIONS = {
    "flow + texture (the paper's two modalities)": 'modalities=["flow","texture"]',
    "flow + texture, no contrastive loss": 'modalities=["flow","texture"],contrastive_weight=0.0',
    "texture only": 'modalities=["texture"]',
    "no whole-map scale (flow p7/14)": "flow_patch_sizes=[7,14]",
    "adds 4x4 patches (flow p4/7/14/28, the previous recipe)": "flow_patch_sizes=[4,7,14,28]",
    "single scale (flow p7)": "flow_patch_sizes=[7]",
    "fusion mean": "fusion=mean",
    "fusion plain [CLS]": "fusion=cls",
}


def run_sweep(data_dir, output_dir, seed, processes, extra_args=()):
    """One LOSO sweep with the package's trainer; returns (metrics, fold records, wall seconds)."""
    command = [sys.executable, str(REPO / "examples" / "train.py")]
    if processes > 1:
        torchrun = Path(sys.executable).with_name("torchrun")
        command = [str(torchrun), "--standalone", "--nproc_per_node", str(processes),  # a free port of its own
                   str(REPO / "examples" / "train.py")]
    command += ["--dataset", dataset_name(data_dir), "--data_dir", str(data_dir), "--output_dir", str(output_dir),
                "--seed", str(seed), "--final_model", "false", "--record_test_curve", "--num_threads", "1",
                *extra_args]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    metrics = json.loads((Path(output_dir) / "metrics.json").read_text())
    folds = [json.loads(p.read_text()) for p in sorted((Path(output_dir) / "folds").glob("*.json"))]
    return metrics, folds, seconds


def test_selected_scores(folds):
    """Scores when each test fold's best epoch is kept: the papers' selection, for comparison only."""
    num_labels = sum(key.startswith("score_") for key in folds[0]["predictions"][0])
    rows = []
    for fold in folds:
        best = max(fold["history"], key=lambda record: record["eval_accuracy"])
        for prediction, record in zip(best["eval_predictions"], fold["predictions"]):
            rows.append({"label": record["label"], "prediction": prediction, "dataset": record["dataset"],
                         "fold": fold["fold"]})
    return summarize_predictions(pd.DataFrame(rows), num_labels)


def table_rows(summary):
    """`[(name, scores)]` of each source dataset and the pooled `"all"` of a summary in metrics.json shape."""
    return [*summary["per_dataset"].items(), ("all", summary)]


def run_references(data_dir, seed, epochs):
    """The field's reference points on the recipe's encoding of the folder, one process, one thread.

    Returns `(baseline, linear)`: the STSTNet CNN's final and test-selected summaries (the research
    scripts' partner recipe, `epochs` epochs), and those of a logistic regression on the raw maps whose
    `C` each fold chooses on its training subjects.
    """
    import torch
    from threadpoolctl import threadpool_limits

    import linear_reference
    import ststnet
    from baseline_training import run_protocol
    from precomputed_data import encode_precomputed, summarize

    torch.set_num_threads(1)
    data, _ = encode_precomputed(data_dir)
    final, selected, folds, seconds = run_protocol(
        lambda: ststnet.STSTNet(len(data.label_names)), data.flow, data.labels, data.subjects, "loso",
        ststnet.PARTNER_RECIPE.with_epochs(epochs), seed)
    baseline = {"seconds": seconds, "final": summarize(data, final, folds),
                "test_selected": summarize(data, selected, folds)}
    with threadpool_limits(1):
        predictions, folds, chosen, seconds = linear_reference.run_protocol(data.flow, data.labels, data.subjects)
    linear = {"seconds": seconds, "chosen_C": {str(c): n for c, n in sorted(chosen.items())},
              **summarize(data, predictions, folds)}
    return baseline, linear


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--output", default=None)
    parser.add_argument("--processes", type=int, default=2, help="CPU processes for the fold shards")
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--baseline_epochs", type=int, default=200)
    parser.add_argument("--work_dir", default=None, help="Where the sweeps write (default: a temporary folder)")
    parser.add_argument("--train_args", default="", help="Extra trainer arguments, e.g. '--epochs 20'")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="megc2019-"))
    extra = args.train_args.split()

    report = {"seeds": {}, "wall_seconds": {}, "test_selected": {}}
    for seed in range(args.seeds):
        metrics, folds, seconds = run_sweep(args.data_dir, work / f"seed{seed}", seed, args.processes, extra)
        report["seeds"][str(seed)] = metrics
        report["wall_seconds"][str(seed)] = round(seconds, 1)
        report["test_selected"][str(seed)] = test_selected_scores(folds)
        print(f"seed {seed}: UF1 {metrics['uf1']:.4f} UAR {metrics['uar']:.4f} ({seconds:.0f} s)", flush=True)
    report["mean"], report["std"] = summaries_mean_std(list(report["seeds"].values()))
    first = report["seeds"]["0"]

    print(f"\nMMMER, {first['protocol']}, final-epoch model, {args.seeds} seed(s), {args.processes} process(es); "
          f"work dir {work}\n")
    print("| data | n | UF1 (mean +- std) | UAR (mean +- std) | accuracy (mean +- std) | "
          "test-selected UF1 / UAR (papers' protocol, not a result) |")
    print("| --- | --- | --- | --- | --- | --- |")
    means, stds = dict(table_rows(report["mean"])), dict(table_rows(report["std"]))
    selected = [dict(table_rows(summary)) for summary in report["test_selected"].values()]
    for name, scores in table_rows(first):
        m, s = means[name], stds[name]
        print(f"| {name} | {scores['n']} | {m['uf1']:.4f} +- {s['uf1']:.4f} | {m['uar']:.4f} +- {s['uar']:.4f} | "
              f"{m['accuracy']:.4f} +- {s['accuracy']:.4f} | {statistics.mean(x[name]['uf1'] for x in selected):.4f}"
              f" / {statistics.mean(x[name]['uar'] for x in selected):.4f} |")
    wall = list(report["wall_seconds"].values())
    print(f"\nwall time per sweep: {statistics.mean(wall):.0f} s (runs: {wall})")

    def save():
        if args.output:
            Path(args.output).write_text(json.dumps(report, indent=2) + "\n")

    save()
    if args.baseline:
        baseline, linear = run_references(args.data_dir, 0, args.baseline_epochs)
        report["baseline"], report["linear_reference"] = baseline, linear
        print(f"\nSTSTNet CNN on the flow maps (partner recipe), {args.baseline_epochs} epochs, seed 0 "
              f"({baseline['seconds']:.0f} s, 1 process)\n")
        print("| data | final-epoch UF1 / UAR | test-selected UF1 / UAR (not a result) |")
        print("| --- | --- | --- |")
        selected = dict(table_rows(baseline["test_selected"]))
        for name, f in table_rows(baseline["final"]):
            t = selected[name]
            print(f"| {name} | {f['uf1']:.4f} / {f['uar']:.4f} | {t['uf1']:.4f} / {t['uar']:.4f} |", flush=True)
        print(f"\nLogistic regression on the raw flow maps, C chosen per fold on its training subjects "
              f"(chosen: {linear['chosen_C']}; {linear['seconds']:.0f} s, 1 process)\n")
        print("| data | UF1 / UAR |\n| --- | --- |")
        for name, scores in table_rows(linear):
            print(f"| {name} | {scores['uf1']:.4f} / {scores['uar']:.4f} |", flush=True)
        save()

    if args.ablations:
        report["ablations"] = {}
        datasets = list(first["per_dataset"])
        print("\nAblations (seed 0, final-epoch model)\n\n| variant | all UF1 / UAR | " + " | ".join(datasets)
              + " | wall s |")
        print("| --- " * (len(datasets) + 3) + "|")

        def row(label, summary, seconds):
            cells = [f"{summary['per_dataset'][n]['uf1']:.4f} / {summary['per_dataset'][n]['uar']:.4f}" for n in datasets]
            print(f"| {label} | {summary['uf1']:.4f} / {summary['uar']:.4f} | {' | '.join(cells)} | {seconds} |",
                  flush=True)

        row("recipe (flow, multi-scale, rollout)", first, report["wall_seconds"]["0"])
        for label, override in ABLATIONS.items():
            out = work / ("ablation-" + "".join(c if c.isalnum() else "_" for c in label))
            metrics, _, seconds = run_sweep(args.data_dir, out, 0, args.processes,
                                            [*extra, "--config_overrides", override])
            report["ablations"][label] = {**metrics, "wall_seconds": round(seconds, 1)}
            row(label, metrics, round(seconds, 1))
            save()


if __name__ == "__main__":
    main()
