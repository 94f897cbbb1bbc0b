"""Small fixture trees that mimic the layouts of the licensed datasets as released, for the data tests.

Nothing here reads real data: frames are tiny noise textures written with OpenCV, annotation sheets
are written with openpyxl in the releases' column layout (CASME II: nine columns with two unnamed;
SAMM: the table under a preamble). The default trees include the known quirks of the real releases.
This module holds helpers only; the tests are in the other `test_data_*` files.
"""

import zlib
from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

FRAME_SIZE = 48

CASME2_SHEET = "CASME2-coding-20190701.xlsx"
CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                 "Estimated Emotion"]
# (subject cell, filename, onset, apex, offset, action units, emotion, last frame on disk)
CASME2_ROWS = [
    ("01", "EP02_01f", 46, 49, 52, "12", "happiness", 52),
    ("01", "EP03_02", 10, 13, 16, "4", "disgust", 16),
    (2, "EP01_11f", 20, 23, 26, "14", "repression", 26),
    ("04", "EP12_01f", 30, "/", 36, "1+2", "surprise", 36),  # quirk: apex "/"
    ("05", "EP09_05f", 5, 5, 11, "4", "disgust", 11),  # quirk: apex = onset
    ("16", "EP01_08", 90, 93, 110, "4+7", "disgust", 96),  # quirk: annotated past the last frame
    ("03", "EP01_2", 1, 3, 6, "", "others", 6),
    ("03", "EP05_01", 1, 3, 6, "15", "sadness", 6),
]
CASME2_COUNTS = {"3class": 6, "5class": 7}

SAMM_SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
SAMM_PREAMBLE_ROWS = 13
# (subject cell, filename, onset, apex, offset, action units, emotion)
SAMM_ROWS = [
    (6, "006_1_2", 5562, 5566, 5570, "R12 or 12", "Happiness"),
    ("006", "006_1_3", 100, 104, 108, "4", "Anger"),
    ("007", "007_5_3", 200, 203, 207, "R14", "Contempt"),
    ("007", "007_6_1", 300, 302, 305, "7", "Other"),
    (11, "011_2_1", 400, -1, 406, "4+7", "Anger"),  # quirk: negative apex
    ("011", "011_2_2", 500, 503, 506, "1+4", "Fear"),
]
SAMM_COUNTS = {"3class": 5, "5class": 5}

# (subject folder, class folder, clip folder, frame numbers on disk)
SMIC_CLIPS = [
    ("s1", "negative", "s1_ne_01", range(1, 8)),
    ("s1", "positive", "s1_po_01", range(10, 16)),
    ("s3", "surprise", "s3_sur_01", [1, 2, 3, 5, 6, 7, 9]),  # registered clips may miss frames
    ("s20", "negative", "s20_ne_02", range(3, 10)),
]


def write_frames(folder: Path, names, seed: int = 0):
    """Gray noise-texture frames, each shifted one pixel further than the last (so flow has motion)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (FRAME_SIZE, FRAME_SIZE + 16)).astype(np.uint8), (0, 0), 1.5)
    for shift, name in enumerate(names):
        cv2.imwrite(str(folder / name), texture[:, shift % 16 : shift % 16 + FRAME_SIZE])


def write_sheet(path: Path, header, rows, preamble_rows: int = 0):
    sheet_book = Workbook()
    sheet = sheet_book.active
    for index in range(preamble_rows):
        sheet.append([f"preamble line {index}"] if index % 3 == 0 else [])
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    sheet_book.save(path)


def casme2_tree(root: Path, rows=CASME2_ROWS, header=CASME2_HEADER, frames_root: str = "Cropped") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_sheet(root / CASME2_SHEET, header,
                [(s, f, None, on, apex, off, None, au, emo) for s, f, on, apex, off, au, emo, _ in rows])
    for subject, filename, onset, _, _, _, _, last in rows:
        subject_dir = f"sub{int(subject):02d}"
        prefix = "reg_img" if frames_root == "Cropped" else "img"
        write_frames(root / frames_root / subject_dir / filename, [f"{prefix}{n}.jpg" for n in range(onset, last + 1)])
    return root


def samm_tree(root: Path, rows=SAMM_ROWS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_sheet(root / SAMM_SHEET, SAMM_HEADER,
                [(s, f, "1_1", on, apex, off, off - on, "Micro - 1/2", au, emo, "1", None)
                 for s, f, on, apex, off, au, emo in rows],
                preamble_rows=SAMM_PREAMBLE_ROWS)
    for subject, filename, onset, _, offset, _, _ in rows:
        subject_dir = f"{int(subject):03d}"
        write_frames(root / "SAMM_CROP" / subject_dir / filename,
                     [f"{subject_dir}_{n:05d}.jpg" for n in range(onset, offset + 1)])
    return root


def smic_tree(root: Path, clips=SMIC_CLIPS) -> Path:
    hs = root / "SMIC_all_cropped" / "HS"
    for subject, emotion, clip, numbers in clips:
        write_frames(hs / subject / "micro" / emotion / clip, [f"reg_image{n:06d}.bmp" for n in numbers])
    write_frames(hs / "s1" / "non_micro" / "negative" / "s1_ne_99", ["reg_image000001.bmp", "reg_image000002.bmp"])
    return root


def megc2019_tree(root: Path) -> Path:
    casme2_tree(root / "CASME2")
    smic_tree(root / "SMIC")
    samm_tree(root / "SAMM")
    return root


def write_image(path: Path, size: int, channels: int = 3):
    """Random pixels drawn from the file's name: each sample's own (two identical samples are refused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, channels) if channels > 1 else (size, size)
    seed = zlib.crc32(path.name.encode())
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8))


