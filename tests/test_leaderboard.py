"""The leaderboard's baselines and script on tiny synthetic data (the real folder is never needed).

Every published model must take its published input, train a step, and run on the package's folds with
no subject and, under LODO, no source on both sides; the script must run end to end with a tiny budget
and say which budget it used.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_FLOW_OVERRIDES
from test_data_fixtures import precomputed_tree

from hf_mmmer.data.loso import source_of

REPO = Path(__file__).resolve().parents[1]
KEYS = [f"{source}/s{subject}" for source in ("casme2", "smic") for subject in range(3) for _ in range(4)]


@pytest.fixture
def bench(monkeypatch):
    """The benchmarks folder on the path, as when a script there runs; returns the leaderboard module."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import leaderboard

    return leaderboard


def tiny_data(n=len(KEYS)):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 28, 28, generator=generator), torch.arange(n) % 3


@pytest.mark.parametrize("name", ["ststnet", "offapexnet", "sssnet", "htnet_dim32"])
def test_every_baseline_takes_its_input_and_trains_a_step(bench, name):
    from baseline_training import make_optimizer, train_step

    baseline = bench.BASELINES[name]
    maps, labels = tiny_data(4)
    inputs = baseline.inputs(maps)
    model = baseline.build(3)
    assert model(inputs).shape == (4, 3)
    before = [p.detach().clone() for p in model.parameters()]
    loss = train_step(model, make_optimizer(model, baseline.recipe), inputs, labels)
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_published_inputs(bench):
    import htnet
    import offapexnet
    import sssnet
    import ststnet

    maps, _ = tiny_data(2)
    assert torch.allclose(ststnet.model_inputs(maps), maps * 255)
    assert offapexnet.model_inputs(maps).shape == (2, 2, 28, 28)  # u and v only
    assert sssnet.model_inputs(maps).shape == (2, 3, 64, 64)
    regions = htnet.model_inputs(maps)
    assert regions.shape == (2, 3, 28, 28)
    (x, y) = htnet.REGION_CENTRES[3]  # right mouth corner, bottom right tile
    assert torch.allclose(regions[:, :, 14:, 14:], maps[:, :, y - 7 : y + 7, x - 7 : x + 7] * 255)


def test_htnet_keeps_the_published_hierarchy(bench):
    import htnet

    model = htnet.HTNet(dim=32)
    assert [len(level) for level in model.levels] == [2, 2, 8]
    assert [level[0].heads for level in model.levels] == [3, 6, 12]
    assert [level[0].mlp_norm.norm.normalized_shape[0] for level in model.levels] == [32, 64, 128]
    assert htnet.RECIPE.epochs == 800 and htnet.RECIPE.learning_rate == 5e-5 and htnet.RECIPE.batch_size == 256


@pytest.mark.parametrize("protocol", ["loso", "lodo"])
def test_baseline_folds_never_share_a_subject_or_source(bench, monkeypatch, protocol):
    import baseline_training
    import ststnet

    seen = []

    def spy(build_model, inputs, labels, train, test, recipe, seed):
        seen.append((train, test))
        return np.zeros(len(test), dtype=int), np.zeros(len(test), dtype=int)

    monkeypatch.setattr(baseline_training, "train_fold", spy)
    maps, labels = tiny_data()
    _, _, folds, _ = baseline_training.run_protocol(ststnet.STSTNet, maps, labels, KEYS, protocol,
                                                    ststnet.RECIPE, 0)
    assert len(seen) == (6 if protocol == "loso" else 2)
    group = (lambda key: key) if protocol == "loso" else source_of
    for train, test in seen:
        assert not {group(KEYS[i]) for i in train} & {group(KEYS[i]) for i in test}
        assert len(train) + len(test) == len(KEYS)
    assert folds == [group(key) for key in KEYS]  # every row predicted by the fold that held it out


def test_train_fold_keeps_final_and_test_selected_predictions(bench):
    import ststnet
    from baseline_training import train_fold

    maps, labels = tiny_data()
    train, test = np.arange(12), np.arange(12, 24)
    final, selected = train_fold(ststnet.STSTNet, maps, labels, train, test, ststnet.RECIPE.with_epochs(3), 0)
    assert final.shape == selected.shape == (12,)
    truth = labels[test].numpy()
    assert (selected == truth).mean() >= (final == truth).mean()  # the best epoch is at least the last


def test_a_seed_fixes_the_whole_training_run(bench):
    from baseline_training import fit

    baseline = bench.BASELINES["offapexnet"]
    maps, labels = tiny_data()
    inputs, recipe = baseline.inputs(maps), baseline.recipe.with_epochs(2)
    first = fit(baseline.build, inputs, labels, np.arange(16), recipe, 3)
    torch.rand(5)  # the global generator's state before a run (initialisation included) must not matter
    again = fit(baseline.build, inputs, labels, np.arange(16), recipe, 3)
    other = fit(baseline.build, inputs, labels, np.arange(16), recipe, 4)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


@pytest.mark.slow
def test_leaderboard_smoke_run_states_its_budget(tmp_path, run_benchmark):
    data = precomputed_tree(tmp_path / "pre")
    output = tmp_path / "leaderboard.json"
    arguments = ["--data_dir", data, "--seeds", "1", "--models", "mmmer,linear,ststnet", "--protocols", "lodo",
                 "--epochs", "ststnet=2", "--processes", "1", "--work_dir", tmp_path / "work", "--output", output,
                 "--train_args", f"--epochs 1 --batch_size 4 --config_overrides {TINY_FLOW_OVERRIDES}"]
    code, stdout, stderr = run_benchmark("leaderboard.py", *arguments)
    assert code == 0, stderr[-3000:]
    report = json.loads(output.read_text())
    sources = {"casme2", "smic", "samm", "other"}
    assert list(report["summary"]) == ["lodo"]  # LOSO's folds are tested above, without a trainer run
    for model in ("mmmer", "linear", "ststnet"):
        entry = report["summary"]["lodo"][model]
        assert {"uf1", "uar", "accuracy", "per_dataset"} <= set(entry["mean"])
        assert set(entry["std"]["per_dataset"]) == sources
    assert all(set(run["final"]["per_fold"]) == sources for run in report["runs"])  # one fold per source
    assert "| ststnet | 1 | 2 / 800 (reduced) |" in stdout
    assert "test-selected pooled UF1 (papers' protocol, not a result)" in stdout
    code, _, stderr = run_benchmark("leaderboard.py", *arguments)
    assert code != 0 and "already exists" in stderr  # earlier results are never overwritten
