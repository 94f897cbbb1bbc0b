"""The `hf-mmmer` command: `predict` on frames, a clip folder or a video, `train` and `evaluate`.

```
hf-mmmer predict --model DIR (--onset A --apex B | --flow F --apex B | FRAMES_DIR | VIDEO) [--heatmap out.png]
                 [--json] [--top_k K] [--face_crop | --no_face_crop] [--apex_spotting {flow_magnitude,middle}]
                 [--num_threads N]
hf-mmmer spot VIDEO --model DIR [--fps F] [--json] [--plot timeline.png] [--overwrite] [--no_face_crop]
hf-mmmer train ...                      (the trainer's arguments; `hf-mmmer train --help`)
hf-mmmer evaluate --model DIR --dataset NAME [--data_dir DIR] [--output_dir OUT] [--json] [--num_threads N]
```

A saved model is loaded with this package's classes, not with the code files saved next to it, so the
command never runs code from the directory it is pointed at (no `trust_remote_code`).
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from .image_processing_mmmer import MMMERImageProcessor
from .modeling_mmmer import MMMERForMicroExpressionClassification
from .pipeline_mmmer import PROCESSOR_FILE, MicroExpressionClassificationPipeline
from .spotting import APEX_SPOTTING

PROG = "hf-mmmer"
USER_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError, TypeError)
"""Errors caused by what the user passed: reported in one line, without a traceback."""


def load_pipeline(model_dir) -> MicroExpressionClassificationPipeline:
    """A saved model directory (model, config and `preprocessor_config.json`) as a pipeline."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a saved model directory: it has no config.json.")
    model = MMMERForMicroExpressionClassification.from_pretrained(model_dir)
    processor = MMMERImageProcessor.from_pretrained(model_dir) if (model_dir / PROCESSOR_FILE).is_file() else None
    return MicroExpressionClassificationPipeline(model=model, image_processor=processor)


def _sample(args, parser) -> tuple[object, str]:
    """The pipeline input and a description of it, from the one input form given on the command line."""
    pair = args.onset is not None or args.flow is not None
    if pair == (args.input is not None) or (args.onset is not None and args.flow is not None):
        parser.error("give exactly one input: FRAMES_DIR or VIDEO, --onset with --apex, or --flow with --apex")
    if pair:
        if args.apex is None:
            parser.error(f"--{'onset' if args.onset is not None else 'flow'} needs --apex")
        first = "onset" if args.onset is not None else "flow"
        return {first: getattr(args, first), "apex": args.apex}, f"{first} {getattr(args, first)}, apex {args.apex}"
    if args.apex is not None:
        parser.error("--apex goes with --onset or --flow; a clip's apex is spotted")
    return args.input, args.input


def predict(args, parser) -> int:
    sample, description = _sample(args, parser)
    classify = load_pipeline(args.model)
    options = {"return_importance": args.heatmap is not None}
    if args.top_k is not None:
        options["top_k"] = args.top_k
    if args.face_crop is not None:
        options["do_crop_face"] = args.face_crop
    if args.apex_spotting is not None:
        options["apex_spotting"] = args.apex_spotting
    result = classify(sample, **options)
    if args.heatmap is not None:
        from .visualization import save_heatmap

        save_heatmap(result, args.heatmap)
    report = {"input": description, **{key: result[key] for key in ("predictions", "apex_index", "face_crop")}}
    if args.heatmap is not None:
        report["heatmap"] = args.heatmap
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    apex = "" if report["apex_index"] is None else f" (apex spotted at frame {report['apex_index']})"
    print(f"{description}{apex}")
    for entry in report["predictions"]:
        print(f"  {entry['label']:<12} {entry['score']:.3f}")
    if args.heatmap is not None:
        print(f"heatmap: {args.heatmap}")
    return 0


