"""A whole experiment: data -> processor -> LOSO, LODO (or holdout) folds -> metrics, artifacts, final model.

Folds are independent, so with several processes (`accelerate launch`, `torchrun`) each process trains
every N-th fold and the per-fold results are gathered on the main process: N processes finish a sweep
about N times faster. A run with a single fold and several processes trains it data-parallel instead.
Each finished fold is written atomically to `output_dir/folds/`, which is what `--resume` reads.
Everything that can be refused (arguments, output folder, data, config, fold plan, resume's match) is
checked before the first file is written; the output folder's rules are `run_folder`'s.
"""

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object
from tqdm.auto import tqdm

from ..atomic_files import write_atomically
from ..configuration_mmmer import MMMERConfig
from ..data import held_out_split, select_subjects, subject_keys
from ..data.loso import protocol_folds, select_sources
from .arguments import (
    DataArguments, ExperimentArguments, parse_overrides, recorded_signature, run_signature, same_argument,
)
from .data_fingerprint import check_no_twins, data_changes, data_fingerprint, is_fingerprint
from .encoding import EncodedDataset, encode_dataset
from .evaluation import predict_probabilities
from .export import save_model_directory
from .fold_training import FoldRecipe, fold_seed, train_fold_model
from .metrics import classification_scores, summarize_predictions
from .reporting import (
    plot_confusion_matrix,
    plot_training_curves,
    prediction_rows,
    predictions_table,
    results_markdown,
    write_json,
)
from .run_folder import RUN_ARGS_FILE, finish_run, place_run, read_manifest, read_record, record_owned, start_run
from .run_inputs import build_processor, load_dataset_for

logger = logging.getLogger(__name__)
FOLDS_DIR = "folds"
DATA_FILE = "data_fingerprint.json"
ARTIFACTS = ("predictions.csv", "metrics.json", "timing.json", "results.md", "confusion_matrix.png",
             "training_curves.png")


def build_model_config(args: ExperimentArguments, label_names) -> MMMERConfig:
    """The recipe's `MMMERConfig` with `--config_overrides` applied and the dataset's class names."""
    overrides = parse_overrides(args.config_overrides)
    return MMMERConfig(**{**overrides, "id2label": dict(enumerate(label_names))})


def comma_list(text: str) -> list:
    """`"a, b,,c"` -> `["a", "b", "c"]`."""
    return [item.strip() for item in text.split(",") if item.strip()]


def restrict_sources(dataset, sources: str | None):
    """The rows of `dataset` from the comma-listed `sources` (all rows when None), before folds are
    planned, so `--sources smic` runs SMIC's own LOSO (one fold per SMIC subject)."""
    if sources is None:
        return dataset
    try:
        return dataset.select(select_sources(subject_keys(dataset), comma_list(sources)))
    except ValueError as error:
        raise ValueError(f"--sources: {error}") from None


def plan_folds(data: EncodedDataset, args: ExperimentArguments) -> dict:
    """`{fold name: test indices}` for the chosen protocol and folds.

    `loso` folds are subjects, named by fold key (`casme2/sub01`) or by a bare id that one source owns
    (`sub01`); `lodo` folds are source datasets (`casme2`), each holding out all its subjects. Every
    fold's rows come from `held_out_split`, the one split every protocol uses.
    """
    keys = data.subjects
    if args.protocol == "holdout":  # ExperimentArguments checked that --test_subjects is given
        return {"holdout": held_out_split(keys, select_subjects(keys, comma_list(args.test_subjects)))[1]}
    folds = protocol_folds(keys, args.protocol)
    if args.folds == "all":
        chosen = list(folds)
    elif args.folds.isdigit():
        if int(args.folds) > len(folds):
            raise ValueError(f"--folds {args.folds}: the data have only {len(folds)} {args.protocol} folds")
        chosen = list(folds)[: int(args.folds)]
    elif args.protocol == "loso":
        chosen = select_subjects(keys, comma_list(args.folds))
    else:
        chosen = comma_list(args.folds)
        unknown = [name for name in chosen if name not in folds]
        if unknown:
            raise ValueError(f"--folds: unknown sources {unknown} for --protocol lodo; known sources: {list(folds)}")
    return {fold: held_out_split(keys, folds[fold])[1] for fold in chosen}


