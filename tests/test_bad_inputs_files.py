"""The user's files: what the trainer and the `hf-mmmer` commands refuse to write, replace or delete.

Each case feeds one input and asserts the exact outcome: the refusal names the folder, file or field,
and nothing on disk changed (every file's name and bytes hashed before and after).
"""

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from datasets.exceptions import DatasetGenerationError
from conftest import TINY_OVERRIDES
from test_data_fixtures import precomputed_tree, write_image

from hf_mmmer import atomic_files
from hf_mmmer.atomic_files import write_atomically
from hf_mmmer.cli import main as command
from hf_mmmer.training import experiment, run_folder
from hf_mmmer.training.cli import train_from_argv
from hf_mmmer.training.export import STAGING_MARKER



def train_args(output, data_dir, *extra):
    """A one-epoch, one-fold run on a precomputed folder (8 samples): seconds on one CPU core."""
    return ["--dataset", "precomputed", "--data_dir", str(data_dir),
            "--cache_dir", str(Path(data_dir).parent / "cache"), "--epochs", "1", "--batch_size", "4", "--folds", "1",
            "--final_model", "false",
            "--config_overrides", TINY_OVERRIDES, "--num_threads", "1", "--output_dir", str(output), *extra]


def folder_state(root) -> dict:
    """`{relative path: sha256 of its bytes}` of every file under `root` (`{}` when absent), plus its folders."""
    root = Path(root)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def data_dir(tmp_path):
    return precomputed_tree(tmp_path / "data")


@pytest.fixture(scope="module")
def template_run(tmp_path_factory):
    """One finished run, trained once; tests get copies (`finished_run`) and so may change them."""
    root = tmp_path_factory.mktemp("template")
    data_dir = precomputed_tree(root / "data")
    train_from_argv(train_args(root / "run", data_dir))
    return data_dir, root / "run"


@pytest.fixture
def finished_run(tmp_path, template_run):
    """A finished run of this test's `data_dir` (the same files as the template's)."""
    shutil.copytree(template_run[1], tmp_path / "run")
    return tmp_path / "run"


def test_overwrite_never_touches_a_folder_that_is_not_a_run(tmp_path, data_dir):
    thesis = tmp_path / "thesis"
    (thesis / "chapters").mkdir(parents=True)
    (thesis / "chapters" / "one.tex").write_text("\\chapter{One}")
    (thesis / "metrics.json").write_text("{}")
    before = folder_state(thesis)
    with pytest.raises(FileExistsError, match="is not empty and holds no hf-mmmer run"):
        train_from_argv(train_args(thesis, data_dir, "--overwrite"))
    assert folder_state(thesis) == before
    assert not run_folder.staging_folder(thesis).exists()


@pytest.mark.parametrize("bad, message", [
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--batch_size", "0"], "--batch_size must be a positive integer, got 0"),
    (["--config_overrides", "hiden_size=8"], "unknown key hiden_size; known keys: modalities, "),
    (["--folds", "nobody"], "unknown subjects ['nobody']"),
    (["--folds", "99"], "--folds 99: the data have only "),
])
def test_overwrite_validates_everything_before_touching_the_old_run(finished_run, data_dir, bad, message):
    before = folder_state(finished_run)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        train_from_argv([*train_args(finished_run, data_dir, "--overwrite"), *bad])
    assert folder_state(finished_run) == before
    assert not run_folder.staging_folder(finished_run).exists()


def test_overwrite_refuses_a_run_holding_files_it_did_not_write(finished_run, data_dir):
    (finished_run / "notes.md").write_text("my notes")
    (finished_run / "folds" / "by_hand.json").write_text("{}")
    before = folder_state(finished_run)
    with pytest.raises(FileExistsError, match=r"files the run did not write \(folds/by_hand.json, notes.md\)"):
        train_from_argv(train_args(finished_run, data_dir, "--overwrite"))
    assert folder_state(finished_run) == before


