"""The `hf-mmmer` command: predict on a video file, a frame folder and frame pairs; train and evaluate; help."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import child_env, save_tiny_model
from sklearn.metrics import f1_score
from test_pipeline import APEX, make_clip, write_folder, write_video

from hf_mmmer.cli import load_pipeline, main
from hf_mmmer.data import load_me_dataset


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """One synthetic clip on disk as a frame folder and as an MJPG video."""
    root = tmp_path_factory.mktemp("clip")
    frames = make_clip()
    return {"folder": write_folder(frames, root / "frames"), "video": write_video(frames, root / "clip.avi")}


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_on_a_video_file_as_json(capsys, model_dir, clip_files):
    code, out, _ = run(capsys, "predict", "--model", model_dir, clip_files["video"], "--json", "--num_threads", 1)
    report = json.loads(out)
    assert code == 0
    assert report["input"] == str(clip_files["video"])
    assert [entry["label"] for entry in report["predictions"]] and len(report["predictions"]) == 3
    assert isinstance(report["apex_index"], int) and report["face_crop"] == "off"


def test_predict_on_a_frame_folder_with_heatmap(capsys, model_dir, clip_files, tmp_path):
    heatmap = tmp_path / "heatmap.png"
    code, out, _ = run(capsys, "predict", "--model", model_dir, clip_files["folder"], "--heatmap", heatmap,
                       "--top_k", 1)
    assert code == 0
    lines = out.splitlines()
    assert f"apex spotted at frame {APEX}" in lines[0] and len(lines) == 3 and lines[-1] == f"heatmap: {heatmap}"
    image = cv2.imread(str(heatmap))
    assert image.shape == (256, 2 * 256, 3)  # plain face and motion importance (the default view)
    assert np.abs(image[64:, 256:].astype(int) - image[64:, :256]).mean() > 5
    attention = tmp_path / "attention.png"
    code, _, _ = run(capsys, "predict", "--model", model_dir, clip_files["folder"], "--heatmap", attention,
                     "--heatmap_view", "attention")
    assert code == 0 and cv2.imread(str(attention)).shape == (256, 3 * 256, 3)  # motion and texture attention


def test_predict_on_onset_apex_and_on_precomputed_flow(capsys, model_dir, clip_files, tmp_path):
    folder = clip_files["folder"]
    code, out, _ = run(capsys, "predict", "--model", model_dir, "--onset", folder / "img0.png", "--apex",
                       folder / f"img{APEX}.png", "--json", "--top_k", 9)
    assert code == 0 and json.loads(out)["apex_index"] is None and len(json.loads(out)["predictions"]) == 3
    flow = tmp_path / "flow.png"
    cv2.imwrite(str(flow), np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8))
    code, out, _ = run(capsys, "predict", "--model", model_dir, "--flow", flow, "--apex", folder / "img0.png")
    assert code == 0 and out.startswith(f"flow {flow}, apex")


def test_predict_reports_bad_input_in_one_line(capsys, model_dir, clip_files, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "predict", "--model", model_dir, broken)
    assert code == 1 and "cannot read any frame" in err and "Traceback" not in err
    incomplete = tmp_path / "model"
    shutil.copytree(model_dir, incomplete)
    (incomplete / "preprocessor_config.json").unlink()
    code, _, err = run(capsys, "predict", "--model", incomplete, clip_files["folder"])
    assert code == 1 and "has no preprocessor_config.json" in err
    code, _, err = run(capsys, "predict", "--model", tmp_path / "nowhere", clip_files["folder"])
    assert code == 1 and f"no model folder at {tmp_path / 'nowhere'}" in err
    code, _, err = run(capsys, "predict", "--model", tmp_path, clip_files["folder"])
    assert code == 1 and "no config.json" in err


@pytest.mark.parametrize("argv", [["predict", "--model", "m"], ["predict", "--model", "m", "--onset", "a.png"],
                                  ["predict", "--model", "m", "clip.avi", "--apex", "a.png"]])
def test_predict_needs_exactly_one_input(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "--apex" in capsys.readouterr().err


@pytest.mark.parametrize("command, expected", [
    ([], ["predict", "train", "evaluate"]),
    (["predict"], ["--model", "--onset", "--apex", "--flow", "--heatmap", "--heatmap_view", "--json", "--top_k", "--no_face_crop"]),
    (["evaluate"], ["--model", "--dataset", "--data_dir", "--output_dir", "--num_subjects"]),
    (["train"], ["--dataset", "--epochs", "--output_dir", "--config_overrides", "--push_to_hub"]),
])
def test_help_of_each_command(capsys, command, expected):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(option in out for option in expected), [option for option in expected if option not in out]


def test_train_hands_every_argument_to_the_trainer(monkeypatch):
    received = []
    monkeypatch.setattr("hf_mmmer.training.cli.train_command", lambda argv, prog: received.append((argv, prog)) or 0)
    assert main(["train", "--dataset", "synthetic", "--epochs", "2"]) == 0
    assert received == [(["--dataset", "synthetic", "--epochs", "2"], "hf-mmmer train")]


def test_evaluate_on_the_synthetic_dataset(capsys, model_dir, tmp_path):
    code, out, _ = run(capsys, "evaluate", "--model", model_dir, "--dataset", "synthetic", "--num_subjects", 2,
                       "--samples_per_subject", 3, "--cache_dir", tmp_path / "cache", "--output_dir", tmp_path / "eval")
    assert code == 0 and "all (pooled)" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 6 and set(metrics["per_dataset"]) == {"synthetic"} and len(metrics["per_subject"]) == 2
    assert metrics["model"] == str(model_dir)
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert list(table.columns[:5]) == ["sample_id", "subject", "dataset", "label", "prediction"]
    # Each prediction is the saved model's own, on the sample the row names (one sample at a time here) ...
    classify = load_pipeline(model_dir)
    dataset = load_me_dataset("synthetic", num_subjects=2, samples_per_subject=3, seed=0, cache_dir=tmp_path / "cache")
    for row in dataset:
        inputs = classify.image_processor(onset=row["onset"], apex=row["apex"], return_tensors="pt")
        with torch.no_grad():
            logits = classify.model(**{k: inputs[k] for k in ("flow_values", "texture_values")}).logits
        expected = table.loc[table["sample_id"] == row["sample_id"]].iloc[0]
        assert (expected["label"], expected["prediction"]) == (row["label"], int(logits.argmax()))
    # ... and the scores are those of the rows.
    uf1 = f1_score(table["label"], table["prediction"], labels=[0, 1, 2], average="macro")
    assert metrics["uf1"] == pytest.approx(uf1)
    assert metrics["accuracy"] == pytest.approx((table["label"] == table["prediction"]).mean())


def test_evaluate_refuses_a_dataset_with_other_classes(capsys, tmp_path):
    other = save_tiny_model(tmp_path / "other", id2label={0: "happiness", 1: "disgust", 2: "surprise"})
    code, _, err = run(capsys, "evaluate", "--model", other, "--dataset", "synthetic", "--num_subjects", 1,
                       "--samples_per_subject", 3, "--cache_dir", tmp_path / "cache")
    assert code == 1 and "are not the model's" in err


@pytest.mark.slow
def test_example_script_runs_the_three_forms(fresh_python, model_dir, clip_files):
    example = Path(__file__).resolve().parents[1] / "examples" / "predict.py"
    out = fresh_python(f"""
        import runpy, sys
        sys.argv = ["predict.py", "--model", {str(model_dir)!r}, {str(clip_files["folder"])!r}]
        runpy.run_path({str(example)!r}, run_name="__main__")
    """)
    assert "[AutoModel]" in out and "[pipeline]" in out and f'"apex_index": {APEX}' in out


def test_the_commands_that_build_no_dataset_start_without_datasets(tmp_path):
    """predict, spot and demo never import `datasets` (about a second of start-up): a new interpreter, since the
    session's fork server has it loaded."""
    check = "import sys, hf_mmmer.cli; assert 'datasets' not in sys.modules, 'datasets imported'"
    result = subprocess.run([sys.executable, "-c", check], env=child_env(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_bad_file_is_the_one_line_on_stderr_without_opencv_or_ffmpeg_chatter(tmp_path, model_dir):
    """OpenCV warns about a cut PNG and FFmpeg about a text file named .mp4 on the process's own stderr, before
    the command's one-line error: a new process, since their log levels are set once per process."""
    onset = tmp_path / "onset.png"
    cv2.imwrite(str(onset), np.full((40, 40, 3), 128, np.uint8))
    (tmp_path / "cut.png").write_bytes(onset.read_bytes()[:80])
    (tmp_path / "clip.mp4").write_text("not a video")
    for inputs, error in ((["--onset", str(tmp_path / "cut.png"), "--apex", str(onset)], "cannot read it as an image"),
                          ([str(tmp_path / "clip.mp4")], "cannot read any frame")):
        result = subprocess.run([sys.executable, "-m", "hf_mmmer.cli", "predict", "--model", str(model_dir), *inputs],
                                env=child_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and result.stderr.count("\n") == 1 and error in result.stderr, result.stderr


def test_every_command_and_the_demo_quiet_opencv_through_the_shared_error_boundary(monkeypatch):
    """train.py reaches the same boundary (`errors.exit_status`) as hf-mmmer, so it is as quiet."""
    from hf_mmmer.errors import exit_status

    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)
    try:
        assert exit_status("train.py", lambda: None) == 0
        assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_ERROR
        assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
    finally:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)