def fold_file(output_dir: Path, fold: str) -> Path:
    return output_dir / FOLDS_DIR / (fold.replace("/", "__") + ".json")


def is_fold_result(record, fold: str) -> bool:
    """Whether `record` is what `run_fold` returned for `fold` (as its file holds it)."""
    return (isinstance(record, dict) and record.get("fold") == fold and isinstance(record.get("predictions"), list)
            and all(isinstance(row, dict) for row in record["predictions"]) and "history" in record
            and "seconds" in record)


def check_resumable(output_dir: Path, signature: dict, fingerprint: dict):
    """Refuse to resume a run whose result-determining arguments or data differ from this one's.

    Otherwise the pooled metrics would mix two recipes, or score finished folds' predictions against
    changed labels.
    """
    args_file = output_dir / RUN_ARGS_FILE
    if not args_file.is_file():
        raise ValueError(f"--resume refused: the run in {output_dir} has no {RUN_ARGS_FILE}, so its arguments cannot "
                         "be checked; start a new run")
    previous = recorded_signature(read_record(args_file, lambda r: isinstance(r, dict), "a record of arguments"))
    changed = {k: (previous.get(k), v) for k, v in signature.items() if not same_argument(k, previous.get(k), v)}
    if changed:
        raise ValueError(f"--resume with different arguments than the run in {output_dir}: "
                         + ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items()))
    recorded = output_dir / DATA_FILE
    if not recorded.is_file():
        raise ValueError(f"--resume refused: the run in {output_dir} has no {DATA_FILE}, so its data cannot be "
                         "checked; start a new run")
    changes = data_changes(read_record(recorded, is_fingerprint, "a data fingerprint"), fingerprint)
    if changes:
        raise ValueError(f"--resume refused: the data differ from the run in {output_dir}: {'; '.join(changes)}. "
                         "Start a new run (another --output_dir, or --overwrite)")


def run_fold(fold, test_indices, data, config, recipe, args, flow_zero, accelerator, progress):
    """Train without the fold's subject, predict it, and return the fold's result record."""
    started = time.perf_counter()
    train_indices, _ = held_out_split(data.subjects, {data.subjects[i] for i in test_indices})
    model, history = train_fold_model(
        config, data, train_indices, recipe, fold_seed(args.seed, fold), flow_zero,
        eval_indices=test_indices if args.record_test_curve else None, progress=progress, accelerator=accelerator,
        name=f"fold {fold}",
    )
    scores = predict_probabilities(model, data, test_indices)
    predictions = prediction_rows(data, test_indices, scores, [fold] * len(test_indices))
    return {"fold": fold, "predictions": predictions, "history": history,
            "seconds": round(time.perf_counter() - started, 2)}


