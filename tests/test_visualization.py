"""Heatmaps: importance maps drawn over the apex face and written as a PNG."""

import cv2
import numpy as np
import pytest

from hf_mmmer.visualization import flow_to_color, heatmap_image, overlay_importance, render_heatmap, save_heatmap


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


def motion_blob():
    """A 28 x 28 motion map whose mass sits in rows 20 to 24, columns 4 to 8 (a lip corner, say)."""
    importance = np.full((28, 28), 0.01, np.float32)
    importance[20:25, 4:9] = 1.0
    return importance / importance.sum()


@pytest.fixture
def prediction(face):
    return {
        "predictions": [{"label": "surprise", "score": 0.9}, {"label": "negative", "score": 0.1}],
        "apex_index": 3,
        "importance": {"flow": peaked_map(28, 4, 20), "texture": peaked_map(112, 90, 10)},
        "motion_importance": motion_blob(),
        "apex_face": face,
    }


def test_save_heatmap_writes_a_png_that_differs_from_the_plain_face(prediction, face, tmp_path):
    path = tmp_path / "figures" / "heatmap.png"
    returned = save_heatmap(prediction, path, panel_size=128, view="attention")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert written.shape == (128, 3 * 128, 3)  # face, motion attention, texture attention
    np.testing.assert_array_equal(written, returned)
    plain = cv2.cvtColor(cv2.resize(face, (128, 128), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
    below_titles = slice(40, None)  # the rows under the text
    np.testing.assert_array_equal(written[below_titles, :128], plain[below_titles])
    for panel in (written[:, 128:256], written[:, 256:]):
        assert np.abs(panel[below_titles].astype(int) - plain[below_titles]).mean() > 10


def test_the_default_view_draws_the_motion_importance(prediction):
    image = heatmap_image(prediction, panel_size=112)
    assert image.shape == (112, 2 * 112, 3)  # face and one overlay
    red_minus_blue = image[:, 112:, 0].astype(int) - image[:, 112:, 2].astype(int)
    assert red_minus_blue[84:96, 20:32].mean() > red_minus_blue[:40, 60:].mean() + 50  # the blob, 4x upscaled


def test_bad_prediction_or_view(face, prediction, tmp_path):
    with pytest.raises(ValueError, match="return_importance=True"):
        save_heatmap({"predictions": [{"label": "positive", "score": 1.0}], "apex_face": face}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="Unknown heatmap view 'gradcam'"):
        heatmap_image(prediction, view="gradcam")
    assert not (tmp_path / "x.png").exists()


def test_flow_to_color_codes_direction_as_hue_and_magnitude_as_brightness():
    flow = np.full((28, 28, 3), 0.3, np.float32)  # still: the median level
    flow[2:6, 2:6, 0] = 1.0  # moved right: red
    flow[20:24, 20:24, 1] = 0.8  # moved down (image v grows downwards), half as far: dimmer, another hue
    image = flow_to_color(flow, size=56)
    assert image.shape == (56, 56, 3) and image.dtype == np.uint8
    right, down, still = image[4:12, 4:12].mean((0, 1)), image[40:48, 40:48].mean((0, 1)), image[28:36, 4:12]
    assert right[0] == 255 and right[1:].max() == 0  # pure red at full brightness
    assert 0 < down.max() < 255 and down.argmax() != 0  # dimmer, not red
    assert still.max() == 0
    assert flow_to_color(np.full((4, 4, 3), 0.5, np.float32), size=8).max() == 0  # no motion: black


def test_attribution_benchmark_prints_its_table(model_dir, run_benchmark):
    """benchmarks/attribution.py on a tiny saved model: a table row per warp and the summary rows."""
    code, stdout, stderr = run_benchmark("attribution.py", "--model", model_dir)
    assert code == 0, stderr[-2000:]
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| warp | sigma | area | predicted | attention | motion_importance")
    assert len(rows) == 2 + 15 + 3  # header, rule, 5 warps x 3 widths, mean, min, ratio
    means = [float(cell) for cell in rows[-3].split("|")[5:-1]]
    assert all(0 <= share <= 1 for share in means)
