"""The MEGC2019 composite: the mapping table, the shipped sample list, and the builder on a fixture tree.

The expected numbers are counted from the public composite label table: per-emotion counts of CASME II
(255-row sheet) and SAMM, and per-class counts of the 442-sample composite.
"""

import collections
import shutil

import pytest
from test_data_fixtures import megc2019_tree

from hf_mmmer.data import COMPOSITE_MAPPING, THREE_CLASSES, AnnotationWarning, load_me_dataset
from hf_mmmer.data.labels import CASME2_FIVE_CLASSES, SAMM_FIVE_CLASSES, five_class_map
from hf_mmmer.data.megc2019 import SAMPLE_LIST, read_sample_list

CASME2_EMOTIONS = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25, "sadness": 7,
                   "fear": 2}
SAMM_EMOTIONS = {"anger": 57, "contempt": 12, "happiness": 26, "other": 26, "surprise": 15, "disgust": 9, "fear": 8,
                 "sadness": 6}
COMPOSITE = {  # source: (negative, positive, surprise, subjects)
    "casme2": (88, 32, 25, 24),
    "smic": (70, 51, 43, 16),
    "samm": (92, 26, 15, 28),
}
ABSENT_SUBJECTS = {
    "casme2": {"sub10", "sub18"},
    "smic": {"s07", "s10", "s16", "s17"},
    "samm": {"008", "025", "027", "029"},
}
ALL_SUBJECTS = {
    "casme2": {f"sub{i:02d}" for i in range(1, 27)},
    "smic": {f"s{i:02d}" for i in range(1, 21)},
    "samm": {f"{i:03d}" for i in range(6, 38)},
}


def mapped_counts(emotion_counts, mapping):
    counts = collections.Counter()
    for emotion, number in emotion_counts.items():
        counts[mapping[emotion]] += number
    return counts


def test_mapping_table():
    assert THREE_CLASSES == ("negative", "positive", "surprise")
    assert set(COMPOSITE_MAPPING) == {"casme2", "smic", "samm"}
    for mapping in COMPOSITE_MAPPING.values():
        assert set(mapping.values()) - {None} == set(THREE_CLASSES)
    casme2 = mapped_counts(CASME2_EMOTIONS, COMPOSITE_MAPPING["casme2"])
    # 147 CASME II candidates; the sample list keeps 145 (two negatives fewer)
    assert (casme2["negative"], casme2["positive"], casme2["surprise"], casme2[None]) == (90, 32, 25, 108)
    assert casme2["negative"] - 2 == COMPOSITE["casme2"][0]
    samm = mapped_counts(SAMM_EMOTIONS, COMPOSITE_MAPPING["samm"])
    assert (samm["negative"], samm["positive"], samm["surprise"], samm[None]) == COMPOSITE["samm"][:3] + (26,)
    assert COMPOSITE_MAPPING["smic"] == {name: name for name in THREE_CLASSES}
    assert {e for e, c in COMPOSITE_MAPPING["casme2"].items() if c is None} == {"others", "fear", "sadness"}
    assert {e for e, c in COMPOSITE_MAPPING["samm"].items() if c is None} == {"other"}


def test_five_class_maps():
    casme2 = five_class_map("casme2", CASME2_FIVE_CLASSES)
    # all but sadness and fear of the 255-row sheet (the "247 in common use" often quoted is one more than
    # the per-emotion counts give; the counts are what the mapping acts on)
    assert sum(n for e, n in CASME2_EMOTIONS.items() if casme2[e]) == 255 - 7 - 2
    samm = five_class_map("samm", SAMM_FIVE_CLASSES)
    assert sum(n for e, n in SAMM_EMOTIONS.items() if samm[e]) == 136  # all but disgust, fear and sadness


def test_shipped_sample_list():
    listed = read_sample_list(SAMPLE_LIST)
    assert len(listed) == 442 and listed["sample_id"].is_unique
    assert listed.groupby("source_dataset").size().to_dict() == {"casme2": 145, "smic": 164, "samm": 133}
    subjects = listed.groupby("source_dataset")["subject"].agg(set).to_dict()
    assert sum(len(s) for s in subjects.values()) == 68
    for source, (*_, number) in COMPOSITE.items():
        assert len(subjects[source]) == number
        assert subjects[source] == ALL_SUBJECTS[source] - ABSENT_SUBJECTS[source]
    smic = listed["sample_id"][listed["source_dataset"] == "smic"]
    smic_classes = collections.Counter(name.split("_")[2] for name in smic)
    assert (smic_classes["ne"], smic_classes["po"], smic_classes["sur"]) == COMPOSITE["smic"][:3]


