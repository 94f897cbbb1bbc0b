"""Bad input to the dataset builders and the dataset encoder, on fixture trees.

Each problem stops with one message that names the file, the sample or the cell (or is skipped on
request, with a count); none surfaces as a pandas, zip, PIL or OpenCV traceback.
"""

import shutil

import pytest
from test_data_fixtures import (
    CASME2_HEADER,
    CASME2_ROWS,
    CASME2_SHEET,
    HTNET_HEADER,
    HTNET_ROWS,
    PRECOMPUTED_HEADER,
    PRECOMPUTED_ROWS,
    SAMM_SHEET,
    casme2_tree,
    htnet_tree,
    precomputed_tree,
    samm_tree,
    write_flow_map,
    write_sheet,
)

from hf_mmmer import MMMERImageProcessor
from hf_mmmer.data import AnnotationWarning, load_me_dataset
from hf_mmmer.training.encoding import encode_dataset

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


def test_a_sheet_whose_every_emotion_is_excluded_says_so(tmp_path):
    """Not just "no samples": the reason was only in an INFO log."""
    rows = [row[:6] + ("others",) + row[7:] for row in GOOD_ROWS]
    with pytest.raises(ValueError, match=r"casme2: all 3 samples have emotions outside the class set \(\['others'\]\); "
                                         r"the emotions this config keeps are \['disgust', "):
        load_casme2(tmp_path, casme2_tree(tmp_path / "casme2", rows=rows))


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


def test_images_that_do_not_decode_are_named_before_the_build(tmp_path):
    """`datasets` decodes an image column only when a sample is read; a damaged file must not wait until then."""
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:3])
    flow = data_dir / "flow" / "casme2_sub01_EP02_01f.png"
    flow.write_bytes(flow.read_bytes()[:60])  # a download cut short
    (data_dir / "apex" / "casme2_sub01_EP19_05f.jpg").write_text("not a picture")
    with pytest.raises(FileNotFoundError, match=r"2 samples with images that do not decode: sub01_EP02_01f \(flow "
                                                r".*casme2_sub01_EP02_01f.png: .*\), sub01_EP19_05f \(apex .*jpg: "
                                                r"cannot identify image file.*skip_missing=True"):
        load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")
    with pytest.warns(AnnotationWarning, match="skipped 2 samples with images that do not decode"):
        ds = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache", skip_missing=True)
    assert ds["sample_id"] == [f"{subject}_{sample}" for _, subject, sample, *_ in PRECOMPUTED_ROWS[2:3]]
    assert ds[0]["flow"].size == (28, 28)

    clips = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    (clips / "Cropped" / "sub02" / "EP01_11f" / "reg_img20.jpg").write_bytes(b"")  # its onset frame
    with pytest.raises(FileNotFoundError, match=r"1 sample with images that do not decode: sub02_EP01_11f \(onset "):
        load_casme2(tmp_path, clips)


@pytest.mark.parametrize("row, message", [
    (("casme2", "sub/02", "EP01", 0, "negative"), r"holds '/' .*: casme2/sub/02"),
    (("cas__me2", "sub02", "EP01", 0, "negative"), r"holds '/' \(or a source '__'\).*: cas__me2"),
    (("casme2", "SUB01", "EP01", 0, "negative"), r"differ only in case .*: SUB01 and sub01; spell each"),
    (("CASME2", "sub09", "EP01", 0, "negative"), r"differ only in case .*: CASME2 and casme2"),
])
def test_names_that_would_merge_or_split_folds_are_refused(tmp_path, row, message):
    """A fold's file is source__subject.json: `a__b/c` and `a/b__c` would share one, and `sub01`/`SUB01` would put
    one person in the training and the test side of a fold."""
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:2] + [row])
    with pytest.raises(ValueError, match=message):
        load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")


