"""The `hf-mmmer` command: `predict` on frames, a clip folder or a video, `train` and `evaluate`.

```
hf-mmmer predict --model DIR (--onset A --apex B | --flow F --apex B | FRAMES_DIR | VIDEO) [--heatmap out.png]
                 [--heatmap_view {motion,attention}] [--overwrite] [--json] [--top_k K] [--face_crop | --no_face_crop]
                 [--apex_spotting {flow_magnitude,middle}] [--num_threads N]
hf-mmmer spot VIDEO --model DIR [--fps F] [--json] [--plot timeline.png] [--overwrite] [--no_face_crop]
hf-mmmer train ...                      (the trainer's arguments; `hf-mmmer train --help`)
hf-mmmer evaluate --model DIR --dataset NAME [--data_dir DIR] [--output_dir OUT [--overwrite]] [--json]
                  [--num_threads N]
hf-mmmer demo --model DIR [--port P] [--host H]  |  hf-mmmer demo --model DIR --export_space OUT
```

A saved model is loaded with this package's classes, not with the code files saved next to it, so the
command never runs code from the directory it is pointed at (no `trust_remote_code`). Bad input is one
line on stderr and exit status 1 (`hf_mmmer.errors`); every output is checked before the work starts.
"""

import argparse
import json
import math
import os
import socket
import sys
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from .errors import exit_status
from .image_processing_mmmer import MMMERImageProcessor
from .limits import seed_problem, thread_problem
from .modeling_mmmer import MMMERForMicroExpressionClassification
from .paths import is_within
from .pipeline_mmmer import PROCESSOR_FILE, MicroExpressionClassificationPipeline
from .spotting import APEX_SPOTTING
from .visualization import HEATMAP_VIEWS, save_heatmap

PROG = "hf-mmmer"


def load_pipeline(model_dir) -> MicroExpressionClassificationPipeline:
    """A saved model directory (model, config and `preprocessor_config.json`) as a pipeline."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"no model folder at {model_dir}")
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
        if args.onset is not None and args.apex is None:
            parser.error("--onset needs --apex")
        first = "onset" if args.onset is not None else "flow"
        if args.apex is None:  # a flow map alone: for flow-only models (the public STSTNet maps have no apex)
            return {"flow": args.flow}, f"flow {args.flow}"
        return {first: getattr(args, first), "apex": args.apex}, f"{first} {getattr(args, first)}, apex {args.apex}"
    if args.apex is not None:
        parser.error("--apex goes with --onset or --flow; a clip's apex is spotted")
    return args.input, args.input


def check_image_output(option: str, path, inputs, overwrite: bool):
    """Refuse an image output (`--heatmap`, `--plot`) that is an input (by name, symbolic link or hard link),
    lies inside an input folder (it would become a frame of that clip; the model folder counts, whose stray
    file would block replacing its run), exists without consent, or is not a PNG in an existing folder. The
    writers replace the name atomically, so a link is never written through."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"{option} {path} must name a .png file")
    if target.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; name a .png file")
    for given in filter(None, inputs):
        same_file = target.exists() and Path(given).exists() and os.path.samefile(target, given)
        if same_file or is_within(target, given):
            raise FileExistsError(f"{option} {path} would write over or into the input {given}; name another file")
    if os.path.lexists(target) and not overwrite:  # a link, even a dangling one, is the user's
        raise FileExistsError(f"{option} {path} exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{option} {path}: no such folder {target.parent}")
    if not os.access(target.parent, os.W_OK | os.X_OK):  # said now, not after the model has run
        raise PermissionError(f"{option} {path}: the folder {target.parent} is not writable")


def non_finite_fields(value, path: str = "") -> list:
    """Paths (`predictions[0].score`) of the NaN or infinite numbers in a nested result."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, dict):
        return [bad for key, item in value.items() for bad in non_finite_fields(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, (list, tuple)):
        return [bad for index, item in enumerate(value) for bad in non_finite_fields(item, f"{path}[{index}]")]
    return []


def check_finite(report: dict):
    """Refuse to report NaN or infinite numbers: they are a broken model's, and not standard JSON."""
    bad = non_finite_fields(report)
    if bad:
        raise ValueError(f"the result has non-finite numbers ({', '.join(bad[:3])}): the model's outputs are not "
                         "finite, so there is nothing to report")