def test_a_crash_during_overwrite_keeps_the_old_run_and_a_rerun_replaces_it(finished_run, data_dir, monkeypatch):
    before = folder_state(finished_run)

    def disk_full(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(experiment, "plot_training_curves", disk_full)
        with pytest.raises(RuntimeError, match="disk full"):
            train_from_argv(train_args(finished_run, data_dir, "--overwrite", "--seed", "1"))
    assert folder_state(finished_run) == before
    train_from_argv(train_args(finished_run, data_dir, "--overwrite", "--seed", "1"))
    assert json.loads((finished_run / "run_args.json").read_text())["seed"] == 1
    assert json.loads((finished_run / "metrics.json").read_text())["seed"] == 1
    siblings = sorted(p.name for p in finished_run.parent.iterdir())
    assert ".run.overwrite" not in siblings and ".run.replaced" not in siblings


def test_a_file_that_appears_in_the_replaced_run_is_kept_and_named(tmp_path, caplog):
    output, staging = tmp_path / "run", run_folder.staging_folder(tmp_path / "run")
    run_folder.start_run(run_folder.RunPlacement(output, output), {"run_args.json": {"seed": 0}}, ["metrics.json"])
    write_atomically(output / "metrics.json", "{}")
    placement = run_folder.place_run(output, resume=False, overwrite=True)
    assert placement.work_dir == staging
    run_folder.start_run(placement, {"run_args.json": {"seed": 1}}, ["metrics.json"])
    (output / "late_notes.txt").write_text("written during the run")
    (output / "my_empty_folder").mkdir()
    run_folder.finish_run(placement)
    assert json.loads((output / "run_args.json").read_text()) == {"seed": 1}
    kept = folder_state(run_folder.replaced_folder(output))
    assert kept == {"late_notes.txt": hashlib.sha256(b"written during the run").hexdigest(), "my_empty_folder": "dir"}
    assert "late_notes.txt" in caplog.text
    with pytest.raises(FileExistsError, match=r"\.run\.replaced holds what was left"):
        run_folder.place_run(output, resume=False, overwrite=True)


@pytest.mark.parametrize("bad, message", [
    (["--epochs", "-1"], "--epochs must be a positive integer, got -1"),
    (["--folds", "0"], "--folds must be all, a positive number or a comma list of subjects, got '0'"),
    (["--config_overrides", "num_labels=5"], "may not set num_labels: the classes are the dataset's"),
    (["--config_overrides", "hidden_size=0"], "--config_overrides: hidden_size must be a positive integer, got 0"),
    (["--resume"], "--resume continues the run in --output_dir and --overwrite replaces it"),
    (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    (["--push_to_hub", "--hub_model_id", "me/x", "--no_final_model"], "--push_to_hub uploads final_model/, which"),
    (["--hub_model_id", "bad id//x"], "--hub_model_id 'bad id//x' is not a Hub repo id"),
    (["--noise_std", "-0.1"], "--noise_std must be a finite number >= 0, got -0.1"),
    (["--mixup_alpha", "nan"], "--mixup_alpha must be a finite number >= 0, got nan"),
    (["--mixup_alpha", "0.2"], "--mixup_alpha mixes pairs of samples, usually of two subjects, and the subject"),
    (["--subject_adversary", "-1"], "--subject_adversary must be a finite number >= 0, got -1.0"),
    (["--flip_prob", "1.5"], "--flip_prob must be between 0 and 1, got 1.5"),
    (["--ema_decay", "1"], "--ema_decay must be below 1"),
    (["--protocol", "lopo"], "--protocol must be one of loso, lodo, holdout, got 'lopo'"),
    (["--protocol", "holdout"], "--protocol holdout needs --test_subjects"),
    (["--dataset", "synthetic", "--num_subjects", "0"], "synthetic: num_subjects must be a positive integer, got 0"),
    (["--dataset", "synthetic", "--samples_per_subject", "-2"], "synthetic: samples_per_subject must be a positive "
                                                                 "integer, got -2"),
    (["--dataset", "synthetic"], "is given, but --dataset is synthetic, which is generated and reads no folder"),
    (["--config_overrides", "hidden_size=16,hidden_size=32"], "config override 'hidden_size' is set twice"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1"),
    (["--seed", str(2**32)], "--seed must be an integer from 0 to 4294967295, got 4294967296"),
    (["--num_threads", "100000"], "--num_threads 100000 is more than the"),
])
def test_bad_arguments_are_refused_before_any_data_is_read(tmp_path, monkeypatch, bad, message):
    monkeypatch.setattr(experiment, "load_dataset_for", lambda *a: pytest.fail("data were read"))
    output = tmp_path / "run"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_from_argv([*train_args(output, tmp_path / "data", "--overwrite"), *bad])
    assert not output.exists()


def test_a_diverged_training_stops_naming_the_fold_and_reports_no_scores(tmp_path, data_dir):
    """A NaN loss makes NaN weights, whose predictions would be scored as if the run were real."""
    output = tmp_path / "run"
    with pytest.raises(ValueError, match=r"^fold casme2/sub01: training diverged: the mean loss of epoch 1 is nan; "
                                         r".*learning rate .*\(now 1e\+30\)"):
        train_from_argv([*train_args(output, data_dir), "--learning_rate", "1e30"])
    assert not (output / "metrics.json").exists() and not (output / "predictions.csv").exists()


@pytest.mark.parametrize("file, content, problem", [
    ("run_args.json", "{", r"damaged \(Expecting property name"),
    ("run_args.json", "[1, 2]", r"damaged \(not a record of arguments\)"),
    ("data_fingerprint.json", "null", r"damaged \(not a data fingerprint\)"),
    ("folds/casme2__sub01.json", "", r"damaged \(Expecting value"),
    ("folds/casme2__sub01.json", '{"fold": "x"}', r"damaged \(not fold casme2/sub01's result\)"),
    ("run_manifest.json", '{"files": 3}', r"damaged \(not a \{\"files\": \[...\]\} list\); the folder cannot"),
])
def test_a_damaged_run_record_is_named_on_resume(template_run, finished_run, file, content, problem):
    (finished_run / file).write_text(content)
    with pytest.raises(ValueError, match=f"{finished_run / file} is {problem}"):
        train_from_argv(train_args(finished_run, template_run[0], "--resume"))


def test_the_commands_skip_missing_samples_when_told(tmp_path, data_dir, model_dir):
    (data_dir / "apex" / "other_006_x_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 sample with missing files: 006_x_1 .*\(--skip_missing to the "):
        train_from_argv(train_args(tmp_path / "run", data_dir))
    with pytest.warns(UserWarning, match="skipped 1 sample with missing files: 006_x_1"):
        train_from_argv(train_args(tmp_path / "run", data_dir, "--skip_missing"))
    assert "006_x_1" not in (tmp_path / "run" / "data_fingerprint.json").read_text()
    with pytest.warns(UserWarning, match="skipped 1 sample with missing files: 006_x_1"):
        code = command(["evaluate", "--model", str(model_dir), "--dataset", "precomputed", "--data_dir",
                        str(data_dir), "--cache_dir", str(tmp_path / "cache"), "--skip_missing", "--json"])
    assert code == 0


def test_one_sample_under_two_names_is_refused(tmp_path, data_dir):
    """A copy under another subject would be trained on while its twin is tested."""
    lines = (data_dir / "samples.csv").read_text().splitlines()
    lines.append("casme2,sub09,EP99,1,positive,flow/casme2_sub01_EP02_01f.png,apex/casme2_sub01_EP02_01f.jpg")
    (data_dir / "samples.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"^1 group\(s\) of samples have identical inputs, .*: "
                                         r"casme2/sub01_EP02_01f = casme2/sub09_EP99; remove the copies"):
        train_from_argv(train_args(tmp_path / "run", data_dir))
    assert not (tmp_path / "run").exists()
    # The default model reads the flow alone: the same flow map beside another apex is still one sample to it,
    # and two to a model that reads the apex face too.
    lines[-1] = lines[-1].replace("apex/casme2_sub01_EP02_01f.jpg", "apex/casme2_sub01_EP19_05f.jpg")
    (data_dir / "samples.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"casme2/sub01_EP02_01f = casme2/sub09_EP99"):
        train_from_argv(train_args(tmp_path / "run", data_dir))
    both = TINY_OVERRIDES + ',modalities=["flow","texture"]'
    train_from_argv([*train_args(tmp_path / "run", data_dir), "--config_overrides", both])


def test_overwrite_refuses_a_run_whose_folder_was_replaced_by_a_link(tmp_path, template_run, finished_run):
    """The link is the user's, and so is the folder it points to (here a run's folds/, as a user might move
    final_model/): named up front, nothing deleted through it."""
    elsewhere = tmp_path / "kept" / "folds"
    elsewhere.parent.mkdir()
    shutil.move(finished_run / "folds", elsewhere)
    (finished_run / "folds").symlink_to(elsewhere, target_is_directory=True)
    before = folder_state(elsewhere)
    with pytest.raises(FileExistsError, match=r"--overwrite refused: .* holds files the run did not write "
                                              r"\(folds\)"):
        train_from_argv(train_args(finished_run, template_run[0], "--overwrite"))
    assert folder_state(elsewhere) == before and (finished_run / "folds").is_symlink()


def test_overwrite_never_replaces_the_folder_the_command_runs_in(template_run, finished_run, monkeypatch):
    """The swap would leave the user's shell in the replaced, deleted folder."""
    before = folder_state(finished_run)
    monkeypatch.chdir(finished_run / "folds")
    with pytest.raises(FileExistsError, match=r"--overwrite would replace .*run, the folder this command runs in"):
        train_from_argv(train_args("..", template_run[0], "--overwrite"))
    assert folder_state(finished_run) == before


def test_a_failed_start_leaves_nothing_and_a_rerun_works(tmp_path, data_dir):
    output = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown subjects"):
        train_from_argv([*train_args(output, data_dir), "--folds", "casme2/sub99"])
    assert not output.exists()
    train_from_argv(train_args(output, data_dir))
    train_from_argv(train_args(output, data_dir, "--resume"))  # a finished run resumes to itself
    assert (output / "metrics.json").is_file()


def test_resume_takes_the_same_folder_and_overrides_however_they_are_written(template_run, finished_run,
                                                                            monkeypatch):
    """A trailing slash (tab completion adds one), an absolute or a relative path, spaces around '=': the same run."""
    data = template_run[0]
    monkeypatch.chdir(data.parent)
    spaced = TINY_OVERRIDES.replace("=", " = ").replace(",", ", ")
    for spelling in (f"{data}/", data.name, f"./{data.name}/"):
        args = train_args(finished_run, spelling, "--resume", "--config_overrides", spaced)
        train_from_argv(args)
    with pytest.raises(ValueError, match=r"--resume with different arguments .*config_overrides"):
        train_from_argv(train_args(finished_run, data, "--resume", "--config_overrides", spaced + ",mlp_ratio=3"))


def test_resume_refuses_changed_data_and_names_the_change(tmp_path, data_dir):
    finished_run = tmp_path / "run"
    train_from_argv(train_args(finished_run, data_dir))
    before = folder_state(finished_run)
    lines = (data_dir / "samples.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",1,positive,", ",2,surprise,")  # casme2/sub01_EP02_01f relabelled
    del lines[-1]  # other/006_x_1 removed
    lines.append("samm,008,008_1_1,1,positive,flow/new.png,apex/new.jpg")
    write_image(data_dir / "flow" / "new.png", 28)
    write_image(data_dir / "apex" / "new.jpg", 32)
    (data_dir / "samples.csv").write_text("\n".join(lines) + "\n")
    other_pixels = np.random.default_rng(1).integers(0, 256, (28, 28, 3)).astype(np.uint8)
    cv2.imwrite(str(data_dir / "flow" / "smic_s03_s03_sur_01.png"), other_pixels)
    with pytest.raises(ValueError) as refused:
        train_from_argv(train_args(finished_run, data_dir, "--resume"))
    message = str(refused.value)
    assert "--resume refused: the data differ from the run in" in message
    assert "1 samples added (samm/008_008_1_1)" in message
    assert "1 samples removed (other/006_x_1)" in message
    assert "labels changed for 1 samples (casme2/sub01_EP02_01f: positive -> surprise)" in message
    assert "images or their encoding changed for 1 samples (smic/s03_s03_sur_01)" in message
    assert folder_state(finished_run) == before


def test_the_trainer_command_reports_a_user_error_in_one_line(tmp_path, capsys, monkeypatch):
    code = command(["train", *train_args(tmp_path / "run", tmp_path / "data"), "--epochs", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "hf-mmmer train: error: --epochs must be a positive integer, got 0\n"
    # Under torchrun or accelerate (RANK set), only the main process reports: not one line per process.
    for rank, expected in (("1", ""), ("0", err)):
        monkeypatch.setenv("RANK", rank)
        assert command(["train", *train_args(tmp_path / "run", tmp_path / "data"), "--epochs", "0"]) == 1
        assert capsys.readouterr().err == expected


def raise_from(error):
    """A dataset loader that fails as `datasets` reports a builder's error: wrapped, with the cause chained."""

    def load(*args):
        try:
            raise error
        except Exception as cause:
            raise DatasetGenerationError("An error occurred while generating the dataset") from cause

    return load


def test_a_builders_refusal_wrapped_by_datasets_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "load_dataset_for", raise_from(ValueError("sample sub01_a: flow has 1 channel")))
    assert command(["train", *train_args(tmp_path / "run", tmp_path / "data")]) == 1
    assert capsys.readouterr().err == "hf-mmmer train: error: sample sub01_a: flow has 1 channel\n"


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "load_dataset_for", raise_from(KeyError("a bug, not a user error")))
    with pytest.raises(DatasetGenerationError) as raised:
        command(["train", *train_args(tmp_path / "run", tmp_path / "data")])
    assert isinstance(raised.value.__cause__, KeyError)


def test_overwrite_deletes_a_leftover_staging_folder_only_when_it_is_a_runs(tmp_path):
    output, staging = tmp_path / "run", run_folder.staging_folder(tmp_path / "run")
    run_folder.start_run(run_folder.RunPlacement(output, output), {"run_args.json": {"seed": 0}}, [])
    mine = staging / ".final_model.partial" / "thesis.tex"  # a name a run's staging could hold, but no manifest
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    with pytest.raises(FileExistsError, match=r"\.run\.overwrite \(where --overwrite builds the new run\) holds files"):
        run_folder.place_run(output, resume=False, overwrite=True)
    assert mine.read_text() == "mine"


def test_only_the_runs_own_leftovers_count_as_its_files(tmp_path):
    output = tmp_path / "run"
    run_folder.start_run(run_folder.RunPlacement(output, output), {"run_args.json": {"seed": 0}}, ["metrics.json"])
    (output / ".metrics.json.backup.tmp").write_text("mine")  # not the temporary-file form `.NAME.<8 hex>.tmp`
    (output / ".metrics.json.0123abcd.tmp").write_text("{")  # an interrupted atomic write: the run's
    staging = output / ".final_model.partial"
    staging.mkdir()
    (staging / "config.json").write_text("{}")  # no marker: not an interrupted save
    assert run_folder.foreign_files(output, run_folder.read_manifest(output)) == [
        ".final_model.partial/config.json", ".metrics.json.backup.tmp"]
    (staging / STAGING_MARKER).touch()
    assert run_folder.foreign_files(output, run_folder.read_manifest(output)) == [".metrics.json.backup.tmp"]


def test_a_file_that_appears_in_the_staging_folder_after_the_checks_is_kept(tmp_path):
    output, staging = tmp_path / "run", run_folder.staging_folder(tmp_path / "run")
    run_folder.start_run(run_folder.RunPlacement(output, output), {"run_args.json": {"seed": 0}}, [])
    placement = run_folder.place_run(output, resume=False, overwrite=True)
    run_folder.start_run(placement, {"run_args.json": {"seed": 1}}, [])  # an --overwrite that stops here
    placement = run_folder.place_run(output, resume=False, overwrite=True)  # the checks of the next one
    (staging / "late.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"\.run\.overwrite .*holds files hf-mmmer did not write \(late.txt\)"):
        run_folder.start_run(placement, {"run_args.json": {"seed": 2}}, [])
    assert sorted(p.name for p in staging.iterdir()) == ["late.txt"] and (staging / "late.txt").read_text() == "mine"


def test_an_atomic_write_never_touches_a_file_that_has_its_temporary_name(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_files.secrets, "token_hex", lambda size: "abcd1234")
    taken = tmp_path / ".metrics.json.abcd1234.tmp"
    taken.write_text("mine")
    with pytest.raises(FileExistsError):
        write_atomically(tmp_path / "metrics.json", "{}")
    assert taken.read_text() == "mine" and not (tmp_path / "metrics.json").exists()


def test_every_file_of_a_run_is_owned_and_readable_like_the_users(tmp_path, data_dir):
    previous = os.umask(0o022)
    try:
        output = tmp_path / "run"
        train_from_argv([*train_args(output, data_dir), "--final_model", "true"])
    finally:
        os.umask(previous)
    owned = run_folder.read_manifest(output)
    assert run_folder.foreign_files(output, owned) == []
    modes = {p.relative_to(output).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in output.rglob("*") if p.is_file()}
    assert "metrics.json" in modes and "final_model/model.safetensors" in modes
    assert set(modes.values()) == {0o644}, {name: oct(mode) for name, mode in modes.items() if mode != 0o644}
    (output / "final_model" / "my_notes.md").write_text("beside the weights")
    before = folder_state(output)
    with pytest.raises(FileExistsError, match=r"files the run did not write \(final_model/my_notes.md\)"):
        train_from_argv([*train_args(output, data_dir, "--overwrite"), "--final_model", "true"])
    assert folder_state(output) == before


# --- hf-mmmer evaluate and predict ----------------------------------------------------------------

def evaluate(capsys, model_dir, output_dir, *extra):
    code = command(["evaluate", "--model", str(model_dir), "--dataset", "synthetic", "--num_subjects", "1",
                    "--samples_per_subject", "3", "--cache_dir", str(Path(output_dir).parent / "cache"),
                    "--output_dir", str(output_dir), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_evaluate_never_replaces_a_training_runs_results(capsys, model_dir, finished_run, extra):
    before = folder_state(finished_run)
    code, err = evaluate(capsys, model_dir, finished_run, *extra)
    assert code == 1 and "holds a training run" in err and "an evaluation never writes there" in err
    assert folder_state(finished_run) == before
    for inside in (finished_run / "folds", finished_run / "new"):  # inside a run, existing or not
        code, err = evaluate(capsys, model_dir, inside, *extra)
        assert code == 1 and f"lies inside {finished_run}, a training run" in err
    link = finished_run.parent / "link_to_folds"  # a link into the run: the typed path shows no run
    link.symlink_to(finished_run / "folds", target_is_directory=True)
    code, err = evaluate(capsys, model_dir, link / "x", *extra)
    assert code == 1 and f"lies inside {finished_run}, a training run" in err
    code, err = evaluate(capsys, model_dir, Path(model_dir) / "eval", *extra)
    assert code == 1 and "lies inside --model" in err and not (Path(model_dir) / "eval").exists()
    assert folder_state(finished_run) == before


def test_a_run_folder_that_cannot_be_one_is_refused_before_the_data_are_read(tmp_path, monkeypatch, data_dir):
    monkeypatch.setattr(experiment, "load_dataset_for", lambda *a: pytest.fail("data were read"))
    (tmp_path / "notes.txt").write_text("mine")
    for output, error, message in [
        ("", ValueError, "--output_dir is empty"),
        (tmp_path / "notes.txt" / "run", NotADirectoryError, r"lies under .*notes.txt, which is a file, not a folder"),
        (data_dir / "results", FileExistsError, r"lies inside --data_dir .*: results are never written into an input"),
    ]:
        with pytest.raises(error, match=message):
            train_from_argv(train_args(output, data_dir))
    assert not (data_dir / "results").exists() and (tmp_path / "notes.txt").read_text() == "mine"
    # `x/..` and `.` name a folder by where it is: its staging siblings must lie beside it, not inside.
    (tmp_path / "run" / "x").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "run")
    assert run_folder.checked_output_dir("x/..", {}) == run_folder.checked_output_dir(".", {}) == tmp_path / "run"
    assert run_folder.replaced_folder(run_folder.checked_output_dir("x/..", {})).parent == tmp_path


def test_evaluate_writes_into_a_non_empty_folder_only_with_consent(capsys, model_dir, tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "metrics.json").write_text("{}")
    before = folder_state(folder)
    code, err = evaluate(capsys, model_dir, folder)
    assert code == 1 and err.count("\n") == 1 and "is not empty; pass --overwrite" in err
    assert folder_state(folder) == before
    code, _ = evaluate(capsys, model_dir, folder, "--overwrite")
    assert code == 0 and json.loads((folder / "metrics.json").read_text())["n"] == 3
    assert (folder / "notes.txt").read_text() == "mine" and sorted(p.name for p in folder.iterdir()) == [
        "metrics.json", "notes.txt", "predictions.csv"]


def predict(capsys, model_dir, onset, apex, *extra):
    code = command(["predict", "--model", str(model_dir), "--onset", str(onset), "--apex", str(apex), *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    write_image(folder / "onset.png", 32)
    cv2.imwrite(str(folder / "apex.png"), np.roll(cv2.imread(str(folder / "onset.png")), 1, axis=1))
    return folder


@pytest.mark.parametrize("target, message", [
    ("apex.png", "would write over or into the input"),
    ("onset.png", "would write over or into the input"),
])
def test_heatmap_never_overwrites_an_input(capsys, model_dir, frames, target, message):
    before = folder_state(frames)
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap",
                           frames / target, "--overwrite")
    assert code == 1 and message in err and str(frames / target) in err
    assert folder_state(frames) == before


def test_heatmap_is_not_written_into_the_model_folder(capsys, model_dir, frames):
    """A stray file there would later block --overwrite of the run that saved the model."""
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap",
                           Path(model_dir) / "heat.png")
    assert code == 1 and f"would write over or into the input {model_dir}" in err
    assert not (Path(model_dir) / "heat.png").exists()


def test_heatmap_never_writes_through_a_link_to_an_input_or_a_user_file(capsys, model_dir, frames, tmp_path):
    """A hard link to an input is the input: refused. With --overwrite, a link to any other file is replaced
    by the heatmap, and the file it pointed to is untouched."""
    hard = tmp_path / "hard.png"
    os.link(frames / "apex.png", hard)
    before = folder_state(frames)
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap", hard,
                           "--overwrite")
    assert code == 1 and "would write over or into the input" in err and str(hard) in err
    assert folder_state(frames) == before
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    hard_precious, soft_precious = tmp_path / "hard_precious.png", tmp_path / "soft_precious.png"
    os.link(precious, hard_precious)
    soft_precious.symlink_to(precious)
    for link in (hard_precious, soft_precious):
        code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap", link,
                               "--overwrite")
        assert code == 0, err
        assert precious.read_text() == "mine"
        assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")
    assert folder_state(frames) == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    dangling, loop = tmp_path / "dangling.png", tmp_path / "loop.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    loop.symlink_to(loop)
    for link in (dangling, loop):  # a link is the user's file, even one that leads nowhere
        code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap", link)
        assert code == 1 and err.endswith("exists; pass --overwrite to replace it\n") and link.is_symlink()


def test_heatmap_in_a_folder_it_cannot_write_is_refused_before_the_model_runs(capsys, monkeypatch, frames, tmp_path):
    monkeypatch.setattr("hf_mmmer.cli.os.access", lambda path, mode: False)  # as a non-root user in a read-only folder
    monkeypatch.setattr("hf_mmmer.cli.load_pipeline", lambda model: pytest.fail("the model was loaded"))
    code, _, err = predict(capsys, "model", frames / "onset.png", frames / "apex.png", "--heatmap", tmp_path / "h.png")
    heatmap = tmp_path / "h.png"
    assert code == 1 and err == f"hf-mmmer predict: error: --heatmap {heatmap}: the folder {tmp_path} is not writable\n"


def test_heatmap_never_writes_into_an_input_folder(capsys, model_dir, frames):
    before = folder_state(frames)
    code = command(["predict", "--model", str(model_dir), str(frames), "--heatmap", str(frames / "heat.png")])
    assert code == 1 and "would write over or into the input" in capsys.readouterr().err
    assert folder_state(frames) == before


def test_heatmap_replaces_an_existing_file_only_with_consent(capsys, model_dir, frames, tmp_path):
    heatmap = tmp_path / "heat.png"
    heatmap.write_bytes(b"an earlier figure")
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap", heatmap)
    assert code == 1 and err == f"hf-mmmer predict: error: --heatmap {heatmap} exists; pass --overwrite to replace it\n"
    assert heatmap.read_bytes() == b"an earlier figure"
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap", heatmap,
                         "--overwrite")
    assert code == 0 and heatmap.read_bytes().startswith(b"\x89PNG"), err
    code, _, err = predict(capsys, model_dir, frames / "onset.png", frames / "apex.png", "--heatmap",
                           tmp_path / "heat.jpg")
    assert code == 1 and "must name a .png file" in err


def test_json_output_never_prints_nan(capsys, monkeypatch, frames):
    broken = {"predictions": [{"label": "negative", "score": float("nan")}], "apex_index": None, "face_crop": "off"}
    monkeypatch.setattr("hf_mmmer.cli.load_pipeline", lambda model: lambda sample, **options: broken)
    code, out, err = predict(capsys, "model", frames / "onset.png", frames / "apex.png", "--json", "--heatmap",
                             frames.parent / "heat.png")
    assert code == 1 and out == "" and "non-finite numbers (predictions[0].score)" in err
    assert not (frames.parent / "heat.png").exists()


def test_a_run_of_an_older_version_is_neither_replaced_nor_evaluated_into(tmp_path, capsys, model_dir):
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "run_args.json").write_text("{}")
    (old / "metrics.json").write_text("{}")
    before = folder_state(old)
    with pytest.raises(FileExistsError, match="holds a run of an older hf-mmmer"):
        run_folder.place_run(old, resume=False, overwrite=True)
    code, err = evaluate(capsys, model_dir, old, "--overwrite")
    assert code == 1 and "holds a training run" in err
    assert folder_state(old) == before


@pytest.mark.parametrize("argv, option", [
    (["evaluate", "--model", "m", "--dataset", "synthetic", "--batch_size", "0"], "--batch_size"),
    (["evaluate", "--model", "m", "--dataset", "synthetic", "--num_subjects", "-1"], "--num_subjects"),
    (["predict", "--model", "m", "clip.avi", "--top_k", "0"], "--top_k"),
    (["predict", "--model", "m", "clip.avi", "--num_threads", "-2"], "--num_threads"),
])
def test_counts_of_zero_or_less_are_usage_errors(capsys, argv, option):
    with pytest.raises(SystemExit) as exit_info:
        command(argv)
    assert exit_info.value.code == 2
    assert f"argument {option}: must be a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["spot", "clip.avi", "--model", "m", "--fps", "nan"], "argument --fps: must be a finite number above 0"),
    (["predict", "--model", "m", "clip.avi", "--num_threads", "100000"],
     "argument --num_threads: 100000 is more than the"),
    (["evaluate", "--model", "m", "--dataset", "synthetic", "--seed", "-1"],
     "argument --seed: must be an integer from 0 to 4294967295, got -1"),
])
def test_thread_counts_and_seeds_out_of_range_are_usage_errors(capsys, argv, message):
    """The same bounds as train.py's (`hf_mmmer.limits`): NumPy's own error for a seed named no option."""
    with pytest.raises(SystemExit) as exit_info:
        command(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_a_port_outside_1_to_65535_is_a_usage_error(capsys, port):
    with pytest.raises(SystemExit) as exit_info:
        command(["demo", "--model", "m", "--port", port])
    assert exit_info.value.code == 2 and "argument --port: must be" in capsys.readouterr().err


@pytest.mark.parametrize("host, reason", [("192.0.2.1", "Cannot assign requested address"),  # not this machine's
                                          ("a" * 70, "label too long")])
def test_a_host_this_machine_cannot_serve_on_is_a_usage_error(capsys, host, reason):
    """Checked before the model loads: Gradio would try a hundred ports and then blame the port."""
    with pytest.raises(SystemExit) as exit_info:
        command(["demo", "--model", "m", "--host", host])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument --host: cannot serve on '{host}'" in err and reason in err


def test_a_model_folder_without_weights_is_one_line(capsys, tmp_path, model_dir):
    empty = tmp_path / "model"
    shutil.copytree(model_dir, empty)
    (empty / "model.safetensors").unlink()
    code = command(["predict", "--model", str(empty), str(tmp_path / "clip.avi")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "model.safetensors" in err and str(empty) in err