def spot(args, parser) -> int:
    from .video_spotting import recognise, spot_video

    if args.plot is not None:
        plot = Path(args.plot)
        if plot.resolve() == Path(args.video).resolve():
            raise ValueError(f"--plot {plot} is the input video; choose another file.")
        if plot.exists() and not args.overwrite:
            raise ValueError(f"--plot {plot} exists; pass --overwrite to replace it.")
        if not plot.parent.is_dir():
            raise FileNotFoundError(f"--plot {plot}: no such folder {plot.parent}.")
    classify = load_pipeline(args.model)
    result = spot_video(args.video, args.fps, do_crop_face=args.face_crop, progress=True)
    entries = recognise(classify.model, classify.image_processor, args.video, result)
    for start, end in result.gaps:
        print(f"{args.video}: face lost {start:.2f}-{end:.2f} s; skipped", file=sys.stderr)
    if args.plot is not None:
        from .spotting_timeline import save_timeline

        save_timeline(result, entries, args.plot)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print(f"{args.video}: {len(entries)} micro-expression(s) in {result.num_frames / result.fps:.2f} s "
          f"at {result.fps:g} fps")
    for entry in entries:
        print(f"  {entry['onset_time']:8.2f}-{entry['offset_time']:.2f} s  frames {entry['onset']}-{entry['apex']}-"
              f"{entry['offset']}  {entry['label']:<12} {entry['score']:.3f}")
    if args.plot is not None:
        print(f"timeline: {args.plot}")
    return 0


def evaluate(args, parser) -> int:
    from .training.arguments import DataArguments
    from .training.evaluation import evaluate_model, write_evaluation
    from .training.experiment import load_dataset_for

    data_args = DataArguments(
        dataset=args.dataset, data_dir=args.data_dir, dataset_config=args.dataset_config,
        num_subjects=args.num_subjects, samples_per_subject=args.samples_per_subject, cache_dir=args.cache_dir,
    )
    classify = load_pipeline(args.model)
    dataset = load_dataset_for(data_args, args.seed)
    metrics, table = evaluate_model(classify.model, classify.image_processor, dataset, args.batch_size)
    metrics = {**metrics, "model": str(args.model), "dataset": args.dataset}
    if args.output_dir is not None:
        write_evaluation(metrics, table, args.output_dir)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"{args.model} on {args.dataset}:")
    print(f"  {'data':<16} {'n':>5} {'UF1':>7} {'UAR':>7} {'accuracy':>9}")
    for name, scores in [*metrics["per_dataset"].items(), ("all (pooled)", metrics)]:
        print(f"  {name:<16} {scores['n']:>5} {scores['uf1']:>7.4f} {scores['uar']:>7.4f} {scores['accuracy']:>9.4f}")
    if args.output_dir is not None:
        print(f"metrics.json and predictions.csv in {args.output_dir}")
    return 0


def add_threads_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--num_threads", type=int, help="torch threads (default: one per core); 1 is much faster on "
                        "a machine busy with other jobs (benchmarks/RESULTS.md)")


