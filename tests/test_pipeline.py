"""The micro-expression-classification pipeline: input forms, batching, top_k, importance maps, bad input,
and loading a saved directory (written by `save_model_directory` and by the trainer) in a fresh process."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import save_tiny_model

from hf_mmmer import MicroExpressionClassificationPipeline
from hf_mmmer.cli import load_pipeline
from hf_mmmer.pipeline_mmmer import fuse_scales, motion_importance
from hf_mmmer.visualization import heatmap_image

APEX = 4


def make_clip(num_frames: int = 7, size: int = 64, apex: int = APEX, seed: int = 0) -> list[np.ndarray]:
    """Smooth random gray texture whose lower (mouth) part slides right up to 2 px at `apex` and back: a
    local motion that DIS tracks (a slide of the whole frame is head motion, which apex spotting removes)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    mouth = np.exp(-((grid_x / size - 0.5) ** 2 + (grid_y / size - 0.78) ** 2) / (2 * 0.1**2)).astype(np.float32)
    frames = []
    for t in range(num_frames):
        shift = 2.0 * max(0.0, 1.0 - abs(t - apex) / apex)
        moved = cv2.remap(base, grid_x - shift * mouth, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(moved, 0, 255).round().astype(np.uint8))
    return frames


def write_folder(frames, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img{i}.png"), frame)
    return folder


def write_video(frames, path):
    """An MJPG .avi, a codec every OpenCV build writes and reads."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def classify(model_dir):
    return load_pipeline(model_dir)


@pytest.fixture(scope="module")
def clip():
    return make_clip()


def scores_of(result):
    """`{label: score}` of a plain result (the list) or of a detailed one (its `predictions`)."""
    predictions = result["predictions"] if isinstance(result, dict) else result
    return {entry["label"]: entry["score"] for entry in predictions}


def test_pair_gives_sorted_scores_over_all_labels(classify, clip):
    pair = {"onset": clip[0], "apex": clip[APEX]}
    result = classify(pair)
    assert isinstance(result, list) and set(result[0]) == {"label", "score"}  # Hugging Face's shape
    scores = [entry["score"] for entry in result]
    assert sorted(scores_of(result)) == sorted(classify.model.config.id2label.values())
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    details = classify(pair, return_details=True)
    assert details == {"predictions": result, "apex_index": None, "face_crop": "off"}


def test_clip_as_list_folder_and_video(classify, clip, tmp_path):
    from_list = classify(clip, return_details=True)
    from_folder = classify(str(write_folder(clip, tmp_path / "frames")), return_details=True)
    from_video = classify(str(write_video(clip, tmp_path / "clip.avi")), return_details=True)
    assert from_list["apex_index"] == from_folder["apex_index"] == APEX
    assert scores_of(from_list) == pytest.approx(scores_of(from_folder), abs=1e-6)  # PNG is lossless
    assert 0 <= from_video["apex_index"] < len(clip)  # MJPG is lossy: the spotted apex may move by a frame
    assert classify({"frames": clip}, return_details=True)["apex_index"] == APEX


def test_precomputed_flow_input(classify):
    rng = np.random.default_rng(1)
    flow = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    result = classify({"flow": flow, "apex": rng.integers(0, 256, (56, 56), dtype=np.uint8)}, return_details=True)
    assert result["apex_index"] is None and len(result["predictions"]) == 3


def test_batch_matches_one_by_one(classify, clip):
    samples = [{"onset": clip[0], "apex": clip[APEX]}, clip, {"onset": clip[1], "apex": clip[2]}]
    plain = classify(samples, batch_size=2, top_k=1)
    assert [len(result) for result in plain] == [1, 1, 1]  # a list of lists, as Hugging Face's pipelines
    assert [result[0] for result in plain] == [classify(sample)[0] for sample in samples]
    batched = classify(samples, batch_size=2, return_importance=True)
    for sample, result in zip(samples, batched):
        alone = classify(sample, return_importance=True)
        assert scores_of(result) == pytest.approx(scores_of(alone), abs=1e-5)
        assert result["apex_index"] == alone["apex_index"]
        np.testing.assert_allclose(result["importance"]["flow"], alone["importance"]["flow"], atol=1e-6)
        np.testing.assert_allclose(result["motion_importance"], alone["motion_importance"], atol=1e-5)


def test_top_k_is_clipped_to_the_labels(classify, clip):
    pair = {"onset": clip[0], "apex": clip[APEX]}
    assert len(classify(pair, top_k=10)) == 3
    best = classify(pair, top_k=1)
    assert len(best) == 1 and best[0] == classify(pair)[0]
    with pytest.raises(ValueError, match="top_k"):
        classify(pair, top_k=0)
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['topk'\]"):
        classify(pair, topk=2)
    for flag in ("return_details", "return_importance", "spot"):  # "no" would mean yes
        with pytest.raises(ValueError, match=f"{flag} must be True or False; got 'no'"):
            classify(pair, **{flag: "no"})
    with pytest.raises(ValueError, match=r"do_crop_face must be true or false; got 'false'"):
        classify(pair, do_crop_face="false")
    for size in (0, "2"):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int; got {size!r}"):
            classify([pair, pair], batch_size=size)


def test_processor_parameters_per_call(classify, clip):
    assert classify(clip, apex_spotting="middle", return_details=True)["apex_index"] == len(clip) // 2


def test_importance_maps(classify, clip):
    result = classify(clip, return_importance=True)
    config = classify.model.config
    assert set(result["importance"]) == {"flow", "texture"}
    for modality, importance in result["importance"].items():
        size = config.image_size(modality)
        assert importance.shape == (size, size) and importance.dtype == np.float32
        assert importance.sum() == pytest.approx(1.0, abs=1e-4) and importance.min() >= 0
    assert {key: m.shape for key, m in result["scale_importance"].items()} == {
        "flow/p7": (4, 4), "flow/p14": (2, 2), "texture/p14": (2, 2)}
    motion = result["motion_importance"]
    assert motion.shape == (28, 28) and motion.dtype == np.float32
    assert motion.sum() == pytest.approx(1.0, abs=1e-4) and motion.min() >= 0
    assert result["flow"].shape == (28, 28, 3) and result["flow"].min() >= -1e-6 and result["flow"].max() <= 1 + 1e-6
    assert result["apex_face"].shape == (28, 28) and result["apex_face"].dtype == np.uint8
    # The face the model saw is the apex frame resized (normalisation undone).
    expected = cv2.resize(clip[APEX], (28, 28), interpolation=cv2.INTER_AREA)
    assert np.abs(result["apex_face"].astype(int) - expected).max() <= 1
    assert "importance" not in classify(clip, return_details=True)


def test_fuse_scales_spreads_each_patch_over_its_pixels():
    scales = {"flow/p2": np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), "flow/p4": np.ones((1, 1), np.float32),
              "texture/p4": np.ones((1, 1), np.float32)}
    fused = fuse_scales(scales, "flow", 4)
    assert fused.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fused[:2, :2], (1 / 4 + 1 / 16) / 2)
    np.testing.assert_allclose(fused[2:, 2:], (0 + 1 / 16) / 2)


def test_motion_importance_is_gradient_times_the_distance_from_still():
    flow = torch.full((2, 3, 8, 8), 0.4)  # "still" is each channel's median level, not 0, after min-max scaling
    flow[0, 0, 1, 2], flow[0, 1, 6, 5] = 1.0, 0.0  # sample 0: one pixel moved right, one up
    gradient = torch.ones_like(flow)
    gradient[0, 1] = 2.0  # the model cares twice as much about v
    maps = motion_importance(flow, gradient)
    assert maps.shape == (2, 8, 8)
    assert maps[0, 1, 2] == pytest.approx(0.6 / 1.4) and maps[0, 6, 5] == pytest.approx(0.8 / 1.4)
    assert maps[0].sum() == pytest.approx(1.0)
    torch.testing.assert_close(maps[1], torch.full((8, 8), 1 / 64))  # no motion: uniform, not NaN


def test_motion_importance_localises_a_moved_patch(classify):
    """On a smooth texture whose lower-left quarter moves 1.5 px, most of the map's mass lands there."""
    rng = np.random.default_rng(3)
    onset = cv2.GaussianBlur(rng.uniform(0, 255, (112, 112)).astype(np.float32), (0, 0), 3.0)
    onset = cv2.normalize(onset, None, 0, 255, cv2.NORM_MINMAX)
    y, x = np.mgrid[0:112, 0:112].astype(np.float32)
    shift = 1.5 * np.exp(-(((x - 28) / 12) ** 2 + ((y - 84) / 12) ** 2))
    apex = cv2.remap(onset, x, y + shift, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    result = classify({"onset": onset.astype(np.uint8), "apex": apex.astype(np.uint8)}, return_importance=True)
    motion = result["motion_importance"]
    assert motion[14:, :14].sum() > 0.5  # a quarter of the area
    assert motion[14:, :14].sum() > 2 * result["importance"]["flow"][14:, :14].sum()


def test_single_modality_model_returns_its_map_only(tmp_path, clip):
    single = load_pipeline(save_tiny_model(tmp_path / "flow_only", modalities=["flow"]))
    assert set(single(clip, return_importance=True)["importance"]) == {"flow"}
    texture = load_pipeline(save_tiny_model(tmp_path / "texture_only", modalities=["texture"]))
    result = texture(clip, return_importance=True)
    assert set(result["importance"]) == {"texture"} and "motion_importance" not in result
    with pytest.raises(ValueError, match="no motion importance: draw the attention view"):
        heatmap_image(result)
    assert heatmap_image(result, view="attention").shape == (256, 512, 3)


def test_video_that_cannot_be_opened(classify, tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="cannot read any frame"):
        classify(str(broken))
    with pytest.raises(FileNotFoundError, match="no such video"):
        classify(str(tmp_path / "missing.mp4"))


def test_folder_without_images(classify, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    with pytest.raises(ValueError, match="holds no images"):
        classify(str(tmp_path / "empty"))


def test_hidden_files_in_a_frame_folder_are_not_frames(tmp_path, clip):
    """macOS copies leave `._name.png` beside each frame; sorted first, it would become the onset."""
    from hf_mmmer.image_processing_mmmer import frame_files

    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(clip[:3]):
        cv2.imwrite(str(folder / f"f{index}.png"), frame)
    cv2.imwrite(str(folder / "._f0.png"), clip[3])  # readable, so only its name can keep it out
    (folder / ".f1.png").write_bytes(b"not an image")
    assert [Path(path).name for path in frame_files(folder)] == ["f0.png", "f1.png", "f2.png"]


def test_mixed_frame_sizes_in_one_clip(classify, clip):
    mixed = clip[:3] + [cv2.resize(clip[3], (48, 48))]
    with pytest.raises(ValueError, match="all frames of a clip must have one size"):
        classify(mixed)


def test_single_image_or_unknown_input(classify, tmp_path, clip):
    image = tmp_path / "apex.png"
    cv2.imwrite(str(image), clip[APEX])
    with pytest.raises(ValueError, match="single image"):
        classify(str(image))
    with pytest.raises(ValueError, match="expected one of"):
        classify({"apex": clip[APEX]})
    with pytest.raises(TypeError, match="Cannot classify"):
        classify(42)


def test_directory_without_preprocessor_config(model_dir, tmp_path):
    incomplete = tmp_path / "no_processor"
    shutil.copytree(model_dir, incomplete)
    (incomplete / "preprocessor_config.json").unlink()
    with pytest.raises(ValueError, match="has no preprocessor_config.json"):
        load_pipeline(incomplete)


def test_saved_directory_declares_the_pipeline(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["custom_pipelines"]["micro-expression-classification"]["impl"] == (
        "pipeline_mmmer.MicroExpressionClassificationPipeline")
    assert (model_dir / "pipeline_mmmer.py").is_file()
    assert isinstance(load_pipeline(model_dir), MicroExpressionClassificationPipeline)


@pytest.fixture(scope="module")
def trained_model_dir(tmp_path_factory):
    """A model saved by the trainer (the command of examples/train.py, in-process to save start-up time)."""
    from hf_mmmer.training.cli import train_from_argv as train

    output = tmp_path_factory.mktemp("run")
    train(["--dataset", "synthetic", "--num_subjects", "3", "--samples_per_subject", "6", "--epochs", "1",
           "--folds", "1",  # one LOSO fold instead of three: the final model is trained and saved alike
           "--config_overrides", "modalities=[\"flow\",\"texture\"],hidden_size=16,num_hidden_layers=1,num_attention_heads=2,texture_image_size=28,"
           "texture_patch_sizes=[14],flow_patch_sizes=[7,14]",
           "--output_dir", str(output / "out"), "--cache_dir", str(output / "cache")])
    return output / "out" / "final_model"


def test_fresh_process_loads_the_pipeline(fresh_python, model_dir, trained_model_dir, clip, tmp_path):
    frames = write_folder(clip, tmp_path / "frames")
    out = fresh_python(f"""
        import json, sys
        import numpy as np
        from transformers import pipeline
        results = {{}}
        for name, directory in (("export", {str(model_dir)!r}), ("trainer", {str(trained_model_dir)!r})):
            classify = pipeline(task="micro-expression-classification", model=directory, trust_remote_code=True)
            pair = classify({{"onset": {str(frames / "img0.png")!r}, "apex": {str(frames / "img4.png")!r}}}, top_k=2)
            folder = classify({str(frames)!r}, return_importance=True)
            results[name] = {{"pair": pair, "apex": folder["apex_index"],
                             "maps": {{k: list(v.shape) for k, v in folder["importance"].items()}},
                             "module": type(classify).__module__}}
        assert not [m for m in sys.modules if m.startswith("hf_mmmer")], "hf_mmmer was imported"
        print(json.dumps(results))
    """)
    results = json.loads(out.strip().splitlines()[-1])
    for name, result in results.items():
        assert len(result["pair"]) == 2 and result["pair"][0]["score"] >= result["pair"][1]["score"], name
        assert result["apex"] == APEX, name
        assert result["maps"] == {"flow": [28, 28], "texture": [28, 28]}, name
        assert result["module"].startswith("transformers_modules"), name