def test_precomputed_csv_problems_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected samples.csv in"):
        load_me_dataset("precomputed", data_dir=tmp_path, cache_dir=tmp_path.parent / f"{tmp_path.name}-cache")
    renamed = precomputed_tree(tmp_path / "renamed", header=PRECOMPUTED_HEADER.replace("label_name", "class"))
    with pytest.raises(ValueError, match=r"missing columns \['label_name'\]"):
        load_me_dataset("precomputed", data_dir=renamed, cache_dir=tmp_path)
    unknown = precomputed_tree(tmp_path / "unknown", rows=PRECOMPUTED_ROWS[:1] + [("smic", "s01", "x", 3, "fear")])
    with pytest.raises(ValueError, match=r"unknown label names \['fear'\]"):
        load_me_dataset("precomputed", data_dir=unknown, cache_dir=tmp_path)
    disagree = precomputed_tree(tmp_path / "disagree",
                                rows=PRECOMPUTED_ROWS[:1] + [("smic", "s01", "x", 2, "negative")])
    with pytest.raises(ValueError, match=r"label and label_name disagree.*: s01_x \(line 3\): 2 vs negative$"):
        load_me_dataset("precomputed", data_dir=disagree, cache_dir=tmp_path)
    # A blank label cell is not given, and a spreadsheet's 1.0 is 1: label_name decides both.
    agree = precomputed_tree(tmp_path / "agree", rows=[("smic", "s01", "x", "", "negative"),
                                                       ("smic", "s01", "y", "1.0", "positive")])
    assert load_me_dataset("precomputed", data_dir=agree, cache_dir=tmp_path)["label"] == [0, 1]
    duplicated = precomputed_tree(tmp_path / "dup", rows=PRECOMPUTED_ROWS[:2] + PRECOMPUTED_ROWS[:1])
    with pytest.raises(ValueError, match="duplicate sample ids sub01_EP02_01f"):
        load_me_dataset("precomputed", data_dir=duplicated, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"samples\.csv is empty; expected a header line"),
        (PRECOMPUTED_HEADER + "\n", r"samples\.csv has a header line but no samples"),
        (PRECOMPUTED_HEADER + '\ncasme2,sub01,"EP02,1,positive,flow/a.png,apex/a.jpg\n',
         r"samples\.csv is not a readable CSV table \(.*EOF"),
        (PRECOMPUTED_HEADER + "\ncasme2,sub01,EP02_01f,1,positive,,apex/a.jpg\n",
         r"samples\.csv: empty cells \(line 2 flow\)"),
    ],
    ids=["empty", "header_only", "unparsable", "empty_cell"],
)
def test_samples_csv_that_holds_no_usable_table(tmp_path, text, message):
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "samples.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_me_dataset("precomputed", data_dir=tmp_path / "pre", cache_dir=tmp_path / "cache")


def test_samples_csv_cells_padded_with_spaces_are_read(tmp_path):
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:2])
    lines = (data_dir / "samples.csv").read_text().splitlines()
    (data_dir / "samples.csv").write_text("\n".join(", ".join(line.split(",")) + " " for line in lines) + "\n")
    ds = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert ds["sample_id"] == ["sub01_EP02_01f", "sub01_EP19_05f"] and ds["label"] == [1, 0]


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda path: path.write_bytes(b""), "is not a readable .xlsx workbook"),
        (lambda path: path.write_text("Subject,Filename\n01,EP02_01f\n"), "is not a readable .xlsx workbook"),
        (lambda path: path.write_bytes(path.read_bytes()[:500]), r"is not a readable .xlsx workbook \(BadZipFile"),
        (lambda path: __import__("openpyxl").Workbook().save(path), "its first sheet is empty"),
    ],
    ids=["zero_bytes", "text", "truncated", "empty_sheet"],
)
@pytest.mark.parametrize("dataset", ["casme2", "samm"])
def test_annotation_sheets_that_are_not_workbooks_are_named(tmp_path, dataset, write, message):
    data_dir = casme2_tree(tmp_path / "data", rows=GOOD_ROWS) if dataset == "casme2" else samm_tree(tmp_path / "data")
    sheet = data_dir / (CASME2_SHEET if dataset == "casme2" else SAMM_SHEET)
    write(sheet)
    with pytest.raises(ValueError, match=f"{sheet.name} {message}" if "sheet" not in message else message):
        load_me_dataset(dataset, data_dir=data_dir, cache_dir=tmp_path / "cache")