PRECOMPUTED_HEADER = "dataset,subject,sample,label,label_name,flow,apex"
# (dataset, subject, sample, label, label name): three sources, and an id shared by two of them
PRECOMPUTED_ROWS = [
    ("casme2", "sub01", "EP02_01f", 1, "positive"),
    ("casme2", "sub01", "EP19_05f", 0, "negative"),
    ("casme2", "sub02", "EP01_11f", 0, "negative"),
    ("smic", "s01", "s01_ne_01", 0, "negative"),
    ("smic", "s03", "s03_sur_01", 2, "surprise"),
    ("samm", "006", "006_1_2", 1, "positive"),
    ("samm", "007", "007_5_3", 0, "negative"),
    ("other", "006", "x_1", 2, "surprise"),
]


def precomputed_tree(root: Path, rows=PRECOMPUTED_ROWS, header=PRECOMPUTED_HEADER, write_images=True) -> Path:
    lines = [header]
    for dataset, subject, sample, label, name in rows:
        stem = f"{dataset}_{subject}_{sample}"
        lines.append(f"{dataset},{subject},{sample},{label},{name},flow/{stem}.png,apex/{stem}.jpg")
        if write_images:
            write_image(root / "flow" / f"{stem}.png", 28)
            write_image(root / "apex" / f"{stem}.jpg", 32)
    root.mkdir(parents=True, exist_ok=True)
    (root / "samples.csv").write_text("\n".join(lines) + "\n")
    return root


HTNET_HEADER = "dataset,sub,filename_o,label,apex,imagename,sub_filename"
# (dataset, sub cell, filename_o, label, imagename): two subjects of each source, as the public table spells
# them (SMIC's image names keep the unpadded subject)
HTNET_ROWS = [
    ("casme2", "sub01", "EP02_01f", 1, "sub01_EP02_01f.jpg"),
    ("casme2", "sub01", "EP19_05f", 0, "sub01_EP19_05f.jpg"),
    ("casme2", "sub02", "EP11_01", 2, "sub02_EP11_01.jpg"),
    ("smic", "s01", "s01_ne_01", 0, "s01_s1_ne_01.jpg"),
    ("smic", "s03", "s03_po_01", 1, "s03_s3_po_01.jpg"),
    ("smic", "s03", "s03_sur_02", 2, "s03_s3_sur_02.jpg"),
    ("samm", "006", "006_1_2", 0, "006_006_1_2.jpg"),
    ("samm", "007", "007_6_1", 1, "007_007_6_1.jpg"),
    ("samm", "007", "007_7_1", 2, "007_007_7_1.jpg"),
]
HTNET_SUBJECTS = {"casme2/sub01", "casme2/sub02", "smic/s01", "smic/s03", "samm/006", "samm/007"}


def write_flow_map(path: Path, seed: int, channels: int = 3):
    """A 28x28 u/v/strain map with its own pixels (the public maps have a space before `.png`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (28, 28, channels) if channels > 1 else (28, 28)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8))


def htnet_tree(root: Path, rows=HTNET_ROWS, header=HTNET_HEADER, csv_lines=None) -> Path:
    """A clone of HTNet: the label table (cells padded with spaces, as exports leave them), maps, apex faces."""
    root.mkdir(parents=True, exist_ok=True)
    lines = csv_lines or [header] + [f"{d}, {sub} ,{clip},{label},,{image}," for d, sub, clip, label, image in rows]
    (root / "combined_3_class2_for_optical_flow.csv").write_text("\n".join(lines) + "\n")
    for seed, (_, sub, clip, _, image) in enumerate(rows):
        write_flow_map(root / "datasets" / "STSNet_whole_norm_u_v_os" / f"{sub}_{clip} .png", seed)
        write_image(root / "datasets" / "combined_datasets_whole" / image, 32)
    return root


# (subject folder, sample id, label folder)
STSTNET_SAMPLES = [
    ("sub01", "sub01_EP02_01f", "1"),
    ("sub01", "sub01_EP19_05f", "0"),
    ("sub02", "sub02_EP11_01", "2"),
    ("s01", "s01_s01_ne_01", "0"),
    ("s03", "s03_s03_sur_02", "2"),
    ("006", "006_006_1_2", "0"),
    ("007", "007_007_6_1", "1"),
]


def ststnet_tree(root: Path, samples=STSTNET_SAMPLES) -> Path:
    """Per-subject LOSO folders: each subject's maps under its u_test, everyone else's under its u_train."""
    for seed, (subject, sample_id, label) in enumerate(samples):
        for folder, _, _ in samples:
            split = "u_test" if folder == subject else "u_train"
            write_flow_map(root / folder / split / label / f"{sample_id} .png", seed)
    return root