def build_parser() -> argparse.ArgumentParser:
    from .training.arguments import DATASETS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Micro-expression recognition with MMMER: predict, train and evaluate.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{predict,spot,train,evaluate}")

    predict_parser = commands.add_parser(
        "predict", help="classify one sample with a saved model",
        description="Classify one micro-expression sample with a saved model directory and print the class\n"
        "scores, best first. A clip (a folder of frames or a video, onset first) has its apex spotted;\n"
        "the frame used is reported.",
        epilog="examples:\n  hf-mmmer predict --model runs/demo/final_model clip.avi --heatmap clip.png\n"
        "  hf-mmmer predict --model runs/demo/final_model --onset onset.jpg --apex apex.jpg --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict_parser.add_argument("--model", required=True, help="saved model directory (config.json, "
                                "model.safetensors, preprocessor_config.json), e.g. OUT/final_model of a training run")
    predict_parser.add_argument("input", nargs="?",
                                help="a folder of frame images or a video file (a clip, onset first)")
    predict_parser.add_argument("--onset", help="onset frame image (with --apex)")
    predict_parser.add_argument("--flow", help="precomputed flow image, channels u, v, strain in 0..255 (with --apex)")
    predict_parser.add_argument("--apex", help="apex frame image (with --onset), or the face crop of --flow")
    predict_parser.add_argument("--heatmap", metavar="PNG", help="write the apex face with the motion and texture "
                                "importance maps drawn over it to this PNG file")
    predict_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    predict_parser.add_argument("--top_k", type=int, help="print only the K best classes (default: all)")
    face_crop = predict_parser.add_mutually_exclusive_group()
    face_crop.add_argument("--face_crop", dest="face_crop", action="store_const", const=True,
                           help="crop the face (Haar cascade, found on the onset) before the flow")
    face_crop.add_argument("--no_face_crop", dest="face_crop", action="store_const", const=False,
                           help="use the frames as they are (already cropped faces); default for both: as the "
                           "model's saved processor does")
    predict_parser.add_argument("--apex_spotting", choices=list(APEX_SPOTTING),
                                help="how a clip's apex is found (default: as saved with the model)")
    add_threads_argument(predict_parser)
    predict_parser.set_defaults(run=predict)

    spot_parser = commands.add_parser(
        "spot", help="spot and classify the micro-expressions of a long video",
        description="Find the micro-expressions of a long video (onset, apex, offset; blinks, head motion,\n"
        "macro-expressions and lighting flicker rejected) and classify each with a saved model.",
        epilog="example:\n  hf-mmmer spot interview.mp4 --model runs/demo/final_model --plot timeline.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    spot_parser.add_argument("video", help="a video file, or a folder of frame images (with --fps)")
    spot_parser.add_argument("--model", required=True, help="saved model directory")
    spot_parser.add_argument("--fps", type=float, help="frame rate (required when the container has none, and "
                             "for a folder of frames)")
    spot_parser.add_argument("--json", action="store_true", help="print the intervals as a JSON list")
    spot_parser.add_argument("--plot", metavar="PNG", help="write the timeline (motion signal, intervals, labels)")
    spot_parser.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    spot_parser.add_argument("--no_face_crop", dest="face_crop", action="store_false",
                             help="the frames are cropped faces: do not look for a face")
    add_threads_argument(spot_parser)
    spot_parser.set_defaults(run=spot)

    commands.add_parser(
        "train", add_help=False, help="leave-one-subject-out training (all arguments go to the trainer; "
        "see `hf-mmmer train --help`)",
    )

    evaluate_parser = commands.add_parser(
        "evaluate", help="score a saved model on a dataset",
        description="Score a saved model on a dataset: UF1, UAR and accuracy over all samples, per source\n"
        "dataset and per subject. Meaningful only on subjects the model was not trained on.",
        epilog="example:\n  hf-mmmer evaluate --model runs/demo/final_model --dataset precomputed "
        "--data_dir path/with/samples.csv --output_dir eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate_parser.add_argument("--model", required=True, help="saved model directory")
    evaluate_parser.add_argument("--dataset", required=True, choices=DATASETS, help="dataset to score on")
    evaluate_parser.add_argument("--data_dir", help="root of the dataset (every dataset but synthetic)")
    evaluate_parser.add_argument("--dataset_config", help="builder config, e.g. 3class")
    evaluate_parser.add_argument("--output_dir", help="write metrics.json and predictions.csv here")
    evaluate_parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate_parser.add_argument("--batch_size", type=int, default=256, help="samples per forward pass (default 256)")
    evaluate_parser.add_argument("--cache_dir", help="cache of prepared datasets")
    synthetic = evaluate_parser.add_argument_group("synthetic dataset")
    synthetic.add_argument("--num_subjects", type=int, default=8, help="number of subjects (default 8)")
    synthetic.add_argument("--samples_per_subject", type=int, default=24, help="clips per subject (default 24)")
    synthetic.add_argument("--seed", type=int, default=0, help="seed of the rendered clips (default 0)")
    add_threads_argument(evaluate_parser)
    evaluate_parser.set_defaults(run=evaluate)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        # The trainer owns its arguments (and their --help); everything after `train` is its.
        from .training.cli import main as train

        train(argv[1:], prog=f"{PROG} train")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    transformers_logging.disable_progress_bar()  # a weight-loading bar on every call is noise in a command's output
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    try:
        return args.run(args, parser)
    except USER_ERRORS as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 1


__all__ = ["main", "build_parser", "load_pipeline"]

if __name__ == "__main__":
    sys.exit(main())
