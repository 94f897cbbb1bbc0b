"""Haar face crop on a real face photo (scikit-image's astronaut) and on frames without a face."""

import cv2
import numpy as np
import pytest
from skimage import data

from hf_mmmer.face_detection import FaceCrop, find_face


@pytest.fixture(scope="module")
def astronaut_gray():
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_the_astronaut_face_is_found_inside_the_crop(astronaut_gray):
    crop = find_face(astronaut_gray, margin=0.0)
    x0, y0, x1, y1 = crop.box
    # The face (eyes to chin) spans about x 180..270, y 70..160 of the 512 x 512 photo.
    assert 150 < x0 < 200 and 250 < x1 < 300 and 40 < y0 < 90 and 140 < y1 < 190
    assert crop.angle == 0.0


def test_the_most_certain_face_wins_over_a_larger_false_detection(astronaut_gray):
    """At 640 x 640 the cascade also fires, weakly, on a larger patch of the astronaut's suit."""
    crop = find_face(cv2.resize(astronaut_gray, (640, 640)), margin=0.0)
    x0, y0, x1, y1 = crop.box
    assert 190 < x0 < 250 and 60 < y0 < 110 and x1 - x0 < 150


def test_margin_widens_the_box_and_stays_inside_the_frame(astronaut_gray):
    tight, wide = find_face(astronaut_gray, margin=0.0), find_face(astronaut_gray, margin=0.2)
    width = tight.box[2] - tight.box[0]
    assert wide.box[0] == tight.box[0] - round(0.2 * width) and wide.box[2] == tight.box[2] + round(0.2 * width)
    near_edge = astronaut_gray[:200, 150:330]  # the face is near this crop's left, top and bottom edges
    x0, y0, x1, y1 = find_face(near_edge, margin=1.0).box
    assert (x0, y0, y1) == (0, 0, 200) and x1 <= 180


def test_no_face_gives_none():
    flat = np.full((120, 160), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    assert find_face(flat) is None and find_face(noise) is None


def standardised(image: np.ndarray) -> np.ndarray:
    """`image` at 64 x 64, zero mean and unit variance: the mean product of two is their correlation."""
    image = cv2.resize(image.astype(np.float32), (64, 64))
    return (image - image.mean()) / image.std()


@pytest.mark.parametrize("degrees", [-10, 10])
def test_alignment_rotates_against_the_head_tilt(astronaut_gray, degrees):
    rotation = cv2.getRotationMatrix2D((224, 114), degrees, 1.0)
    tilted = cv2.warpAffine(astronaut_gray, rotation, astronaut_gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    crop = find_face(tilted, align=True)
    # The photo's own head tilt is about 2.5 degrees; Haar eye boxes are coarse, hence the loose bounds.
    assert -degrees - 8 < crop.angle < -degrees + 8
    # The aligned crop shows the face as the upright photo's aligned crop does, and clearly more so than
    # the same box cut without rotating (a no-op alignment would score the same as that).
    upright = standardised(find_face(astronaut_gray, align=True).apply(astronaut_gray))
    aligned = (standardised(crop.apply(tilted)) * upright).mean()
    unrotated = (standardised(FaceCrop(box=crop.box).apply(tilted)) * upright).mean()
    assert aligned > 0.8 and aligned > unrotated + 0.05


def test_a_crop_cuts_the_same_box_from_every_frame():
    frame = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    assert np.array_equal(FaceCrop(box=(10, 20, 50, 70)).apply(frame), frame[20:70, 10:50])
    rotated = FaceCrop(box=(10, 20, 50, 70), angle=5.0).apply(np.dstack([frame] * 3))
    assert rotated.shape == (50, 40, 3)
