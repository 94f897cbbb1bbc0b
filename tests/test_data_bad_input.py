"""Bad input on fixture trees: each problem stops with a message that names it, or is skipped on request."""

import shutil

import pytest
from test_data_fixtures import (
    CASME2_HEADER,
    CASME2_ROWS,
    CASME2_SHEET,
    PRECOMPUTED_HEADER,
    PRECOMPUTED_ROWS,
    casme2_tree,
    precomputed_tree,
)

from hf_mmmer.data import AnnotationWarning, load_me_dataset

GOOD_ROWS = CASME2_ROWS[:3]  # rows without quirks


def load_casme2(tmp_path, data_dir, **kwargs):
    return load_me_dataset("casme2", data_dir=data_dir, cache_dir=tmp_path / "cache", **kwargs)


def test_missing_data_dir_says_what_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data_dir was given.*CASME2-coding"):
        load_casme2(tmp_path, None)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_casme2(tmp_path, tmp_path / "nowhere")


def test_missing_annotation_sheet_names_the_expected_file(tmp_path):
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    (data_dir / CASME2_SHEET).unlink()
    with pytest.raises(FileNotFoundError, match=r"'CASME2-coding-\*\.xlsx' in .*casme2"):
        load_casme2(tmp_path, data_dir)


def test_missing_frame_folders_are_named(tmp_path):
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    shutil.rmtree(data_dir / "Cropped")
    with pytest.raises(FileNotFoundError, match="Cropped/ or CASME2_RAW_selected/"):
        load_casme2(tmp_path, data_dir)


def test_renamed_column_is_named(tmp_path):
    header = ["Apex" if name == "ApexFrame" else name for name in CASME2_HEADER]
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS, header=header)
    with pytest.raises(ValueError, match=r"missing columns \['ApexFrame'\]"):
        load_casme2(tmp_path, data_dir)


def test_missing_frames_error_lists_them_or_skip_reports_the_count(tmp_path):
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    shutil.rmtree(data_dir / "Cropped" / "sub01" / "EP03_02")
    (data_dir / "Cropped" / "sub02" / "EP01_11f" / "reg_img20.jpg").unlink()  # its onset frame
    with pytest.raises(FileNotFoundError, match=r"2 samples with missing files: sub01_EP03_02 .*sub02_EP01_11f "
                                                r"\(onset frame 20.*skip_missing=True"):
        load_casme2(tmp_path, data_dir)
    with pytest.warns(AnnotationWarning, match="skipped 2 samples with missing files"):
        ds = load_casme2(tmp_path, data_dir, skip_missing=True)
    assert ds["sample_id"] == ["sub01_EP02_01f"]


def test_apex_outside_onset_offset_is_found_again_and_reported(tmp_path):
    rows = [GOOD_ROWS[0][:3] + (60,) + GOOD_ROWS[0][4:]] + GOOD_ROWS[1:]
    data_dir = casme2_tree(tmp_path / "casme2", rows=rows)
    with pytest.warns(AnnotationWarning, match=r"1 sample fixed \(apex outside onset..offset\): sub01_EP02_01f"):
        ds = load_casme2(tmp_path, data_dir)
    row = ds.remove_columns(["onset", "apex"])[0]
    assert row["apex_source"] == "spotted" and 46 < row["apex_frame"] <= 52
    spotted = row["apex_frame"]
    assert row["fixes"] == [f"apex outside onset..offset (onset 46, apex 60, offset 52): spotted frame {spotted}"]


def test_unknown_emotions_are_named(tmp_path):
    rows = GOOD_ROWS + [("03", "EP09_01", 1, 3, 6, "12", "Joy", 6)]
    with pytest.raises(ValueError, match=r"unknown emotions \['joy'\]"):
        load_casme2(tmp_path, casme2_tree(tmp_path / "casme2", rows=rows))


def test_duplicate_sample_ids_are_named(tmp_path):
    rows = GOOD_ROWS + [(1, "EP02_01f", 46, 49, 52, "12", "happiness", 52)]  # '01' and 1 are the same subject
    with pytest.raises(ValueError, match=r"duplicate sample ids sub01_EP02_01f"):
        load_casme2(tmp_path, casme2_tree(tmp_path / "casme2", rows=rows))


def test_samples_csv_paths_that_do_not_exist(tmp_path):
    data_dir = precomputed_tree(tmp_path / "pre", write_images=False)
    with pytest.raises(FileNotFoundError, match=r"8 samples with missing files: sub01_EP02_01f \(not found: "
                                                r"flow/casme2_sub01_EP02_01f.png, apex/casme2_sub01_EP02_01f.jpg\)"):
        load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path)
    precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:2])
    (data_dir / "samples.csv").write_text(
        (data_dir / "samples.csv").read_text() + "casme2,sub09,EP01_01,0,negative,flow/gone.png,apex/gone.jpg\n"
    )
    with pytest.warns(AnnotationWarning, match="skipped 1 sample with missing files: sub09_EP01_01"):
        ds = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path, skip_missing=True)
    assert len(ds) == 2


def test_precomputed_csv_problems_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected samples.csv in"):
        load_me_dataset("precomputed", data_dir=tmp_path, cache_dir=tmp_path)
    renamed = precomputed_tree(tmp_path / "renamed", header=PRECOMPUTED_HEADER.replace("label_name", "class"))
    with pytest.raises(ValueError, match=r"missing columns \['label_name'\]"):
        load_me_dataset("precomputed", data_dir=renamed, cache_dir=tmp_path)
    unknown = precomputed_tree(tmp_path / "unknown", rows=PRECOMPUTED_ROWS[:1] + [("smic", "s01", "x", 3, "fear")])
    with pytest.raises(ValueError, match=r"unknown label names \['fear'\]"):
        load_me_dataset("precomputed", data_dir=unknown, cache_dir=tmp_path)
    disagree = precomputed_tree(tmp_path / "disagree", rows=[("smic", "s01", "x", 2, "negative")])
    with pytest.raises(ValueError, match="label and label_name disagree.*x: 2 vs negative"):
        load_me_dataset("precomputed", data_dir=disagree, cache_dir=tmp_path)
    duplicated = precomputed_tree(tmp_path / "dup", rows=PRECOMPUTED_ROWS[:2] + PRECOMPUTED_ROWS[:1])
    with pytest.raises(ValueError, match="duplicate sample ids sub01_EP02_01f"):
        load_me_dataset("precomputed", data_dir=duplicated, cache_dir=tmp_path)
