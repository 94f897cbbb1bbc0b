"""The trainer end to end on tiny synthetic LOSO runs: artifacts, determinism, resume, processes, Hub,
and a run that learns."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import PACKAGE_SOURCE, TRAIN_SCRIPT, child_env, free_port
from huggingface_hub import ModelCard

from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification, MMMERImageProcessor
from hf_mmmer.data import held_out_split, load_me_dataset
from hf_mmmer.training.arguments import DataArguments, ExperimentArguments
from hf_mmmer.training.cli import train_from_argv as train_main
from hf_mmmer.training.encoding import encode_dataset
from hf_mmmer.training.evaluation import predict_probabilities
from hf_mmmer.training.export import STAGING_MARKER, save_model_directory
from hf_mmmer.training.fold_training import FoldRecipe, train_fold_model
from hf_mmmer.training.run_inputs import build_processor
from hub_server import LocalHub

ARTIFACTS = ["predictions.csv", "metrics.json", "results.md", "confusion_matrix.png", "training_curves.png",
             "run_args.json", "timing.json", "final_model/model.safetensors", "final_model/config.json",
             "final_model/preprocessor_config.json", "final_model/modeling_mmmer.py", "final_model/README.md"]


def with_epochs(args: list, epochs: int) -> list:
    """`args` with `--epochs` set to `epochs`."""
    args = list(args)
    args[args.index("--epochs") + 1] = str(epochs)
    return args


def test_loso_run_writes_every_artifact(trained_run):
    output, metrics = trained_run
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
    assert written["accuracy"] == pytest.approx((table["label"] == table["prediction"]).mean())
    assert "| **all (pooled)** | 18 |" in (output / "results.md").read_text()
    card = ModelCard.load(output / "final_model" / "README.md")
    scores = {result.metric_type: result.metric_value for result in card.data.eval_results
              if result.dataset_config is None}
    assert scores == {"f1": round(written["uf1"], 4), "recall": round(written["uar"], 4),
                      "accuracy": round(written["accuracy"], 4)}
    assert "\n# mmmer-synthetic\n" in card.text  # titled by dataset, not by the folder name


def test_same_seed_gives_same_metrics(trained_run, train_args, tmp_path):
    output, metrics = trained_run
    again = train_main([*train_args, "--output_dir", str(tmp_path / "again"), "--final_model", "false"])
    assert again == metrics


def test_existing_output_is_never_overwritten_silently(trained_run, train_args):
    output, _ = trained_run
    before = (output / "metrics.json").read_bytes()
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train_main([*train_args, "--output_dir", str(output)])
    with pytest.raises(ValueError, match="epochs: 20 -> 3"):
        train_main([*with_epochs(train_args, 3), "--output_dir", str(output), "--resume"])
    assert (output / "metrics.json").read_bytes() == before


def test_a_run_recorded_before_noise_and_the_adversary_existed_resumes_without_them_only(trained_run, train_args,
                                                                                         tmp_path):
    """`run_args.json` of an older version has no `noise_std` or `subject_adversary`: it trained without them."""
    output, _ = trained_run
    older = tmp_path / "older"
    shutil.copytree(output, older)
    run_args = json.loads((older / "run_args.json").read_text())
    for name in ("noise_std", "subject_adversary"):
        run_args.pop(name)
    (older / "run_args.json").write_text(json.dumps(run_args))
    with pytest.raises(ValueError, match="noise_std: 0.0 -> 0.1, subject_adversary: 0.0 -> 0.1"):
        train_main([*train_args, "--output_dir", str(older), "--resume"])
    with pytest.raises(ValueError, match="subject_adversary: 0.0 -> 0.1"):
        train_main([*train_args, "--output_dir", str(older), "--resume", "--noise_std", "0"])
    resumed = [*train_args, "--output_dir", str(older), "--resume", "--noise_std", "0", "--subject_adversary", "0"]
    assert train_main(resumed) is not None


@pytest.fixture(scope="module")
def killed_then_resumed(fork_server, train_args, tmp_path_factory):
    """A run killed after its first fold, then resumed with `--push_to_hub` to a local Hub.

    The kill lands in a forked process (no interpreter start); the resume runs in a new interpreter,
    since huggingface_hub reads `HF_ENDPOINT` when it is imported. Returns
    `(output_dir, folds finished when killed, resumed process, hub)`.
    """
    work = tmp_path_factory.mktemp("killed")
    output = work / "run"
    [pid] = fork_server.start(work, script=TRAIN_SCRIPT, argv=[TRAIN_SCRIPT, *train_args, "--output_dir", output],
                              path=[PACKAGE_SOURCE])
    deadline = time.time() + 300
    while not list((output / "folds").glob("*.json")) and time.time() < deadline and fork_server.running():
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):  # already ended: its exit code and stderr say why below
        os.kill(pid, signal.SIGKILL)
    [(code, _, err)] = fork_server.wait(60)
    assert code == -signal.SIGKILL, err[-3000:]
    finished = len(list((output / "folds").glob("*.json")))
    hub = LocalHub().start()
    try:
        resumed = subprocess.run(
            [sys.executable, str(TRAIN_SCRIPT), *train_args, "--output_dir", str(output), "--resume",
             "--push_to_hub", "--hub_model_id", "alice/mmmer-synthetic"],
            env=child_env(work, HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_TOKEN=hub.token, HF_HUB_OFFLINE="0"),
            capture_output=True, text=True, timeout=300,
        )
        yield output, finished, resumed, hub
    finally:
        hub.stop()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(trained_run, killed_then_resumed):
    output, finished, resumed, _ = killed_then_resumed
    assert 1 <= finished < 3, "the kill must land after the first fold and before the last"
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = json.loads((trained_run[0] / "metrics.json").read_text())
    assert json.loads((output / "metrics.json").read_text()) == expected


@pytest.mark.slow
def test_push_to_hub_lands_the_final_model(killed_then_resumed):
    output, _, resumed, hub = killed_then_resumed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stored = hub.repos["alice/mmmer-synthetic"].files
    local = {p.relative_to(output / "final_model").as_posix(): p.read_bytes()
             for p in (output / "final_model").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert stored == local and "model.safetensors" in stored


@pytest.mark.slow
def test_two_processes_give_the_same_predictions(trained_run, train_args, tmp_path, fork_server):
    """Two ranks of one data-parallel run, forked with the environment `torchrun --standalone` gives its workers."""
    output = tmp_path / "two"
    port = str(free_port())
    ranks = [{"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "ACCELERATE_USE_CPU": "true"} for rank in range(2)]
    fork_server.start(tmp_path, script=TRAIN_SCRIPT, argv=[TRAIN_SCRIPT, *train_args, "--output_dir", output,
                                                          "--final_model", "false"], envs=ranks, path=[PACKAGE_SOURCE])
    finished = fork_server.wait(300)
    for code, _, err in finished:
        assert code == 0, err[-3000:]
    assert ["all (pooled)" in out for _, out, _ in finished] == [True, False]  # one run: only rank 0 reports
    two = pd.read_csv(output / "predictions.csv")
    one = pd.read_csv(trained_run[0] / "predictions.csv")
    pd.testing.assert_frame_equal(two, one, check_exact=False, atol=1e-5)


def test_final_model_loads_in_a_fresh_process(trained_run, fresh_python):
    final = trained_run[0] / "final_model"
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


def test_export_replaces_only_a_saved_model(trained_run, tmp_path):
    model = MMMERForMicroExpressionClassification.from_pretrained(trained_run[0] / "final_model")
    processor = MMMERImageProcessor.from_pretrained(trained_run[0] / "final_model")
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no saved model"):
        save_model_directory(model, processor, mine)
    assert (mine / "todo.txt").read_text() == "keep me" and not list(tmp_path.glob(".notes*"))
    saved = save_model_directory(model, processor, tmp_path / "model")
    assert save_model_directory(model, processor, saved) == saved and (saved / "config.json").is_file()
    (saved / "my_notes.md").write_text("keep me too")
    with pytest.raises(FileExistsError, match="holds files a saved model does not \\(my_notes.md\\)"):
        save_model_directory(model, processor, saved)
    assert (saved / "my_notes.md").read_text() == "keep me too" and not list(tmp_path.glob(".model*"))
    leftover = tmp_path / ".elsewhere.partial"
    leftover.mkdir()
    (leftover / "thesis.tex").write_text("not a model file")
    with pytest.raises(FileExistsError, match="thesis.tex"):
        save_model_directory(model, processor, tmp_path / "elsewhere")
    assert (leftover / "thesis.tex").is_file() and not (tmp_path / "elsewhere").exists()
    # A folder of that name with only the kinds of file a save writes is still not an interrupted save.
    (leftover / "thesis.tex").unlink()
    (leftover / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match="is not the leftover of an interrupted save"):
        save_model_directory(model, processor, tmp_path / "elsewhere")
    assert (leftover / "notes.md").read_text() == "mine"
    # An interrupted save's leftover carries its marker and is replaced by the next save.
    interrupted = tmp_path / ".resaved.partial"
    interrupted.mkdir()
    (interrupted / STAGING_MARKER).touch()
    (interrupted / "config.json").write_text("{")
    assert (save_model_directory(model, processor, tmp_path / "resaved") / "config.json").is_file()
    assert not interrupted.exists() and not (tmp_path / "resaved" / STAGING_MARKER).exists()
    # A saved model of another kind is not replaced.
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(FileExistsError, match="not an mmmer one"):
        save_model_directory(model, processor, other)
    assert sorted(p.name for p in other.iterdir()) == ["config.json"]


@pytest.mark.slow
def test_training_on_synthetic_clips_beats_chance_by_a_margin(tmp_path):
    """The recipe learns the synthetic classes (a motion of 0.5-2 px) across subjects it never saw."""
    dataset = load_me_dataset("synthetic", num_subjects=6, samples_per_subject=15, seed=0, cache_dir=tmp_path)
    config = MMMERConfig(id2label=dict(enumerate(dataset.features["label"].names)))
    processor = build_processor(config, DataArguments())
    data = encode_dataset(dataset, processor)
    train, test = held_out_split(data.subjects, sorted(set(data.subjects))[:2])
    model, _ = train_fold_model(config, data, train, FoldRecipe.from_arguments(ExperimentArguments()), seed=0,
                                flow_zero=processor.flow_zero_level())
    accuracy = (predict_probabilities(model, data, test).argmax(-1) == data.labels[test].numpy()).mean()
    assert len(test) == 30 and accuracy >= 0.7  # chance is 1/3
    assert np.bincount(data.labels[test].numpy(), minlength=3).min() > 0  # every class is held out
