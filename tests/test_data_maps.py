"""The public MEGC2019 flow maps in both circulating layouts (HTNet clone, STSTNet folders), and training on them."""

import collections
import json

import pytest
from conftest import TINY_FLOW_OVERRIDES
from test_data_fixtures import (
    HTNET_ROWS,
    HTNET_SUBJECTS,
    STSTNET_SAMPLES,
    htnet_tree,
    ststnet_tree,
    write_flow_map,
)

from hf_mmmer.cli import main as cli_main
from hf_mmmer.data import THREE_CLASSES, load_me_dataset, subject_keys
from hf_mmmer.training.cli import train_from_argv as train_main



def load_maps(tmp_path, data_dir, **kwargs):
    return load_me_dataset("megc2019_maps", data_dir=data_dir, cache_dir=tmp_path / "cache", **kwargs)


def test_htnet_clone_gives_the_precomputed_columns_with_apex_faces(tmp_path):
    ds = load_maps(tmp_path, htnet_tree(tmp_path / "HTNet"))
    precomputed_columns = {"sample_id", "subject", "source_dataset", "label", "flow", "apex"}
    assert set(ds.column_names) == precomputed_columns and ds.features["label"].names == list(THREE_CLASSES)
    assert ds["sample_id"] == [f"{sub}_{clip}" for _, sub, clip, _, _ in HTNET_ROWS]
    assert ds["label"] == [label for *_, label, _ in HTNET_ROWS]
    assert collections.Counter(ds["source_dataset"]) == {"casme2": 3, "smic": 3, "samm": 3}
    assert set(subject_keys(ds)) == HTNET_SUBJECTS
    assert ds[3]["flow"].size == (28, 28) and ds[3]["apex"].size == (32, 32)


def test_htnet_subjects_mangled_by_a_spreadsheet_are_spelled_as_the_composite_does(tmp_path):
    rows = [("samm", "6", "006_1_2", 0, "006_006_1_2.jpg"), ("smic", "s3", "s03_po_01", 1, "s03_s3_po_01.jpg")]
    root = htnet_tree(tmp_path / "HTNet", rows=[("samm", "006", *rows[0][2:]), ("smic", "s03", *rows[1][2:])])
    htnet_tree(root, rows=rows)  # same files; the table now says 6 and s3
    ds = load_maps(tmp_path, root)
    assert ds["sample_id"] == ["006_006_1_2", "s03_s03_po_01"] and ds["subject"] == ["006", "s03"]


def test_ststnet_folders_give_a_flow_only_dataset_of_the_test_splits(tmp_path):
    ds = load_maps(tmp_path, ststnet_tree(tmp_path / "three_norm_u_v_os"))
    assert sorted(ds["sample_id"]) == sorted(sample_id for _, sample_id, _ in STSTNET_SAMPLES)
    assert ds["apex"] == [None] * len(STSTNET_SAMPLES)
    by_id = {row["sample_id"]: row for row in ds.remove_columns(["flow", "apex"])}
    assert by_id["sub01_EP02_01f"]["label"] == 1 and by_id["s03_s03_sur_02"]["label"] == 2
    assert {row["source_dataset"] + "/" + row["subject"] for row in by_id.values()} == {
        "casme2/sub01", "casme2/sub02", "smic/s01", "smic/s03", "samm/006", "samm/007"}
    assert ds[0]["flow"].size == (28, 28)


def test_hidden_files_beside_the_maps_are_not_samples(tmp_path):
    """An archive made on macOS puts a `._name.png` (a resource fork, not an image) beside every map."""
    root = ststnet_tree(tmp_path / "maps", samples=STSTNET_SAMPLES[:2])
    for path in list(root.rglob("*.png")):
        path.with_name("._" + path.name).write_bytes(b"\x00\x05\x16\x07 resource fork")
    ds = load_maps(tmp_path, root)
    assert sorted(ds["sample_id"]) == sorted(sample_id for _, sample_id, _ in STSTNET_SAMPLES[:2])


def test_upper_case_extensions_and_hidden_copies_of_the_tree(tmp_path):
    """`.PNG` (as some tools write it) is a map, not silently dropped; a Jupyter `.ipynb_checkpoints` copy of a
    subject folder and macOS's `__MACOSX` are not subjects."""
    root = ststnet_tree(tmp_path / "maps", samples=STSTNET_SAMPLES[:2])
    for path in root.rglob("sub01_EP19_05f .png"):
        path.rename(path.with_suffix(".PNG"))
    for debris in (".ipynb_checkpoints", "__MACOSX"):
        (root / debris / "u_test" / "wrong").mkdir(parents=True)
    assert sorted(load_maps(tmp_path, root)["sample_id"]) == ["sub01_EP02_01f", "sub01_EP19_05f"]


