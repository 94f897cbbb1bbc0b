"""The evaluation protocols: LOSO as the trainer plans it, leave-one-dataset-out, and `--sources`.

A fold that shares a subject (or, for LODO, a source) between its train and test sides measures
memory, not recognition; these tests pin the folds on tiny precomputed trees with several sources.
"""

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import TINY_FLOW_OVERRIDES
from test_data_fixtures import precomputed_tree

from hf_mmmer.data import held_out_split, load_me_dataset, loso_folds, subject_keys
from hf_mmmer.data.loso import protocol_folds, select_sources, source_of
from hf_mmmer.training.cli import train_from_argv as train_main
from hf_mmmer.training.experiment import plan_folds



@pytest.fixture
def precomputed(tmp_path):
    return precomputed_tree(tmp_path / "pre")


def folds_args(protocol="loso", folds="all", test_subjects=None):
    return SimpleNamespace(protocol=protocol, folds=folds, test_subjects=test_subjects)


def train(data_dir, output_dir, *extra):
    return train_main(["--dataset", "precomputed", "--data_dir", str(data_dir), "--output_dir", str(output_dir),
                       "--epochs", "1", "--batch_size", "4", "--config_overrides", TINY_FLOW_OVERRIDES, "--final_model", "false",
                       "--num_threads", "1", *extra])


def test_trainer_loso_folds_equal_loso_folds(precomputed, tmp_path):
    dataset = load_me_dataset("precomputed", data_dir=precomputed, cache_dir=tmp_path)
    planned = plan_folds(SimpleNamespace(subjects=subject_keys(dataset)), folds_args())
    expected = {key: test["sample_id"] for key, _, test in loso_folds(dataset)}
    assert list(planned) == list(expected) and len(planned) == 7
    for fold, indices in planned.items():
        assert dataset.select(indices)["sample_id"] == expected[fold]


def test_lodo_holds_out_whole_sources_and_never_shares_one():
    keys = ["casme2/sub01", "smic/s01", "casme2/sub02", "samm/006", "smic/s02", "casme2/sub01"]
    folds = protocol_folds(keys, "lodo")
    assert folds == {"casme2": ["casme2/sub01", "casme2/sub02"], "samm": ["samm/006"],
                     "smic": ["smic/s01", "smic/s02"]}
    for source, held_out in folds.items():
        train, test = held_out_split(keys, held_out)
        assert {source_of(keys[i]) for i in test} == {source}
        assert source not in {source_of(keys[i]) for i in train}
        assert len(train) + len(test) == len(keys)
    with pytest.raises(ValueError, match=r"at least two sources; the data has only \['smic'\]"):
        protocol_folds(["smic/s01", "smic/s02"], "lodo")
    with pytest.raises(ValueError, match="'kfold'"):
        protocol_folds(keys, "kfold")


def test_select_sources_and_plan_folds_name_what_is_wrong():
    keys = ["casme2/sub01", "smic/s01", "casme2/sub02"]
    assert select_sources(keys, ["casme2"]).tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"unknown sources \['samm'\]; known sources: \['casme2', 'smic'\]"):
        select_sources(keys, ["smic", "samm"])
    data = SimpleNamespace(subjects=keys)
    lodo = plan_folds(data, folds_args("lodo"))
    assert {fold: sorted(indices.tolist()) for fold, indices in lodo.items()} == {"casme2": [0, 2], "smic": [1]}
    assert list(plan_folds(data, folds_args("lodo", folds="smic"))) == ["smic"]
    with pytest.raises(ValueError, match=r"unknown sources \['sub01'\] for --protocol lodo"):
        plan_folds(data, folds_args("lodo", folds="sub01"))
    with pytest.raises(ValueError, match="--folds 3: the data have only 2 lodo folds"):
        plan_folds(data, folds_args("lodo", folds="3"))


def test_lodo_run_scores_each_held_out_source(precomputed, tmp_path):
    metrics = train(precomputed, tmp_path / "lodo", "--protocol", "lodo", "--sources", "casme2,smic")
    assert metrics["protocol"] == "lodo" and metrics["num_folds"] == 2 and metrics["n"] == 5
    assert set(metrics["per_fold"]) == set(metrics["per_dataset"]) == {"casme2", "smic"}
    assert metrics["per_fold"]["casme2"]["n"] == 3 and metrics["per_fold"]["smic"]["n"] == 2
    table = pd.read_csv(tmp_path / "lodo" / "predictions.csv")
    assert (table["fold"] == table["dataset"]).all()  # each sample predicted by the model that never saw its source
    assert json.loads((tmp_path / "lodo" / "metrics.json").read_text())["per_fold"] == metrics["per_fold"]


def test_sources_restrict_the_run_before_folds_are_planned(precomputed, tmp_path):
    metrics = train(precomputed, tmp_path / "smic", "--sources", "smic")
    assert set(metrics["per_fold"]) == {"smic/s01", "smic/s03"} and set(metrics["per_dataset"]) == {"smic"}
    with pytest.raises(ValueError, match=r"--sources: unknown sources \['casme3'\]; known sources: \["):
        train(precomputed, tmp_path / "bad", "--sources", "casme3")
    with pytest.raises(ValueError, match="at least two sources"):
        train(precomputed, tmp_path / "one", "--sources", "smic", "--protocol", "lodo")
    assert metrics["n"] == 2
