"""The trainer end to end on tiny synthetic LOSO runs: artifacts, determinism, resume, processes, Hub."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hf_mmmer.training.cli import train_from_argv as train_main
from hub_server import LocalHub

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "examples" / "train.py"
TINY = "hidden_size=16,num_hidden_layers=1,num_attention_heads=2,texture_image_size=28,texture_patch_sizes=[14],flow_patch_sizes=[7,14]"
ARGS = ["--dataset", "synthetic", "--num_subjects", "3", "--samples_per_subject", "6", "--epochs", "40",
        "--batch_size", "8", "--config_overrides", TINY, "--num_threads", "1"]
ARTIFACTS = ["predictions.csv", "metrics.json", "results.md", "confusion_matrix.png", "training_curves.png",
             "run_args.json", "timing.json", "final_model/model.safetensors", "final_model/config.json",
             "final_model/preprocessor_config.json", "final_model/modeling_mmmer.py", "final_model/README.md"]


def child_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "HF_MMMER_DATASETS_CACHE": str(tmp_path / "datasets"), **extra})
    return env


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("clean") / "run"
    metrics = train_main([*ARGS, "--output_dir", str(output)])
    return output, metrics


def test_loso_run_writes_every_artifact(clean_run):
    output, metrics = clean_run
    for name in ARTIFACTS:
        assert (output / name).is_file(), name
    table = pd.read_csv(output / "predictions.csv")
    assert len(table) == 18 and table["fold"].nunique() == 3
    assert list(table.columns) == ["sample_id", "subject", "dataset", "label", "prediction", "score_negative",
                                   "score_positive", "score_surprise", "fold"]
    assert (table["subject"] == table["fold"]).all()  # each sample was predicted by the fold that held it out
    written = json.loads((output / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    for key in ("uf1", "uar", "accuracy", "n", "per_dataset", "per_fold", "protocol", "seed", "epochs"):
        assert key in written
    assert written["n"] == 18 and set(written["per_fold"]) == set(table["fold"])
    assert "| **all (pooled)** | 18 |" in (output / "results.md").read_text()
    card = (output / "final_model" / "README.md").read_text()
    assert "model-index" in card and f"{written['uf1']:.4f}"[:4] in card
    assert "\n# mmmer-synthetic\n" in card  # titled by dataset, not by the folder name


def test_same_seed_gives_same_metrics(clean_run, tmp_path):
    output, metrics = clean_run
    again = train_main([*ARGS, "--output_dir", str(tmp_path / "again"), "--final_model", "false"])
    assert again == metrics


def test_existing_output_is_never_overwritten_silently(clean_run):
    output, _ = clean_run
    before = (output / "metrics.json").read_bytes()
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train_main([*ARGS, "--output_dir", str(output)])
    with pytest.raises(ValueError, match="epochs: 40 -> 3"):
        train_main([*ARGS[:-6], "--epochs", "3", *ARGS[-4:], "--output_dir", str(output), "--resume"])
    assert (output / "metrics.json").read_bytes() == before


def test_killed_run_resumes_to_the_same_metrics(clean_run, tmp_path):
    output = tmp_path / "killed"
    command = [sys.executable, str(TRAIN_SCRIPT), *ARGS, "--output_dir", str(output)]
    process = subprocess.Popen(command, env=child_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((output / "folds").glob("*.json")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = list((output / "folds").glob("*.json"))
    assert 1 <= len(finished) < 3, "the kill must land after the first fold and before the last"
    assert not (output / "metrics.json").exists()
    resumed = subprocess.run([*command, "--resume"], env=child_env(tmp_path), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((output / "metrics.json").read_text()) == json.loads((clean_run[0] / "metrics.json").read_text())


def test_two_processes_give_the_same_predictions(clean_run, tmp_path):
    output = tmp_path / "two"
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(TRAIN_SCRIPT), *ARGS,
         "--output_dir", str(output), "--final_model", "false"],
        env=child_env(tmp_path, ACCELERATE_USE_CPU="true"), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    two = pd.read_csv(output / "predictions.csv")
    one = pd.read_csv(clean_run[0] / "predictions.csv")
    pd.testing.assert_frame_equal(two, one, check_exact=False, atol=1e-5)


def test_final_model_loads_in_a_fresh_process(clean_run, fresh_python):
    final = clean_run[0] / "final_model"
    out = fresh_python(
        f"""
        import sys
        from transformers import AutoModel, AutoImageProcessor
        model = AutoModel.from_pretrained({str(final)!r}, trust_remote_code=True)
        processor = AutoImageProcessor.from_pretrained({str(final)!r}, trust_remote_code=True)
        assert "hf_mmmer" not in sys.modules
        print(type(model).__name__, type(processor).__name__, processor.texture_size)
        """
    )
    assert out.split() == ["MMMERModel", "MMMERImageProcessor", "28"]


def test_push_to_hub_lands_the_final_model(tmp_path):
    hub = LocalHub().start()
    try:
        output = tmp_path / "pushed"
        result = subprocess.run(
            [sys.executable, str(TRAIN_SCRIPT), *ARGS[:-6], "--epochs", "1", *ARGS[-4:], "--output_dir", str(output),
             "--push_to_hub", "--hub_model_id", "alice/mmmer-synthetic"],
            env=child_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_TOKEN=hub.token, HF_HUB_OFFLINE="0"),
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        stored = hub.repos["alice/mmmer-synthetic"].files
        local = {p.relative_to(output / "final_model").as_posix(): p.read_bytes()
                 for p in (output / "final_model").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert stored == local and "model.safetensors" in stored
    finally:
        hub.stop()
