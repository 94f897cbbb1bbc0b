"""Heatmaps: importance maps drawn over the apex face and written as a PNG."""

import cv2
import numpy as np
import pytest

from hf_mmmer.visualization import overlay_importance, render_heatmap, save_heatmap


@pytest.fixture
def face():
    """A gray 'face' with some structure: a bright disc on a gradient."""
    y, x = np.mgrid[0:112, 0:112]
    image = 60 + x * 0.8 + 100 * (((x - 56) ** 2 + (y - 50) ** 2) < 30**2)
    return image.clip(0, 255).astype(np.uint8)


def peaked_map(size, row, column):
    importance = np.full((size, size), 0.1, np.float32)
    importance[row, column] = 1.0
    return importance / importance.sum()


def test_overlay_has_the_face_size_and_marks_the_important_region(face):
    overlay = overlay_importance(face, peaked_map(4, 0, 3))
    assert overlay.shape == (112, 112, 3) and overlay.dtype == np.uint8
    red_minus_blue = overlay[..., 0].astype(int) - overlay[..., 2].astype(int)
    assert red_minus_blue[:28, 84:].mean() > red_minus_blue[84:, :28].mean() + 50  # JET: important = red


def test_constant_map_leaves_the_face(face):
    overlay = overlay_importance(face, np.full((4, 4), 1 / 16, np.float32))
    np.testing.assert_array_equal(overlay, cv2.cvtColor(face, cv2.COLOR_GRAY2RGB))


def test_render_heatmap_layout_for_gray_and_rgb_faces(face):
    maps = {"flow": peaked_map(28, 5, 5), "texture": peaked_map(112, 60, 60)}
    for image in (face, cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)):
        rendered = render_heatmap(image, maps, ["surprise 0.90"], panel_size=200)
        assert rendered.shape == (200, 600, 3) and rendered.dtype == np.uint8
    assert render_heatmap(face, {"flow": maps["flow"]}, panel_size=64).shape == (64, 128, 3)


def test_save_heatmap_writes_a_png_that_differs_from_the_plain_face(face, tmp_path):
    prediction = {
        "predictions": [{"label": "surprise", "score": 0.9}, {"label": "negative", "score": 0.1}],
        "apex_index": 3,
        "importance": {"flow": peaked_map(28, 4, 20), "texture": peaked_map(112, 90, 10)},
        "apex_face": face,
    }
    path = tmp_path / "figures" / "heatmap.png"
    returned = save_heatmap(prediction, path, panel_size=128)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert written.shape == (128, 3 * 128, 3)
    np.testing.assert_array_equal(written, returned)
    plain = cv2.cvtColor(cv2.resize(face, (128, 128), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
    below_titles = slice(40, None)  # the rows under the text
    np.testing.assert_array_equal(written[below_titles, :128], plain[below_titles])
    for panel in (written[:, 128:256], written[:, 256:]):
        assert np.abs(panel[below_titles].astype(int) - plain[below_titles]).mean() > 10


def test_save_heatmap_needs_importance(face, tmp_path):
    with pytest.raises(ValueError, match="return_importance=True"):
        save_heatmap({"predictions": [{"label": "positive", "score": 1.0}], "apex_face": face}, tmp_path / "x.png")
