"""The synthetic generator: deterministic, distinct faces, class only in the motion, learnable from flow."""

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from hf_mmmer.data import THREE_CLASSES, load_me_dataset, loso_folds, render_clip
from hf_mmmer.data.synthetic_clips import class_motion, face_rng, make_face


def test_render_clip_shapes_and_determinism():
    clip = render_clip(seed=0, subject=1, index=2)
    assert len(clip.frames) == 9 and 2 <= clip.apex_index < 8 and clip.subject == "subj01"
    assert clip.frames[0].shape == (128, 128) and clip.frames[0].dtype == np.uint8
    again = render_clip(seed=0, subject=1, index=2)
    assert all(np.array_equal(a, b) for a, b in zip(clip.frames, again.frames))
    assert not np.array_equal(clip.frames[0], render_clip(seed=1, subject=1, index=2).frames[0])
    assert render_clip(color=True, image_size=96, num_frames=6).frames[0].shape == (96, 96, 3)


def test_subjects_have_distinct_faces():
    faces = [render_clip(subject=subject).frames[0].astype(float) for subject in range(4)]
    differences = [np.abs(a - b).mean() for i, a in enumerate(faces) for b in faces[i + 1 :]]
    assert min(differences) > 10  # gray levels: shape, position, skin, lighting all differ


def test_apex_face_is_the_same_for_every_class():
    """The class is only in the motion from onset to apex: the apex frame itself is class-independent."""
    clips = [render_clip(seed=3, subject=2, index=5, label=label) for label in range(len(THREE_CLASSES))]
    apexes = [clip.frames[clip.apex_index] for clip in clips]
    assert all(np.array_equal(apexes[0], apex) for apex in apexes[1:])
    assert not np.array_equal(clips[0].frames[0], clips[1].frames[0])


def test_class_motion_is_small_and_local():
    face = make_face(face_rng(0, 0))
    for label in range(len(THREE_CLASSES)):
        displacement = np.hypot(*np.tensordot(class_motion(face, label, 1.5), face.motion_fields, axes=1))
        assert displacement.max() == pytest.approx(1.5)
        assert (displacement > 0.75).mean() < 0.05  # a few small regions (brows, lip corners) of the face


def test_dataset_rows_match_render_clip(tmp_path):
    ds = load_me_dataset("synthetic", num_subjects=3, samples_per_subject=4, seed=7, cache_dir=tmp_path)
    assert len(ds) == 12 and ds.features["label"].names == list(THREE_CLASSES)
    assert ds["label"] == [0, 1, 2, 0] * 3
    row = ds[5]
    clip = render_clip(seed=7, subject=1, index=1)
    assert row["sample_id"] == "subj01_001" and row["subject"] == "subj01" and row["source_dataset"] == "synthetic"
    assert np.array_equal(np.asarray(row["onset"]), clip.frames[0])
    assert np.array_equal(np.asarray(row["apex"]), clip.frames[clip.apex_index])
    assert (row["onset_frame"], row["apex_frame"], row["offset_frame"]) == (0, clip.apex_index, 8)
    assert row["action_units"] == "12"  # positive


def dis_flow(onset, apex, size=16):
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(onset, apex, None)
    return cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA).ravel()


@pytest.mark.timeout(120)
def test_learnable_from_flow_in_loso(tmp_path):
    """A linear model on onset->apex flow beats chance (1/3) clearly on subjects it has not seen."""
    ds = load_me_dataset("synthetic", num_subjects=5, samples_per_subject=12, seed=0, cache_dir=tmp_path)
    correct = 0
    for _, train, test in loso_folds(ds):
        features = [np.stack([dis_flow(np.asarray(r["onset"]), np.asarray(r["apex"])) for r in part])
                    for part in (train, test)]
        model = LogisticRegression(C=0.05, max_iter=500).fit(features[0], train["label"])
        correct += (model.predict(features[1]) == np.asarray(test["label"])).sum()
    assert correct / len(ds) > 0.6