def run_experiment(data_args: DataArguments, args: ExperimentArguments) -> dict:
    """Run the experiment the arguments describe; return the metrics (main process) or None."""
    # A single-modality model never uses its cross-modal projections, which data-parallel training must be told.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    placement = place_run(args.output_dir, args.resume, args.overwrite, {"--data_dir": data_args.data_dir})
    dataset = restrict_sources(load_dataset_for(data_args, args.seed), data_args.sources)
    label_names = dataset.features["label"].names
    config = build_model_config(args, label_names)
    processor = build_processor(config, data_args)
    data = encode_dataset(dataset, processor, config.modalities)
    flow_zero = processor.flow_zero_level()
    recipe = FoldRecipe.from_arguments(args)
    folds = plan_folds(data, args)
    signature, fingerprint = run_signature(data_args, args), data_fingerprint(data)
    check_no_twins(data, config.modalities)
    output_dir = placement.work_dir  # a hidden sibling while the run replaces another, swapped in at the end
    if args.resume and read_manifest(output_dir) is not None:
        check_resumable(output_dir, signature, fingerprint)
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one writes to it
    if accelerator.is_main_process:
        folds_owned = [fold_file(output_dir, fold).relative_to(output_dir).as_posix() for fold in folds]
        start_run(placement, {RUN_ARGS_FILE: signature, DATA_FILE: fingerprint}, [*ARTIFACTS, *folds_owned])
    accelerator.wait_for_everyone()
    fold_names = list(folds)
    data_parallel = len(fold_names) < accelerator.num_processes
    mine = fold_names if data_parallel else fold_names[accelerator.process_index :: accelerator.num_processes]

    results = []
    show = accelerator.is_local_main_process
    with tqdm(total=len(mine), desc="folds", disable=not show) as fold_bar:
        for fold in mine:
            path = fold_file(output_dir, fold)
            if args.resume and path.exists():
                results.append(read_record(path, lambda r, fold=fold: is_fold_result(r, fold), f"fold {fold}'s result"))
                fold_bar.update(1)
                continue
            with tqdm(total=recipe.epochs, desc=f"{fold} epochs", leave=False, disable=not show) as epoch_bar:
                result = run_fold(fold, folds[fold], data, config, recipe, args, flow_zero,
                                  accelerator if data_parallel else None, epoch_bar)
            if accelerator.is_main_process or not data_parallel:
                write_json(path, result)
            scores = classification_scores([p["label"] for p in result["predictions"]],
                                           [p["prediction"] for p in result["predictions"]], config.num_labels)
            logger.info("fold %s: n=%d accuracy=%.3f uf1=%.3f (%.1f s)", fold, scores["n"], scores["accuracy"],
                        scores["uf1"], result["seconds"])
            results.append(result)
            fold_bar.update(1)
    if not data_parallel:
        results = gather_object(results)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return None
    results = sorted({r["fold"]: r for r in results}.values(), key=lambda r: r["fold"])

    table = predictions_table(results, label_names)
    metrics = {**summarize_predictions(table, config.num_labels), "protocol": args.protocol, "seed": args.seed,
               "epochs": args.epochs, "num_folds": len(results)}
    write_atomically(output_dir / "predictions.csv", table.to_csv(index=False))
    write_json(output_dir / "metrics.json", metrics)
    # Timings vary run to run, so they stay out of metrics.json (which a resumed run must reproduce).
    write_json(output_dir / "timing.json", {"fold_seconds": {r["fold"]: r["seconds"] for r in results}})
    title = f"MMMER on {data_args.dataset}"
    write_atomically(output_dir / "results.md", results_markdown(metrics, title))
    plot_confusion_matrix(table, label_names, output_dir / "confusion_matrix.png")
    plot_training_curves(results, output_dir / "training_curves.png")
    print(results_markdown(metrics, title))

    if args.final_model:
        final_dir = output_dir / "final_model"
        if not (args.resume and (final_dir / "model.safetensors").exists()):
            with tqdm(total=recipe.epochs, desc="final model epochs", leave=False) as epoch_bar:
                model, _ = train_fold_model(config, data, np.arange(len(data)), recipe, fold_seed(args.seed, "final"),
                                            flow_zero, progress=epoch_bar, name="final model")
            save_model_directory(model, processor, final_dir, metrics=metrics, dataset_name=data_args.dataset,
                                 training_args={**asdict(data_args), **asdict(args)},
                                 model_name=args.hub_model_id or f"mmmer-{data_args.dataset}")
            record_owned(output_dir, [path.relative_to(output_dir).as_posix() for path in final_dir.rglob("*")])
    finish_run(placement)
    if args.final_model and args.push_to_hub:
        from .hub import push_folder_to_hub

        final_dir = placement.output_dir / "final_model"
        url = push_folder_to_hub(final_dir, args.hub_model_id, private=args.hub_private)
        logger.info("pushed %s to %s", final_dir, url)
    return metrics