def predict(args, parser) -> int:
    sample, description = _sample(args, parser)
    if args.heatmap is not None:
        if args.flow is not None and args.apex is None:
            raise ValueError("--heatmap is drawn over the apex face: give --apex with --flow")
        check_image_output("--heatmap", args.heatmap, [args.input, args.onset, args.flow, args.apex, args.model],
                           args.overwrite)
    classify = load_pipeline(args.model)
    options = {"return_details": True, "return_importance": args.heatmap is not None}
    if args.top_k is not None:
        options["top_k"] = args.top_k
    if args.face_crop is not None:
        options["do_crop_face"] = args.face_crop
    if args.apex_spotting is not None:
        options["apex_spotting"] = args.apex_spotting
    result = classify(sample, **options)
    report = {"input": description, **{key: result[key] for key in ("predictions", "apex_index", "face_crop")}}
    check_finite(report)
    if args.heatmap is not None:
        save_heatmap(result, args.heatmap, view=args.heatmap_view)
        report["heatmap"] = args.heatmap
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
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
        check_image_output("--plot", args.plot, [args.video, args.model], args.overwrite)
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
    from .training.run_folder import check_evaluation_folder
    from .training.run_inputs import load_dataset_for

    if args.output_dir is not None:
        check_evaluation_folder(args.output_dir, args.overwrite, {"--model": args.model, "--data_dir": args.data_dir})
    data_args = DataArguments(
        dataset=args.dataset, data_dir=args.data_dir, dataset_config=args.dataset_config,
        num_subjects=args.num_subjects, samples_per_subject=args.samples_per_subject, cache_dir=args.cache_dir,
        skip_missing=args.skip_missing,
    )
    classify = load_pipeline(args.model)
    dataset = load_dataset_for(data_args, args.seed)
    metrics, table = evaluate_model(classify.model, classify.image_processor, dataset, args.batch_size)
    metrics = {**metrics, "model": str(args.model), "dataset": args.dataset}
    check_finite(metrics)
    if args.output_dir is not None:
        write_evaluation(metrics, table, args.output_dir)
    if args.json:
        print(json.dumps(metrics, indent=2, allow_nan=False))
        return 0
    print(f"{args.model} on {args.dataset}:")
    print(f"  {'data':<16} {'n':>5} {'UF1':>7} {'UAR':>7} {'accuracy':>9}")
    for name, scores in [*metrics["per_dataset"].items(), ("all (pooled)", metrics)]:
        print(f"  {name:<16} {scores['n']:>5} {scores['uf1']:>7.4f} {scores['uar']:>7.4f} {scores['accuracy']:>9.4f}")
    if args.output_dir is not None:
        print(f"metrics.json and predictions.csv in {args.output_dir}")
    return 0


def demo(args, parser) -> int:
    """The web demo (Gradio, an optional extra): serve it, or write it as a Hugging Face Space folder."""
    try:
        from .demo.app import launch
        from .demo.space import export_space
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise OSError(error.msg) from error  # a missing optional extra: the user's to install, one line
    if args.export_space is not None:
        written = export_space(args.model, args.export_space)
        print(f"Space written to {written}: run `python app.py` there, or push the folder to a Gradio Space.")
        return 0
    launch(args.model, host=args.host, port=args.port)
    return 0


def positive_int(text: str) -> int:
    """argparse type of counts and sizes: a 0 or a negative would fail later, deep inside the work."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def positive_number(text: str) -> float:
    """argparse type of a rate: a finite number above 0 (`nan` and `1e400` parse as floats)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type of a TCP port: 1 to 65535 (the server's own bind() error would be a traceback)."""
    port = positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return port


def host_address(text: str) -> str:
    """argparse type of an address to serve on: a name or IP this machine can listen on. The server would
    otherwise fail on every port it tries and blame the port."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(text, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.bind(address)
    except (OSError, UnicodeError) as error:  # socket.gaierror is an OSError; UnicodeError: an over-long label
        reason = getattr(error, "strerror", None) or error
        raise argparse.ArgumentTypeError(f"cannot serve on {text!r}: {reason}") from None
    return text


def thread_count(text: str) -> int:
    """argparse type of a thread count (`limits.thread_problem`)."""
    count = positive_int(text)
    if problem := thread_problem(count):
        raise argparse.ArgumentTypeError(problem)
    return count


def seed_number(text: str) -> int:
    """argparse type of a seed (`limits.seed_problem`); NumPy's own error would name no option."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if problem := seed_problem(seed):
        raise argparse.ArgumentTypeError(problem)
    return seed


def add_threads_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--num_threads", type=thread_count,
                        help="torch threads (default: one per core); 1 is much faster on "
                        "a machine busy with other jobs (benchmarks/RESULTS.md)")