def test_subject_cell_that_is_not_a_subject_names_the_sheet(tmp_path):
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    bob = ("Bob", "EP02_01f", None, 46, 49, 52, None, "12", "happiness")
    write_sheet(data_dir / CASME2_SHEET, CASME2_HEADER, [bob])
    with pytest.raises(ValueError, match=rf"{CASME2_SHEET}: subject 'Bob' is not a subject number"):
        load_casme2(tmp_path, data_dir)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], r"no rows under the header row \(row 1\)"),
        ([("01", None, None, 46, 49, 52, None, "12", "happiness")], r"empty cells \(row 2 Filename\)"),
        ([("01", "EP02_01f", None, 46, 49, 52, None, "12", None),
          (None, "EP03_02", None, 10, 13, 16, None, "4", "disgust")],
         r"empty cells \(row 2 Estimated Emotion, row 3 Subject\)"),
    ],
    ids=["header_only", "empty_filename", "empty_emotion_and_subject"],
)
def test_sheet_without_rows_or_with_empty_key_cells_is_named(tmp_path, rows, message):
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    write_sheet(data_dir / CASME2_SHEET, CASME2_HEADER, rows)
    with pytest.raises(ValueError, match=rf"{CASME2_SHEET}: {message}"):
        load_casme2(tmp_path, data_dir)


def test_empty_sample_list_and_all_samples_skipped_are_named(tmp_path):
    (tmp_path / "list.txt").write_text("\n")
    (tmp_path / "megc").mkdir()
    with pytest.raises(ValueError, match=r"list\.txt: no sample ids"):
        load_me_dataset("megc2019", data_dir=tmp_path / "megc", cache_dir=tmp_path / "cache",
                        sample_list=tmp_path / "list.txt")
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:2], write_images=False)
    with pytest.warns(AnnotationWarning, match="skipped 2 samples"), \
            pytest.raises(ValueError, match="precomputed: no samples in"):
        load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache", skip_missing=True)


def precomputed_dataset(tmp_path, rows=PRECOMPUTED_ROWS[:3]):
    data_dir = precomputed_tree(tmp_path / "pre", rows=rows)
    return data_dir, load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")


PROCESSOR = MMMERImageProcessor(flow_size=28, texture_size=28)


def test_one_channel_flow_image_is_named_by_sample_and_file(tmp_path):
    data_dir = precomputed_tree(tmp_path / "pre", rows=PRECOMPUTED_ROWS[:3])
    write_flow_map(data_dir / "flow" / "casme2_sub02_EP01_11f.png", seed=0, channels=1)
    ds = load_me_dataset("precomputed", data_dir=data_dir, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"sample sub02_EP01_11f \(.*flow/casme2_sub02_EP01_11f\.png.*\): flow .*"
                                         r"has shape \(28, 28\); a flow image must have 3 channels"):
        encode_dataset(ds, PROCESSOR)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data_dir: (data_dir / "apex" / "casme2_sub01_EP19_05f.jpg").unlink(), "No such file"),
        (lambda data_dir: (data_dir / "apex" / "casme2_sub01_EP19_05f.jpg").write_bytes(b"not a jpeg"),
         "cannot identify image file"),
    ],
    ids=["gone", "corrupt"],
)
def test_image_damaged_after_the_build_is_named_by_sample_and_file(tmp_path, damage, message):
    data_dir, ds = precomputed_dataset(tmp_path)
    damage(data_dir)
    with pytest.raises(ValueError, match=rf"sample sub01_EP19_05f \(.*apex/casme2_sub01_EP19_05f\.jpg\): .*{message}"):
        encode_dataset(ds, PROCESSOR)


