"""The precomputed builder on a samples.csv tree with three source datasets."""

import collections

from test_data_fixtures import PRECOMPUTED_ROWS, precomputed_tree

from hf_mmmer.data import THREE_CLASSES, load_me_dataset, subject_keys


def test_precomputed_rows_features_and_sources(tmp_path):
    ds = load_me_dataset("precomputed", data_dir=precomputed_tree(tmp_path / "pre"), cache_dir=tmp_path)
    assert len(ds) == len(PRECOMPUTED_ROWS)
    assert set(ds.column_names) == {"sample_id", "subject", "source_dataset", "label", "flow", "apex"}
    assert ds.features["label"].names == list(THREE_CLASSES)
    assert collections.Counter(ds["source_dataset"]) == {"casme2": 3, "smic": 2, "samm": 2, "other": 1}
    row = ds[0]
    assert row["sample_id"] == "sub01_EP02_01f" and row["label"] == 1
    assert row["flow"].size == (28, 28) and row["apex"].size == (32, 32)
    # subject ids are text ("006" stays "006"), and "006" of samm and of other are different subjects
    assert "samm/006" in subject_keys(ds) and "other/006" in subject_keys(ds)
    assert len(set(subject_keys(ds))) == 7


def test_a_relative_data_dir_gives_paths_that_outlive_a_change_of_folder(tmp_path, monkeypatch):
    precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:2])
    monkeypatch.chdir(tmp_path)
    ds = load_me_dataset("precomputed", data_dir="pre", cache_dir=tmp_path / "cache")
    monkeypatch.chdir(tmp_path.parent)
    assert ds[0]["flow"].size == (28, 28) and ds[0]["apex"].size == (32, 32)
