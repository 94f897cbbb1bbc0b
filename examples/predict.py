#!/usr/bin/env python
"""Classify a micro-expression with a saved MMMER model, in the three ways the package offers.

    python examples/predict.py --model runs/demo/final_model --onset onset.jpg --apex apex.jpg
    python examples/predict.py --model runs/demo/final_model path/to/frames_or_clip.avi [--heatmap out.png]

1. AutoModel + image processor: the Hugging Face classes, for full control of the tensors.
2. The `micro-expression-classification` pipeline: sorted labels; on request the spotted apex, importance maps.
3. The `hf-mmmer predict` command, for shells and scripts.

Forms 1 and 2 load the code saved next to the weights (`trust_remote_code=True`), as a user without
`hf_mmmer` installed would; the command uses the installed package. A saved model directory is what
`examples/train.py` writes to `OUTPUT_DIR/final_model`.
"""

import argparse
import os
import shutil
import subprocess
import sys

import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline


def with_auto_classes(model_dir, sample):
    """1. Processor and model by hand: `sample` is the processor's keyword arguments."""
    processor = AutoImageProcessor.from_pretrained(model_dir, trust_remote_code=True)
    model = AutoModelForImageClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    inputs = processor(**sample, return_tensors="pt")
    with torch.no_grad():
        logits = model(flow_values=inputs["flow_values"], texture_values=inputs["texture_values"]).logits
    probabilities = logits.softmax(-1)[0]
    best = int(probabilities.argmax())
    apex = inputs["apex_index"][0]  # -1: the apex was given
    print(f"[AutoModel] {model.config.id2label[best]} ({probabilities[best]:.3f}); apex index {apex}")


def with_pipeline(model_dir, sample, heatmap=None):
    """2. The pipeline (it takes the processor's forms too, and plain paths or frame lists); with `heatmap`, also
    draw where the model looked (the drawing needs `hf_mmmer`)."""
    classify = pipeline(task="micro-expression-classification", model=model_dir, trust_remote_code=True)
    print(f"[pipeline] {classify(sample)[0]['label']}")  # the scores, best first, as Hugging Face's pipelines
    result = classify(sample, return_details=True, return_importance=heatmap is not None)
    print(f"[pipeline] {result['predictions']}; apex index {result['apex_index']}")
    if heatmap is not None:
        from hf_mmmer.visualization import save_heatmap

        save_heatmap(result, heatmap)
        print(f"[pipeline] heatmap written to {heatmap}")


def with_command(model_dir, arguments):
    """3. The console script (`python -m hf_mmmer.cli` where `hf-mmmer` is not on the PATH)."""
    command = [shutil.which("hf-mmmer")] if shutil.which("hf-mmmer") else [sys.executable, "-m", "hf_mmmer.cli"]
    command += ["predict", "--model", model_dir, *arguments, "--json"]
    print("[command]", " ".join(command))
    subprocess.run(command, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="saved model directory")
    parser.add_argument("input", nargs="?", help="a folder of frames or a video file (a clip, onset first)")
    parser.add_argument("--onset", help="onset frame (with --apex)")
    parser.add_argument("--apex", help="apex frame (with --onset)")
    parser.add_argument("--heatmap", help="write the importance heatmap of the pipeline's answer to this PNG")
    args = parser.parse_args()
    if (args.input is None) == (args.onset is None or args.apex is None):
        parser.error("give a clip (folder or video) or --onset with --apex")
    if args.input is None:
        sample, arguments = {"onset": args.onset, "apex": args.apex}, ["--onset", args.onset, "--apex", args.apex]
    else:
        sample, arguments = {"frames" if os.path.isdir(args.input) else "video": args.input}, [args.input]
    with_auto_classes(args.model, sample)
    with_pipeline(args.model, sample, args.heatmap)
    with_command(args.model, arguments)


if __name__ == "__main__":
    main()