def test_texture_modality_on_flow_only_data_is_refused(tmp_path):
    _, ds = precomputed_dataset(tmp_path)
    flow_only = ds.map(lambda row: {"apex": None}, features=ds.features)
    data = encode_dataset(flow_only, PROCESSOR, modalities=["flow"])
    assert data.texture is None and data.flow.shape == (3, 3, 28, 28)
    with pytest.raises(ValueError, match="no apex images \\(flow only\\), so it cannot feed the texture modality"):
        encode_dataset(flow_only, PROCESSOR, modalities=["flow", "texture"])
    with pytest.raises(ValueError, match="cannot feed the texture modality"):
        data.model_inputs([0], ["flow", "texture"])
    half = ds.map(lambda row, index: {"apex": None if index == 1 else row["apex"]}, with_indices=True,
                  features=ds.features)
    with pytest.raises(ValueError, match=r"1 of 3 samples have no apex image \(e\.g\. sub01_EP19_05f\)"):
        encode_dataset(half, PROCESSOR)


def load_htnet(tmp_path, root):
    return load_me_dataset("megc2019_maps", data_dir=root, cache_dir=tmp_path / "cache")


CSV_NAME = "combined_3_class2_for_optical_flow.csv"


@pytest.mark.parametrize(
    "lines, message",
    [
        ([], rf"{CSV_NAME} is empty"),
        ([HTNET_HEADER], rf"{CSV_NAME} has a header line but no samples"),
        ([HTNET_HEADER.replace("filename_o", "filename"), "casme2,sub01,EP02_01f,1,,a.jpg,"],
         r"missing columns \['filename_o'\]"),
        ([HTNET_HEADER, "casme3,spNO.1,a,1,,a.jpg,"], r"unknown datasets \['casme3'\]"),
        ([HTNET_HEADER, "casme2,sub01,EP02_01f,4,,a.jpg,"], r"unknown labels \['4'\]"),
        ([HTNET_HEADER, "samm,sub01,EP02_01f,1,,a.jpg,"], rf"{CSV_NAME}: subject 'sub01' is not a subject number"),
        ([HTNET_HEADER, "casme2,sub01,EP02_01f,1,,,"], r"empty cells \(line 2 imagename\)"),
        ([HTNET_HEADER, "casme2,sub01,EP02_01f,1,,a.jpg,", "casme2,1,EP02_01f,1,,a.jpg,"],
         "duplicate sample ids sub01_EP02_01f"),
    ],
    ids=["empty", "header_only", "renamed_column", "unknown_dataset", "unknown_label", "subject_of_another_source",
         "empty_image_name", "duplicate"],
)
def test_htnet_label_table_problems_are_named(tmp_path, lines, message):
    root = htnet_tree(tmp_path / "HTNet", rows=[], csv_lines=lines or [""])
    with pytest.raises(ValueError, match=message):
        load_htnet(tmp_path, root)


def test_htnet_missing_maps_and_faces_are_listed_or_skipped(tmp_path):
    root = htnet_tree(tmp_path / "HTNet")
    (root / "datasets" / "STSNet_whole_norm_u_v_os" / "sub01_EP02_01f .png").unlink()
    (root / "datasets" / "combined_datasets_whole" / "s01_s1_ne_01.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 samples with missing files: sub01_EP02_01f \(not found: "
                                                r"datasets/STSNet_whole_norm_u_v_os/sub01_EP02_01f \.png\), "
                                                r"s01_s01_ne_01 \(not found: datasets/combined_datasets_whole/"):
        load_htnet(tmp_path, root)
    with pytest.warns(AnnotationWarning, match="skipped 2 samples with missing files"):
        ds = load_me_dataset("megc2019_maps", data_dir=root, cache_dir=tmp_path / "cache", skip_missing=True)
    assert len(ds) == len(HTNET_ROWS) - 2


def test_misspelt_builder_argument_is_named_with_the_ones_it_takes(tmp_path):
    with pytest.raises(ValueError, match=r"Casme2: unknown arguments \['skip_mising'\]; it takes \['skip_missing', "):
        load_casme2(tmp_path, casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS), skip_mising=True)


@pytest.mark.parametrize(
    "field, value, message",
    [("num_subjects", 0, "num_subjects must be a positive integer, got 0"),
     ("samples_per_subject", "3", "samples_per_subject must be a positive integer, got '3'"),
     ("num_frames", 1, "num_frames must be an integer >= 2, got 1")],
)
def test_synthetic_sizes_that_make_no_dataset_are_named(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=f"synthetic: {message}"):
        load_me_dataset("synthetic", cache_dir=tmp_path, **{"num_subjects": 2, "samples_per_subject": 3, field: value})


