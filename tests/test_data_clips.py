"""CASME II, SAMM and SMIC builders on fixture trees that mimic their real layouts and quirks."""

import pytest
from test_data_fixtures import CASME2_COUNTS, SAMM_COUNTS, SMIC_CLIPS, casme2_tree, samm_tree, smic_tree

from hf_mmmer.data import THREE_CLASSES, AnnotationWarning, load_me_dataset

CLIP_COLUMNS = {"sample_id", "subject", "source_dataset", "label", "emotion", "onset", "apex", "onset_frame",
                "apex_frame", "offset_frame", "apex_source", "action_units", "frames", "fixes"}


def rows_by_id(dataset):
    return {row["sample_id"]: row for row in dataset.remove_columns(["onset", "apex"])}


@pytest.mark.parametrize("config", ["3class", "5class"])
def test_casme2_counts_features_and_quirks(tmp_path, config):
    with pytest.warns(AnnotationWarning) as caught:
        ds = load_me_dataset("casme2", data_dir=casme2_tree(tmp_path / "casme2"), config=config,
                             cache_dir=tmp_path / "cache")
    assert len(ds) == CASME2_COUNTS[config]
    assert CLIP_COLUMNS <= set(ds.column_names)
    if config == "3class":
        assert ds.features["label"].names == list(THREE_CLASSES)
    rows = rows_by_id(ds)
    first = rows["sub01_EP02_01f"]
    assert (first["onset_frame"], first["apex_frame"], first["offset_frame"]) == (46, 49, 52)
    assert first["apex_source"] == "annotated" and first["fixes"] == []
    assert first["frames"][0].endswith("Cropped/sub01/EP02_01f/reg_img46.jpg") and len(first["frames"]) == 7
    assert ds[0]["onset"].size == (48, 48)
    assert rows["sub02_EP01_11f"]["subject"] == "sub02"  # numeric subject cell, zero-padded
    # the three quirks of the real release: each fixed, recorded in the row and warned about with a count
    assert rows["sub04_EP12_01f"]["apex_source"] == "spotted"
    assert 30 < rows["sub04_EP12_01f"]["apex_frame"] <= 36
    assert rows["sub05_EP09_05f"]["apex_source"] == "spotted" and rows["sub05_EP09_05f"]["apex_frame"] > 5
    clipped = rows["sub16_EP01_08"]
    assert clipped["offset_frame"] == 96 and clipped["apex_frame"] == 93 and "110" in clipped["fixes"][0]
    messages = " | ".join(str(w.message) for w in caught)
    for kind in ("apex not annotated", "apex equals onset", "offset past the frames on disk"):
        assert f"1 sample fixed ({kind})" in messages
    with pytest.warns(AnnotationWarning) as again:  # from the cache: the same notes, said again
        load_me_dataset("casme2", data_dir=tmp_path / "casme2", config=config, cache_dir=tmp_path / "cache")
    annotation_notes = lambda warned: sorted(  # noqa: E731
        str(w.message) for w in warned if issubclass(w.category, AnnotationWarning))
    assert annotation_notes(again) == annotation_notes(caught)


def test_casme2_raw_frames_and_frame_choice(tmp_path):
    data_dir = casme2_tree(tmp_path / "casme2", frames_root="CASME2_RAW_selected")
    with pytest.warns(AnnotationWarning):
        ds = load_me_dataset("casme2", data_dir=data_dir, cache_dir=tmp_path / "cache", apex_spotting="middle")
    assert ds[0]["frames"][0].endswith("CASME2_RAW_selected/sub01/EP02_01f/img46.jpg")
    assert set(ds["apex_source"]) == {"annotated", "middle"}
    with pytest.raises(FileNotFoundError, match="Cropped/"):
        load_me_dataset("casme2", data_dir=data_dir, cache_dir=tmp_path / "cache", frames="cropped")


@pytest.mark.parametrize("config", ["3class", "5class"])
def test_samm_counts_preamble_and_apex(tmp_path, config):
    with pytest.warns(AnnotationWarning, match=r"samm: 1 sample fixed \(apex not annotated\): 011_011_2_1"):
        ds = load_me_dataset("samm", data_dir=samm_tree(tmp_path / "samm"), config=config, cache_dir=tmp_path / "cache")
    assert len(ds) == SAMM_COUNTS[config]
    rows = rows_by_id(ds)
    assert rows["006_006_1_2"]["subject"] == "006"
    assert rows["006_006_1_2"]["action_units"] == "R12 or 12"
    assert ds.features["label"].int2str(rows["006_006_1_3"]["label"]) == ("negative" if config == "3class" else "anger")
    assert ("007_007_6_1" in rows) == (config == "5class")  # "Other" only in the 5 classes