def test_sample_list_rejects_foreign_names(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("sub01_EP02_01f\nclip-7\n")
    with pytest.raises(ValueError, match="'clip-7' is not a sample id"):
        read_sample_list(path)


def test_builder_keeps_listed_samples_and_reports_the_rest(tmp_path):
    with pytest.warns(AnnotationWarning) as caught:
        ds = load_me_dataset("megc2019", data_dir=megc2019_tree(tmp_path / "megc"), cache_dir=tmp_path)
    assert sorted(ds["sample_id"]) == [
        "006_006_1_2", "006_006_1_3", "007_007_5_3", "011_011_2_1", "011_011_2_2",
        "s01_s01_ne_01", "s01_s01_po_01", "s03_s03_sur_01", "s20_s20_ne_02",
        "sub01_EP02_01f", "sub02_EP01_11f", "sub16_EP01_08",
    ]
    assert ds.features["label"].names == list(THREE_CLASSES)
    assert collections.Counter(ds["source_dataset"]) == {"casme2": 3, "smic": 4, "samm": 5}
    messages = " | ".join(str(w.message) for w in caught)
    # 007_007_6_1 is listed but "Other" in this sheet: not found among the composite classes
    for source, absent in (("casme2", 142), ("smic", 160), ("samm", 128)):
        assert f"megc2019: {absent} listed {source} samples not found" in messages


def test_builder_takes_the_sample_list_as_data(tmp_path):
    sample_list = tmp_path / "mine.txt"
    sample_list.write_text("sub01_EP02_01f\ns03_s03_sur_01\n")
    ds = load_me_dataset("megc2019", data_dir=megc2019_tree(tmp_path / "megc"), cache_dir=tmp_path,
                         sample_list=str(sample_list))
    assert sorted(ds["sample_id"]) == ["s03_s03_sur_01", "sub01_EP02_01f"]


def test_source_dirs_rename_some_sources_and_refuse_unknown_ones(tmp_path):
    """A source left out of source_dirs keeps its default folder; a misspelt one is named, not a KeyError."""
    sample_list = tmp_path / "mine.txt"
    sample_list.write_text("sub01_EP02_01f\ns03_s03_sur_01\n")
    root = megc2019_tree(tmp_path / "megc")
    (root / "CASME2").rename(root / "casme_ii")
    ds = load_me_dataset("megc2019", data_dir=root, cache_dir=tmp_path / "a", sample_list=str(sample_list),
                         source_dirs={"casme2": "casme_ii"})
    assert sorted(ds["sample_id"]) == ["s03_s03_sur_01", "sub01_EP02_01f"]
    with pytest.raises(ValueError, match=r"megc2019: source_dirs names unknown sources \['sam'\]; the sources are "
                                         r"\['casme2', 'samm', 'smic'\]"):
        load_me_dataset("megc2019", data_dir=root, cache_dir=tmp_path / "b", source_dirs={"sam": "SAMM"})


def test_the_cache_follows_linked_and_outside_source_folders(tmp_path):
    """An edited sheet in a source folder reached through a symbolic link, or named by a `source_dirs` path
    outside data_dir (absolute or `../`), rebuilds the dataset instead of serving the old labels."""
    from openpyxl import load_workbook
    from test_data_fixtures import CASME2_SHEET, casme2_tree

    sample_list = tmp_path / "mine.txt"
    sample_list.write_text("sub01_EP02_01f\ns03_s03_sur_01\n")

    def label_of_the_casme_sample(root, cache, **options):
        ds = load_me_dataset("megc2019", data_dir=root, cache_dir=tmp_path / cache, sample_list=str(sample_list),
                             **options)
        return ds.features["label"].names[ds["label"][ds["sample_id"].index("sub01_EP02_01f")]]

    def relabel(casme):
        workbook = load_workbook(casme / CASME2_SHEET)
        workbook.active["I2"] = "disgust" if workbook.active["I2"].value == "happiness" else "happiness"
        workbook.save(casme / CASME2_SHEET)

    linked, elsewhere = casme2_tree(tmp_path / "linked" / "casme"), casme2_tree(tmp_path / "elsewhere" / "casme")
    root = megc2019_tree(tmp_path / "megc")
    shutil.rmtree(root / "CASME2")
    (root / "CASME2").symlink_to(linked, target_is_directory=True)
    outside = [{"casme2": str(elsewhere), "smic": "SMIC", "samm": "SAMM"},
               {"casme2": "../elsewhere/casme", "smic": "SMIC", "samm": "SAMM"}]
    assert label_of_the_casme_sample(root, "a") == "positive"
    assert [label_of_the_casme_sample(root, f"b{i}", source_dirs=dirs) for i, dirs in enumerate(outside)] == [
        "positive", "positive"]
    relabel(elsewhere)  # nothing under data_dir changes: only the outside folders tell
    assert [label_of_the_casme_sample(root, f"b{i}", source_dirs=dirs) for i, dirs in enumerate(outside)] == [
        "negative", "negative"]
    assert label_of_the_casme_sample(root, "a") == "positive"
    relabel(linked)
    assert label_of_the_casme_sample(root, "a") == "negative"  # the first row's emotion: happiness before