def test_a_name_without_the_space_is_read_too(tmp_path):
    root = ststnet_tree(tmp_path / "maps", samples=STSTNET_SAMPLES[:2])
    for path in root.rglob("* .png"):
        path.rename(path.with_name(path.name.replace(" .png", ".png")))
    assert sorted(load_maps(tmp_path, root)["sample_id"]) == ["sub01_EP02_01f", "sub01_EP19_05f"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: write_flow_map(root / "s01/u_train/1/sub01_EP02_01f .png", seed=99),
         r"s01/u_train/1/sub01_EP02_01f \.png: its pixels differ from .*sub01/u_test/1/sub01_EP02_01f \.png"),
        (lambda root: (root / "006/u_train/1/sub01_EP02_01f .png").rename(root / "006/u_train/0/sub01_EP02_01f .png"),
         r"006/u_train/0/sub01_EP02_01f \.png: label 0, but .*sub01/u_test/1/sub01_EP02_01f \.png has label 1"),
        (lambda root: write_flow_map(root / "006/u_train/2/sub09_EP01_01 .png", seed=1),
         r"006/u_train/2/sub09_EP01_01 \.png: sample sub09_EP01_01 is in no u_test folder"),
        (lambda root: write_flow_map(root / "sub01/u_train/0/sub01_EP19_05f .png", seed=1),
         r"sub01/u_train/0/sub01_EP19_05f \.png: the subject's own sample in its training split"),
        (lambda root: write_flow_map(root / "006/u_test/0/007_007_9_9 .png", seed=1),
         r"006/u_test/0/007_007_9_9 \.png: a map of subject 007 in the test split of 006"),
        (lambda root: write_flow_map(root / "006/u_test/3/006_006_9_9 .png", seed=1),
         r"006/u_test/3: not a label folder"),
        (lambda root: write_flow_map(root / "x01/u_test/0/x01_a .png", seed=1),
         r"x01_a \.png: 'x01_a' is not a sample id of \['casme2', 'smic', 'samm'\]"),
    ],
    ids=["pixels", "label", "absent", "own", "wrong_subject", "label_folder", "unknown_subject"],
)
def test_ststnet_copies_that_disagree_are_named(tmp_path, damage, message):
    root = ststnet_tree(tmp_path / "maps")
    damage(root)
    with pytest.raises(ValueError, match=message):
        load_maps(tmp_path, root)


def test_a_folder_of_neither_layout_says_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither combined_3_class2_for_optical_flow.csv nor subject"):
        load_maps(tmp_path, tmp_path / "empty")


def test_trainer_trains_and_scores_the_flow_only_maps(tmp_path, monkeypatch, capsys):
    """`examples/train.py --dataset megc2019_maps` (its `main`) on STSTNet folders: the default flow-only model
    trains, `hf-mmmer evaluate` scores its final model on the maps, and a texture model is refused by name."""
    monkeypatch.setenv("HF_MMMER_DATASETS_CACHE", str(tmp_path / "cache"))
    data_dir = ststnet_tree(tmp_path / "maps")
    train = ["--dataset", "megc2019_maps", "--data_dir", str(data_dir), "--epochs", "1", "--folds", "1",
             "--batch_size", "4", "--num_threads", "1"]
    metrics = train_main([*train, "--config_overrides", TINY_FLOW_OVERRIDES, "--output_dir", str(tmp_path / "run")])
    assert metrics["num_folds"] == 1 and metrics["n"] == 2  # the first subject in sorted order: casme2/sub01
    capsys.readouterr()
    assert cli_main(["evaluate", "--model", str(tmp_path / "run" / "final_model"), "--dataset", "megc2019_maps",
                     "--data_dir", str(data_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == len(STSTNET_SAMPLES)
    texture = TINY_FLOW_OVERRIDES + ',modalities=["flow","texture"],texture_image_size=28,texture_patch_sizes=[14]'
    with pytest.raises(ValueError, match=r"no apex images \(flow only\), so it cannot feed the texture modality"):
        train_main([*train, "--config_overrides", texture, "--output_dir", str(tmp_path / "texture")])