def test_smic_folders_middle_apex_and_ids(tmp_path):
    ds = load_me_dataset("smic", data_dir=smic_tree(tmp_path / "smic"), cache_dir=tmp_path / "cache")
    assert len(ds) == len(SMIC_CLIPS)  # non_micro is not read
    rows = rows_by_id(ds)
    assert set(rows) == {"s01_s01_ne_01", "s01_s01_po_01", "s03_s03_sur_01", "s20_s20_ne_02"}
    gap = rows["s03_s03_sur_01"]  # frames 1 2 3 5 6 7 9: onset first, offset last, middle of what is there
    assert (gap["onset_frame"], gap["apex_frame"], gap["offset_frame"]) == (1, 5, 9)
    assert set(ds["apex_source"]) == {"middle"}
    assert ds.features["label"].int2str(rows["s03_s03_sur_01"]["label"]) == "surprise"


def test_smic_flow_spotting_option(tmp_path):
    ds = load_me_dataset("smic", data_dir=smic_tree(tmp_path / "smic"), cache_dir=tmp_path / "cache",
                         apex_spotting="flow_magnitude")
    assert set(ds["apex_source"]) == {"spotted"}
    for row in rows_by_id(ds).values():
        assert row["onset_frame"] < row["apex_frame"] <= row["offset_frame"]


def test_smic_folders_as_archives_and_copies_leave_them(tmp_path):
    """macOS and notebook debris is not a clip; frames spelled .BMP are frames; a clip filed under another
    subject or class than its name says is reported; a damaged frame is named when the apex is spotted."""
    root = smic_tree(tmp_path / "smic")
    hs = root / "SMIC_all_cropped" / "HS"
    (hs / "__MACOSX" / "micro" / "negative" / "._s1_ne_01").mkdir(parents=True)
    (hs / "s1" / "micro" / "negative" / ".ipynb_checkpoints").mkdir()
    for frame in (hs / "s20" / "micro" / "negative" / "s20_ne_02").iterdir():
        frame.rename(frame.with_suffix(".BMP"))
    misfiled = hs / "s3" / "micro" / "surprise" / "s1_ne_07"
    misfiled.mkdir()
    for frame in (hs / "s1" / "micro" / "negative" / "s1_ne_01").iterdir():
        (misfiled / frame.name).write_bytes(frame.read_bytes())
    misfiled_warning = r"1 clip name\(s\) name another subject or class .*: s3/micro/surprise/s1_ne_07"
    with pytest.warns(AnnotationWarning, match=misfiled_warning):
        ds = load_me_dataset("smic", data_dir=root, cache_dir=tmp_path / "cache")
    rows = rows_by_id(ds)
    assert set(rows) == {"s01_s01_ne_01", "s01_s01_po_01", "s03_s03_sur_01", "s20_s20_ne_02", "s03_s03_ne_07"}
    assert (rows["s20_s20_ne_02"]["onset_frame"], rows["s20_s20_ne_02"]["offset_frame"]) == (3, 9)
    damaged = hs / "s1" / "micro" / "positive" / "s1_po_01" / "reg_image000012.bmp"
    damaged.write_bytes(b"")
    with pytest.warns(AnnotationWarning, match=misfiled_warning), pytest.raises(
            ValueError, match=r"reg_image000012.bmp: not a readable image .*1 of 6 unreadable"):
        load_me_dataset("smic", data_dir=root, cache_dir=tmp_path / "cache", apex_spotting="flow_magnitude")


def test_two_files_of_one_frame_number_are_an_error_and_case_does_not_matter(tmp_path):
    from hf_mmmer.data.clips import list_frames

    clip = tmp_path / "clip"
    clip.mkdir()
    for name in ("reg_img1.jpg", "reg_img2.JPG", "._reg_img3.jpg"):
        (clip / name).write_bytes(b"")
    assert list(list_frames(clip, r"reg_img(\d+)\.jpg")) == [1, 2]
    (clip / "reg_img2.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"frame 2 twice \(reg_img2.JPG, reg_img2.jpg\)"):
        list_frames(clip, r"reg_img(\d+)\.jpg")


def test_the_cache_key_walks_linked_folders_once_and_ends_at_a_loop(tmp_path):
    from hf_mmmer.data.loading import files_under

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / "up").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "b").symlink_to(tmp_path / "a", target_is_directory=True)
    assert files_under(tmp_path) == [tmp_path / "a" / "x.txt"]


def test_source_folders_outside_data_dir_are_named_for_the_cache_key(tmp_path):
    """`source_dirs` under data_dir are walked with it; one outside it (absolute, `../`, or linked from inside
    to elsewhere, by its real path) is added to what the cache key covers."""
    from hf_mmmer.data.loading import folders_outside

    root, elsewhere = tmp_path / "megc", tmp_path / "elsewhere"
    (root / "SMIC").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "CASME2").symlink_to(elsewhere, target_is_directory=True)
    dirs = {"casme2": "CASME2", "smic": "SMIC", "samm": str(elsewhere), "other": "../elsewhere"}
    assert folders_outside(root, {"source_dirs": dirs}) == [
        str(root / "CASME2"), str(elsewhere), str(root / "../elsewhere")]
    assert folders_outside(None, {"source_dirs": dirs}) == [] and folders_outside(root, {}) == []