def build_command_parser() -> argparse.ArgumentParser:
    """The `hf-mmmer` parser with its subcommands (`train` only names itself: the trainer parses its own)."""
    from .training.arguments import DATASETS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Micro-expression recognition with MMMER: predict, train, evaluate and a web demo.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{predict,spot,train,evaluate,demo}")

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
    predict_parser.add_argument("--heatmap", metavar="PNG", help="write the apex face with an importance map drawn "
                                "over it to this PNG file (never over an input)")
    predict_parser.add_argument("--heatmap_view", choices=list(HEATMAP_VIEWS), default="motion",
                                help="what --heatmap draws: " + "; ".join(f"{name}: {text}" for name, text in
                                HEATMAP_VIEWS.items()) + " (default: motion, the one that points at the moved region)")
    predict_parser.add_argument("--overwrite", action="store_true", help="replace an existing --heatmap file")
    predict_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    predict_parser.add_argument("--top_k", type=positive_int, help="print only the K best classes (default: all)")
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
    spot_parser.add_argument("--fps", type=positive_number, help="frame rate (required when the container has "
                             "none, and for a folder of frames)")
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
    evaluate_parser.add_argument("--skip_missing", action="store_true", help="skip (with a warning and a count) "
                                 "samples whose files are missing or do not decode")
    evaluate_parser.add_argument("--output_dir", help="write metrics.json and predictions.csv here (a new or empty "
                                 "folder; never a training run's)")
    evaluate_parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --output_dir, "
                                 "replacing its metrics.json and predictions.csv")
    evaluate_parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate_parser.add_argument("--batch_size", type=positive_int, default=256,
                                 help="samples per forward pass (default 256)")
    evaluate_parser.add_argument("--cache_dir", help="cache of prepared datasets")
    synthetic = evaluate_parser.add_argument_group("synthetic dataset")
    synthetic.add_argument("--num_subjects", type=positive_int, default=8, help="number of subjects (default 8)")
    synthetic.add_argument("--samples_per_subject", type=positive_int, default=24,
                           help="clips per subject (default 24)")
    synthetic.add_argument("--seed", type=seed_number, default=0, help="seed of the rendered clips (default 0)")
    add_threads_argument(evaluate_parser)
    evaluate_parser.set_defaults(run=evaluate)

    demo_parser = commands.add_parser(
        "demo", help="web demo of a saved model (Gradio: pip install 'hf-mmmer[demo]')",
        description="Serve a web page (Gradio) that classifies two uploaded frames, a clip or a webcam\n"
        "recording with a saved model and shows the scores, the face crop, the flow and a heatmap; or\n"
        "write it as a folder that runs as a Hugging Face Space.",
        epilog="examples:\n  hf-mmmer demo --model runs/demo/final_model --port 7860\n"
        "  hf-mmmer demo --model runs/demo/final_model --export_space my_space",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo_parser.add_argument("--model", required=True, help="saved model directory")
    demo_parser.add_argument("--port", type=port_number, help="port to serve on (default: Gradio's, 7860, or the next free)")
    demo_parser.add_argument("--host", type=host_address, default="127.0.0.1", help="address to serve on (default "
                             "127.0.0.1, this machine only; 0.0.0.0 for every network interface)")
    demo_parser.add_argument("--export_space", metavar="OUT", help="write a Hugging Face Space folder (app.py, "
                             "requirements.txt, the model, README.md) to OUT, a new or empty folder, and exit")
    add_threads_argument(demo_parser)
    demo_parser.set_defaults(run=demo)
    return parser


def main(argv=None) -> int:
    """The `hf-mmmer` console script: run one subcommand and return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        # The trainer owns its arguments (and their --help); everything after `train` is its.
        from .training.cli import train_command

        return train_command(argv[1:], prog=f"{PROG} train")
    parser = build_command_parser()
    args = parser.parse_args(argv)
    transformers_logging.disable_progress_bar()  # a weight-loading bar on every call is noise in a command's output
    # transformers' load report (a table of mismatched tensors) would precede the command's own one-line error.
    transformers_logging.set_verbosity_error()
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    return exit_status(f"{PROG} {args.command}", args.run, args, parser)


__all__ = ["main", "build_command_parser", "load_pipeline"]

if __name__ == "__main__":
    sys.exit(main())