def test_the_annotation_sheet_of_several_is_the_newest_release_said_or_an_error(tmp_path):
    """Two releases: the newer is read, and a warning says so. A backup or a copy beside the sheet: which one
    holds the labels is not guessed."""
    from hf_mmmer.data.annotations import find_file

    for name in ("SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_Micro_FACS_Codes_v10.xlsx", "._SAMM_Micro_FACS_Codes_v99.xlsx"):
        (tmp_path / name).write_bytes(b"")
    with pytest.warns(AnnotationWarning, match="2 releases in .*; reading the newest, SAMM_Micro_FACS_Codes_v10.xlsx"):
        assert find_file(tmp_path, "SAMM_Micro_FACS_Codes_v*.xlsx", "sheet").name == "SAMM_Micro_FACS_Codes_v10.xlsx"

    root = casme2_tree(tmp_path / "casme")
    shutil.copy(root / CASME2_SHEET, root / CASME2_SHEET.replace(".xlsx", "_old.xlsx"))
    with pytest.raises(ValueError, match=r"annotation sheet: 2 files match 'CASME2-coding-\*.xlsx' .*"
                                         r"\(CASME2-coding-20190701.xlsx, CASME2-coding-20190701_old.xlsx\); keep"):
        load_me_dataset("casme2", data_dir=root, cache_dir=tmp_path / "cache")


def test_rows_of_blank_cells_are_dropped_in_sheets_and_csv_tables(tmp_path):
    """Spreadsheet exports end in rows of spaces (.xlsx) or of commas (.csv): not samples, and not errors."""
    data_dir = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    rows = [(s, f, None, on, apex, off, None, au, emo) for s, f, on, apex, off, au, emo, _ in GOOD_ROWS]
    write_sheet(data_dir / CASME2_SHEET, CASME2_HEADER, rows + [(" ",) * 9, ("  ", None, "", None, None, None,
                                                                          None, " ", None)])
    assert len(load_casme2(tmp_path, data_dir)) == len(GOOD_ROWS)

    root = precomputed_tree(tmp_path / "pre")
    with open(root / "samples.csv", "a") as table:
        table.write(",,,,,,\n , , ,,,,\n")
    assert len(load_me_dataset("precomputed", data_dir=root, cache_dir=tmp_path / "cache2")) == len(PRECOMPUTED_ROWS)
    lines = (root / "samples.csv").read_text().splitlines()
    wrong = lines[2].split(",")
    wrong[3] = str((int(wrong[3]) + 1) % 3)  # label disagrees with label_name on the second sample
    (root / "samples.csv").write_text("\n".join([lines[0], lines[1], "", ",".join(wrong), *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{wrong[1]}_{wrong[2]} \(line 4\)"):  # the empty line 3 counts
        load_me_dataset("precomputed", data_dir=root, cache_dir=tmp_path / "cache3")


def test_a_frame_cell_must_be_a_whole_number():
    import pandas as pd

    from hf_mmmer.data.annotations import frame_numbers

    cells = pd.Series(["49.6", 49.0, "/", -1, " 12 ", 7.5, None, "50", "inf", 1e30], dtype=object)
    assert frame_numbers(cells).tolist() == [pd.NA, 49, pd.NA, pd.NA, 12, pd.NA, pd.NA, 50, pd.NA, pd.NA]


def test_a_cache_inside_the_data_folder_is_refused_before_anything_is_written(tmp_path):
    """datasets writes its cache to cache_dir/<dataset name>/: with the data in cache_dir/casme2, inside it."""
    root = casme2_tree(tmp_path / "casme2", rows=GOOD_ROWS)
    before = sorted(path.relative_to(root) for path in root.rglob("*"))
    for cache in (tmp_path, root):
        with pytest.raises(ValueError, match=rf"cache_dir {cache} would put the dataset cache .* inside data_dir"):
            load_me_dataset("casme2", data_dir=root, cache_dir=cache)
    assert sorted(path.relative_to(root) for path in root.rglob("*")) == before
