"""MMMERImageProcessor: input forms, output layout, flow representation, bad inputs and the saved round trip."""

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification, MMMERImageProcessor
from hf_mmmer.image_processing_mmmer import load_clip


SIZE = 64


def textured_frame(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Smooth random texture, uint8 (no face: tests that need none turn the face crop off)."""
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return (255 * (texture - texture.min()) / (texture.max() - texture.min())).round().astype(np.uint8)


def bump(size: int = SIZE, sigma: float = 0.12) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (2 * sigma**2))


def moved(frame: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`frame` (gray or RGB) with its content moved by `(u, v)` px, as uint8."""
    grid_y, grid_x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]].astype(np.float32)
    source = (grid_x - u, grid_y - v)
    warped = cv2.remap(frame.astype(np.float32), *source, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(warped, 0, 255).round().astype(np.uint8)


def shifted_pair(amplitude: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Onset and apex where a central region moved right by `amplitude` px."""
    frame = textured_frame()
    return frame, moved(frame, amplitude * bump(), np.zeros((SIZE, SIZE), np.float32))


def clip_with_peak(peak: int, length: int = 8) -> list[np.ndarray]:
    frame = textured_frame(seed=1)
    amplitudes = [2.0 * max(0.0, 1 - abs(i - peak) / peak) for i in range(length)]
    return [moved(frame, a * bump(), 0.5 * a * bump()) for a in amplitudes]


@pytest.fixture(scope="module")
def no_crop():
    return MMMERImageProcessor(do_crop_face=False)


@pytest.fixture(scope="module")
def astronaut_pair():
    """The astronaut photo (a real face) and a copy whose upper face moved up by 1 px: a brow raise."""
    onset = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    y = np.mgrid[0:256, 0:256][0].astype(np.float32) / 256
    raise_ = -np.exp(-((y - 0.2) ** 2) / 0.005)
    return onset, moved(onset, np.zeros_like(raise_), raise_)


# Output layout


def test_pair_gives_model_inputs_of_configured_shapes(no_crop):
    onset, apex = shifted_pair()
    out = no_crop(onset=onset, apex=apex, return_tensors="pt")
    assert out["flow_values"].shape == (1, 3, 28, 28) and out["flow_values"].dtype == torch.float32
    assert out["texture_values"].shape == (1, 1, 56, 56) and out["texture_values"].dtype == torch.float32
    assert out["apex_index"] == [-1] and out["face_crop"] == ["off"]


def test_batch_sizes_channels_and_numpy_output():
    processor = MMMERImageProcessor(do_crop_face=False, flow_size=14, texture_size=56, texture_channels=3)
    onset, apex = shifted_pair()
    out = processor(onset=[onset, apex], apex=[apex, onset], return_tensors="np")
    assert isinstance(out["flow_values"], np.ndarray) and out["flow_values"].shape == (2, 3, 14, 14)
    assert out["texture_values"].shape == (2, 3, 56, 56)
    assert out["apex_index"] == [-1, -1] and out["face_crop"] == ["off", "off"]


def test_lists_survive_tensor_conversion_and_device_moves(no_crop):
    out = no_crop(frames=[clip_with_peak(3), clip_with_peak(5)], return_tensors="pt").to("cpu")
    assert out["apex_index"] == [3, 5] and out["face_crop"] == ["off", "off"]
    assert isinstance(out["flow_values"], torch.Tensor)


def test_normalisation_uses_stored_mean_and_std(no_crop):
    onset, apex = shifted_pair()
    raw = no_crop(onset=onset, apex=apex, do_normalize=False)
    normed = no_crop(onset=onset, apex=apex)
    assert raw["flow_values"].min() >= 0 and raw["flow_values"].max() <= 1
    assert np.allclose(normed["flow_values"], (raw["flow_values"] - 0.5) / 0.5, atol=1e-6)
    assert np.allclose(normed["texture_values"], (raw["texture_values"] - 0.5) / 0.5, atol=1e-6)


# What the flow channels mean


def test_rightward_shift_shows_as_high_u_in_the_moved_region_only(no_crop):
    onset, apex = shifted_pair()
    u = no_crop(onset=onset, apex=apex, do_normalize=False)["flow_values"][0, 0]
    region = cv2.resize(bump(), (28, 28), interpolation=cv2.INTER_AREA)
    inside, outside = u[region > 0.8], u[region < 0.02]
    assert inside.mean() > outside.mean() + 0.5
    assert outside.std() < 0.1


def test_computed_and_precomputed_flow_are_one_representation(no_crop):
    """A flow image made the STSTNet way (u, v, strain min-max scaled to 0..255) gives the computed output."""
    onset, apex = shifted_pair()
    processor = MMMERImageProcessor(do_crop_face=False, flow_size=SIZE)  # no resize: compare pixel for pixel
    computed = processor(onset=onset, apex=apex)["flow_values"][0]
    flow_image = ((computed.transpose(1, 2, 0) * 0.5 + 0.5) * 255).round().astype(np.uint8)
    precomputed = processor(flow=flow_image, apex=apex)
    assert np.abs(precomputed["flow_values"][0] - computed).max() <= 1 / 255 / 0.5 + 1e-6
    assert precomputed["face_crop"] == ["off"] and precomputed["apex_index"] == [-1]


def test_precomputed_flow_image_is_divided_by_255_then_resized(no_crop, tmp_path):
    flow_image = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    Image.fromarray(flow_image).save(tmp_path / "flow.png")
    out = no_crop(flow=str(tmp_path / "flow.png"), apex=textured_frame(), do_normalize=False)
    assert np.allclose(out["flow_values"][0], flow_image.transpose(2, 0, 1) / 255.0, atol=1e-6)


# Input forms


def test_paths_pil_images_uint8_and_float_frames_agree(no_crop, tmp_path):
    onset, apex = shifted_pair()
    cv2.imwrite(str(tmp_path / "onset.png"), onset)
    cv2.imwrite(str(tmp_path / "apex.png"), apex)
    outputs = [
        no_crop(onset=onset, apex=apex),
        no_crop(onset=onset / 255.0, apex=apex / 255.0),
        no_crop(onset=(onset / 255.0).astype(np.float32), apex=(apex / 255.0).astype(np.float32)),
        no_crop(onset=Image.fromarray(onset), apex=Image.fromarray(apex)),
        no_crop(onset=str(tmp_path / "onset.png"), apex=tmp_path / "apex.png"),
    ]
    for out in outputs[1:]:
        assert np.array_equal(out["flow_values"], outputs[0]["flow_values"])
        assert np.array_equal(out["texture_values"], outputs[0]["texture_values"])


def test_rgb_frames_read_from_files_keep_rgb_order(tmp_path):
    red = np.zeros((SIZE, SIZE, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(tmp_path / "red.png")
    red[SIZE // 2 :, SIZE // 2 :, 0] = 100  # some motion, away from the pixel checked
    Image.fromarray(red).save(tmp_path / "apex.png")
    processor = MMMERImageProcessor(do_crop_face=False, texture_channels=3, do_normalize=False)
    texture = processor(onset=tmp_path / "red.png", apex=tmp_path / "apex.png")["texture_values"][0]
    assert np.allclose(texture[:, 0, 0], [200 / 255, 0, 0], atol=1e-6)


def test_clip_apex_is_spotted_at_the_frame_of_peak_motion(no_crop):
    out = no_crop(frames=clip_with_peak(5))
    assert out["apex_index"] == [5]
    assert no_crop(frames=clip_with_peak(5), apex_spotting="middle")["apex_index"] == [4]


def test_spotted_clip_output_equals_the_pair_output_at_that_apex(no_crop):
    clip = clip_with_peak(4)
    from_clip = no_crop(frames=clip)
    from_pair = no_crop(onset=clip[0], apex=clip[4])
    assert np.array_equal(from_clip["flow_values"], from_pair["flow_values"])
    assert np.array_equal(from_clip["texture_values"], from_pair["texture_values"])


def test_frame_folders_are_sorted_by_the_number_in_the_name(no_crop, tmp_path):
    for i, frame in enumerate(clip_with_peak(3, length=12)):
        cv2.imwrite(str(tmp_path / f"img{i + 1}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 100])
    (tmp_path / "notes.txt").write_text("not a frame")
    assert len(load_clip(tmp_path)) == 12
    # Sorted as text, img10.jpg would come second and the peak (img4.jpg) would be at index 6.
    assert no_crop(frames=str(tmp_path))["apex_index"] == [3]
    assert no_crop(frames=[tmp_path, tmp_path])["apex_index"] == [3, 3]


def test_video_file_is_read_as_a_clip(no_crop, tmp_path):
    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (SIZE, SIZE))
    for frame in clip_with_peak(4):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    out = no_crop(video=path, return_tensors="pt")
    assert out["apex_index"] == [4] and out["flow_values"].shape == (1, 3, 28, 28)
    assert no_crop(video=[path, path])["apex_index"] == [4, 4]


def test_a_datasets_column_is_a_batch(no_crop):
    datasets = pytest.importorskip("datasets")
    onset, apex = shifted_pair()
    table = datasets.Dataset.from_dict({"onset": [onset, apex], "apex": [apex, onset]})
    out = no_crop(onset=table.with_format("numpy")["onset"], apex=table.with_format("numpy")["apex"])
    assert out["flow_values"].shape == (2, 3, 28, 28)


def test_per_call_overrides_do_not_change_the_processor(no_crop):
    onset, apex = shifted_pair()
    assert no_crop(onset=onset, apex=apex, flow_size=7)["flow_values"].shape == (1, 3, 7, 7)
    assert no_crop.flow_size == 28


# Face crop


def test_face_crop_finds_the_astronaut_and_reuses_the_box_on_the_apex(astronaut_pair):
    onset, apex = astronaut_pair
    processor = MMMERImageProcessor(texture_channels=3, do_crop_face=True)
    out = processor(onset=onset, apex=apex)
    assert out["face_crop"] == ["face"]
    full = processor(onset=onset, apex=apex, do_crop_face=False)
    assert not np.array_equal(out["texture_values"], full["texture_values"])
    # The crop is the same box on both frames: without motion the two crops are the same image, and refused.
    with pytest.raises(ValueError, match="same image, so there is no motion"):
        processor(onset=onset, apex=onset.copy())


def test_face_alignment_runs_on_a_tilted_face(astronaut_pair):
    onset, apex = astronaut_pair
    rotation = cv2.getRotationMatrix2D((112, 57), 10, 1.0)
    tilted = [cv2.warpAffine(frame, rotation, (256, 256), borderMode=cv2.BORDER_REFLECT) for frame in (onset, apex)]
    processor = MMMERImageProcessor(do_crop_face=True, do_align_face=True)
    out = processor(onset=tilted[0], apex=tilted[1])
    assert out["face_crop"] == ["face"] and np.isfinite(out["flow_values"]).all()


def test_no_face_raises_by_default_and_full_frame_is_recorded():
    onset, apex = shifted_pair()
    with pytest.raises(ValueError, match=r"No face found in onset\[0\].*on_no_face='full_frame'"):
        MMMERImageProcessor(do_crop_face=True)(onset=[onset, onset], apex=[apex, apex])
    out = MMMERImageProcessor(do_crop_face=True, on_no_face="full_frame")(onset=onset, apex=apex)
    assert out["face_crop"] == ["full_frame"]


# Bad input


def test_onset_and_apex_of_different_sizes(no_crop):
    with pytest.raises(ValueError, match=r"onset is 64x64 but apex is 64x48 \(width x height\).*one size"):
        no_crop(onset=textured_frame(), apex=textured_frame()[:48])


def test_clip_of_fewer_than_two_frames(no_crop, tmp_path):
    with pytest.raises(ValueError, match=r"frames has 1 frame\(s\); a clip needs at least 2"):
        no_crop(frames=[textured_frame()])
    with pytest.raises(ValueError, match=r"frames\[0\] has 0 frame\(s\)"):
        no_crop(frames=[[]])
    with pytest.raises(ValueError, match=r"frames: folder .* holds no images"):
        no_crop(frames=str(tmp_path))


def test_clip_frames_of_different_sizes(no_crop):
    with pytest.raises(ValueError, match="frame 1 is .* but frame 0 is"):
        no_crop(frames=[textured_frame(), textured_frame()[:32]])


def test_missing_files_folders_and_videos(no_crop, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apex \(.*missing\.png\): no such file"):
        no_crop(onset=textured_frame(), apex=str(tmp_path / "missing.png"))
    with pytest.raises(FileNotFoundError, match="frames: no such folder"):
        no_crop(frames=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"video\[0\]: no such video file .*a\.mp4"):
        no_crop(video=[str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")])


def test_unreadable_image_and_video_files(no_crop, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"onset \(.*broken\.png\): cannot read it as an image"):
        no_crop(onset=str(tmp_path / "broken.png"), apex=textured_frame())
    with pytest.raises(ValueError, match=r"video: cannot read any frame from .*broken\.mp4"):
        no_crop(video=str(tmp_path / "broken.mp4"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_values(no_crop, bad):
    apex = textured_frame() / 255.0
    apex[3, 4] = bad
    with pytest.raises(ValueError, match=r"apex\[0\] contains NaN or inf"):
        no_crop(onset=[textured_frame()], apex=[apex])
    with pytest.raises(ValueError, match="flow contains NaN or inf"):
        no_crop(flow=np.dstack([apex] * 3), apex=textured_frame())


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 2), (28, 28, 4)])
def test_flow_image_must_have_three_channels(no_crop, shape):
    with pytest.raises(ValueError, match=r"flow has shape .*must have 3 channels"):
        no_crop(flow=np.zeros(shape, np.uint8), apex=textured_frame())


def test_empty_batches(no_crop):
    with pytest.raises(ValueError, match="onset is an empty batch"):
        no_crop(onset=[], apex=[])
    with pytest.raises(ValueError, match="frames is an empty batch"):
        no_crop(frames=[])


def test_batch_length_mismatch_and_missing_or_mixed_input_forms(no_crop):
    frame = textured_frame()
    with pytest.raises(ValueError, match=r"onset has 2 sample\(s\) but apex has 1"):
        no_crop(onset=[frame, frame], apex=[frame])
    with pytest.raises(ValueError, match="exactly one input form.*nothing"):
        no_crop()
    with pytest.raises(ValueError, match=r"exactly one input form.*\['frames', 'apex'\]"):
        no_crop(frames=[frame, frame], apex=frame)


def test_unsupported_item_type_and_unknown_argument(no_crop):
    with pytest.raises(TypeError, match="onset is a dict; expected a file path, a PIL image or a NumPy array"):
        no_crop(onset={}, apex=textured_frame())
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['flow_sise'\]"):
        no_crop(onset=textured_frame(), apex=textured_frame(), flow_sise=14)


def test_unknown_flow_method_and_other_bad_settings():
    with pytest.raises(ValueError, match=r"Unknown flow_method 'raft'; available: \[.*'dis'"):
        MMMERImageProcessor(flow_method="raft")
    with pytest.raises(ValueError, match="on_no_face='skip' is not supported"):
        MMMERImageProcessor(on_no_face="skip")
    with pytest.raises(ValueError, match="texture_channels=2 is not supported"):
        MMMERImageProcessor(texture_channels=2)
    with pytest.raises(ValueError, match="do_align_face=True needs do_crop_face=True"):
        MMMERImageProcessor(do_crop_face=False, do_align_face=True)
    with pytest.raises(ValueError, match=r"image_mean needs 1 or 3 values"):
        MMMERImageProcessor(texture_channels=3, image_mean=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"do_crop_face must be true or false; got 'false'"):  # bool("false") is True
        MMMERImageProcessor(do_crop_face="false")
    for margin in (float("nan"), "0.5", -1):
        with pytest.raises(ValueError, match=r"face_margin must be a finite number >= 0"):
            MMMERImageProcessor(face_margin=margin)


# Saved round trip


def test_save_and_load_in_a_fresh_process_gives_identical_outputs(astronaut_pair, tmp_path, fresh_python):
    onset, apex = astronaut_pair
    clip = np.stack(clip_with_peak(3))
    processor = MMMERImageProcessor(
        texture_channels=3, do_crop_face=True, flow_method="farneback", on_no_face="full_frame"
    )
    processor.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "preprocessor_config.json").read_text())
    assert config["auto_map"] == {"AutoImageProcessor": "image_processing_mmmer.MMMERImageProcessor"}
    assert config["flow_method"] == "farneback" and config["flow_normalization"] == "minmax"
    assert MMMERImageProcessor.from_pretrained(tmp_path / "saved").to_dict() == processor.to_dict()

    np.savez(tmp_path / "inputs.npz", onset=onset, apex=apex, clip=clip)
    stdout = fresh_python(
        f"""
        import sys
        import numpy as np
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained({str(tmp_path / "saved")!r}, trust_remote_code=True)
        frames = np.load({str(tmp_path / "inputs.npz")!r})
        out = processor(onset=frames["onset"], apex=frames["apex"], return_tensors="pt")
        clip = processor(frames=list(frames["clip"]), return_tensors="np")
        assert "hf_mmmer" not in sys.modules, "the saved processor imported the installed package"
        np.savez({str(tmp_path / "outputs.npz")!r}, flow=out["flow_values"].numpy(),
                 texture=out["texture_values"].numpy(), clip_flow=clip["flow_values"], apex_index=clip["apex_index"])
        print(type(processor).__module__, out["face_crop"])
        """
    )
    assert stdout.startswith("transformers_modules.") and "['face']" in stdout

    loaded = np.load(tmp_path / "outputs.npz")
    here = processor(onset=onset, apex=apex)
    here_clip = processor(frames=list(clip))
    assert np.array_equal(loaded["flow"], here["flow_values"])
    assert np.array_equal(loaded["texture"], here["texture_values"])
    assert np.array_equal(loaded["clip_flow"], here_clip["flow_values"])
    assert list(loaded["apex_index"]) == here_clip["apex_index"] == [3]


# Agreement with the model


@pytest.mark.parametrize("modalities", [["flow"], ["texture"], ["flow", "texture"]])
def test_the_default_processor_feeds_every_default_model(modalities):
    model = MMMERForMicroExpressionClassification(MMMERConfig(modalities=modalities)).eval()
    onset, apex = shifted_pair()
    out = MMMERImageProcessor()(onset=onset, apex=apex, return_tensors="pt")
    with torch.no_grad():
        logits = model(flow_values=out["flow_values"], texture_values=out["texture_values"]).logits
    assert logits.shape == (1, 3)
    MMMERImageProcessor().check_matches(model.config)


def test_from_config_matches_any_config_and_mismatches_name_the_file():
    config = MMMERConfig(modalities=["flow", "texture"], flow_image_size=14, flow_patch_sizes=[7],
                         texture_image_size=28, texture_patch_sizes=[14], texture_channels=3)
    processor = MMMERImageProcessor.from_config(config, do_crop_face=True)
    assert (processor.flow_size, processor.texture_size, processor.texture_channels) == (14, 28, 3)
    assert processor.do_crop_face
    with pytest.raises(ValueError, match=r"preprocessor_config.json\) makes flow inputs of 28x28 .*expects 14x14"):
        MMMERImageProcessor().check_matches(config)
    with pytest.raises(ValueError, match=r"makes texture inputs of 28x28 pixels with 1 channel\(s\).*expects 28x28 with 3"):
        MMMERImageProcessor.from_config(config, texture_channels=1)
