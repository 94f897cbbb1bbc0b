"""Leave-one-subject-out folds, single-fold builder splits, loading by script path, and cache keys."""

from pathlib import Path

import pytest
from test_data_fixtures import PRECOMPUTED_ROWS, precomputed_tree

from hf_mmmer.data import fold_key, load_me_dataset, loso_folds, select_subjects, subject_keys


@pytest.fixture
def precomputed(tmp_path):
    return load_me_dataset("precomputed", data_dir=precomputed_tree(tmp_path / "pre"), cache_dir=tmp_path)


def test_every_subject_is_one_fold_and_never_on_both_sides(precomputed):
    folds = list(loso_folds(precomputed))
    keys = subject_keys(precomputed)
    assert [key for key, _, _ in folds] == sorted(set(keys))
    tested = []
    for key, train, test in folds:
        assert set(subject_keys(test)) == {key}
        assert key not in subject_keys(train)
        assert len(train) + len(test) == len(precomputed)
        tested += test["sample_id"]
    assert sorted(tested) == sorted(precomputed["sample_id"])


def test_named_subjects(precomputed):
    assert [key for key, _, _ in loso_folds(precomputed, subjects=["casme2/sub02", "s03"])] == [
        "casme2/sub02",
        "smic/s03",
    ]
    assert [key for key, _, _ in loso_folds(precomputed, subjects="s03")] == ["smic/s03"]  # one name, not letters
    assert fold_key("samm", "006") == "samm/006"
    with pytest.raises(ValueError, match=r"ambiguous; name one of \['other/006', 'samm/006'\]"):
        select_subjects(subject_keys(precomputed), ["006"])
    with pytest.raises(ValueError, match=r"unknown subjects \['sub99'\]"):
        next(loso_folds(precomputed, subjects=["sub99"]))


def test_single_fold_as_builder_splits(tmp_path):
    data_dir = precomputed_tree(tmp_path / "pre")
    splits = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path, test_subjects=["casme2/sub01"])
    assert set(splits) == {"train", "test"}
    assert set(subject_keys(splits["test"])) == {"casme2/sub01"}
    assert "casme2/sub01" not in subject_keys(splits["train"])
    assert len(splits["train"]) + len(splits["test"]) == len(PRECOMPUTED_ROWS)
    test = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path, test_subjects=["sub01"], split="test")
    assert test["sample_id"] == splits["test"]["sample_id"]
    alone = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path, test_subjects="sub01", split="test")
    assert alone["sample_id"] == splits["test"]["sample_id"]


def test_script_path_and_changed_data_at_the_same_path(tmp_path):
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:3])
    script = Path(__file__).parents[1] / "dataset_scripts" / "precomputed.py"
    first = load_me_dataset(str(script), data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert len(first) == 3
    precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:5])  # same data_dir string, other data
    assert len(load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")) == 5


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'casme3'"):
        load_me_dataset("casme3")


def test_held_out_split_is_whole_keys_and_refuses_leaks_and_unknowns():
    from hf_mmmer.data import held_out_split

    keys = ["casme2/sub01", "smic/s1", "casme2/sub01", "smic/s2"]
    train, test = held_out_split(keys, ["casme2/sub01"])
    assert test.tolist() == [0, 2] and train.tolist() == [1, 3]
    with pytest.raises(ValueError, match="casme2/sub09"):
        held_out_split(keys, ["casme2/sub09"])
    with pytest.raises(ValueError, match="no training rows"):
        held_out_split(keys, set(keys))
