"""Catalogue of bad or unusual inputs to the image processor (issue 15): each is fed and its exact outcome asserted,
either the right result or a one-line error that names the input, the frame or the file."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from hf_mmmer import MMMERImageProcessor
from hf_mmmer.optical_flow import MIN_FRAME_SIZE, compute_flow


def textured(seed: int = 0, size: int = 64) -> np.ndarray:
    """Smooth random uint8 texture (no face)."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).round().astype(np.uint8)


def shifted(frame: np.ndarray, dx: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(frame, matrix, frame.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def processor():
    return MMMERImageProcessor()


@pytest.fixture(scope="module")
def face_pair():
    """The astronaut photo (a real face, RGB) and a copy moved 1 px right."""
    onset = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return onset, shifted(onset, 1.0)


def same_outputs(a, b) -> bool:
    return all(np.array_equal(a[key], b[key]) for key in ("flow_values", "texture_values", "face_crop"))


# Valid input that used to crash inside OpenCV


def test_gray_frames_with_face_crop_equal_their_rgb_originals(face_pair):
    """A 2-D frame's face crop is a strided view, which DIS refused; gray input must give the RGB input's result."""
    processor = MMMERImageProcessor(do_crop_face=True)
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in face_pair]
    from_gray = processor(onset=gray[0], apex=gray[1])
    assert from_gray["face_crop"] == ["face"]
    assert same_outputs(from_gray, processor(onset=face_pair[0], apex=face_pair[1]))
    clip = processor(frames=[gray[0], gray[1], gray[0]])
    assert clip["face_crop"] == ["face"] and clip["apex_index"] == [1]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_gray_image_files_with_face_crop(face_pair, tmp_path, suffix):
    paths = []
    for name, frame in zip(("onset", "apex"), face_pair):
        paths.append(str(tmp_path / f"{name}{suffix}"))
        cv2.imwrite(paths[-1], cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    out = MMMERImageProcessor(do_crop_face=True)(onset=paths[0], apex=paths[1])
    assert out["face_crop"] == ["face"] and np.isfinite(out["flow_values"]).all()


def test_gray_video_with_face_crop(face_pair, tmp_path):
    """SAMM is gray: a video written without colour must run with the face crop on."""
    path = str(tmp_path / "gray.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (256, 256), isColor=False)
    for frame in (face_pair[0], face_pair[1], face_pair[0]):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    writer.release()
    out = MMMERImageProcessor(do_crop_face=True)(video=path)
    # The pair differs by a whole-face shift, which apex spotting discounts as head motion, so after MJPG
    # compression either later frame may be the apex; what matters here is that the face was found and used.
    assert out["face_crop"] == ["face"] and out["apex_index"][0] in (1, 2)
    assert np.isfinite(out["flow_values"]).all()


@pytest.mark.parametrize(
    "view", [lambda f: f[:, :60], lambda f: f[:, ::-1], lambda f: f[::2, ::2], lambda f: np.asfortranarray(f)],
    ids=["column_slice", "mirrored", "strided", "fortran_order"],
)
def test_array_views_give_the_result_of_their_copies(processor, view):
    onset, apex = textured(size=96), shifted(textured(size=96), 1.5)
    out = processor(onset=view(onset), apex=view(apex))
    assert same_outputs(out, processor(onset=view(onset).copy(), apex=view(apex).copy()))


def test_compute_flow_takes_strided_views():
    frame = textured(size=96)
    flow = compute_flow(frame[10:80, 5:70], shifted(frame, 1.0)[10:80, 5:70], "dis")
    assert flow.shape == (70, 65, 2) and np.isfinite(flow).all()


# EXIF orientation


@pytest.mark.parametrize("orientation, stored_as", [
    (2, Image.Transpose.FLIP_LEFT_RIGHT), (3, Image.Transpose.ROTATE_180), (4, Image.Transpose.FLIP_TOP_BOTTOM),
    (5, Image.Transpose.TRANSPOSE), (6, Image.Transpose.ROTATE_90), (7, Image.Transpose.TRANSVERSE),
    (8, Image.Transpose.ROTATE_270),
])
def test_frames_with_an_exif_rotation_are_read_upright(processor, tmp_path, orientation, stored_as):
    """A phone's portrait photo is landscape pixels plus an EXIF rotation: as a file or a PIL image it must
    give what the upright frame gives, as in every viewer (a wider than high frame, so a miss changes shapes)."""
    onset = np.dstack([textured(seed, 64)[:, :48] for seed in range(3)])
    apex = shifted(onset, 1.5)
    exif = Image.Exif()
    exif[0x0112] = orientation
    paths = {}
    for name, frame in (("onset", onset), ("apex", apex)):
        paths[name] = tmp_path / f"{name}.png"  # lossless, so the comparison is exact
        Image.fromarray(frame).transpose(stored_as).save(paths[name], exif=exif)
    upright = processor(onset=onset, apex=apex)
    assert same_outputs(processor(onset=str(paths["onset"]), apex=str(paths["apex"])), upright)
    assert same_outputs(processor(onset=Image.open(paths["onset"]), apex=Image.open(paths["apex"])), upright)


# No motion


def test_an_apex_that_is_the_onset_is_refused_not_classified(processor):
    """The flow would be zero everywhere and its min-max scaling meaningless, yet the model would give scores."""
    frame = textured()
    with pytest.raises(ValueError, match=r"^onset and apex are the same image, so there is no motion to classify"):
        processor(onset=frame, apex=frame.copy())
    with pytest.raises(ValueError, match=r"^onset\[1\] and apex\[1\] are the same image"):
        processor(onset=[frame, frame], apex=[shifted(frame, 1.0), frame])
    with pytest.raises(ValueError, match=r"^frames: frame 0 \(the onset\) and frame 1 \(the apex, by "
                                         r"apex_spotting='flow_magnitude'\) are the same image"):
        processor(frames=[frame] * 4)  # a still clip
    assert processor(frames=[frame, frame, shifted(frame, 1.0), frame], apex_spotting="middle")["apex_index"] == [2]


# Minimum frame size


def test_frames_of_exactly_the_minimum_size_work(processor):
    size = MIN_FRAME_SIZE
    out = processor(onset=textured(size=size), apex=shifted(textured(size=size), 1.0))
    assert out["flow_values"].shape == (1, 3, 28, 28) and np.isfinite(out["flow_values"]).all()


def test_a_frame_below_the_minimum_is_named(processor, tmp_path):
    with pytest.raises(ValueError, match=r"^onset\[1\] is 11x40 \(width x height\); it needs at least 12 x 12 pixels "
                                         r"\(optical flow cannot work on less\)"):
        processor(onset=[textured(), textured()[:40, :11]], apex=[shifted(textured(), 1.0), textured()[:40, :11]])
    with pytest.raises(ValueError, match=r"^frames\[2\] is 8x8 .*at least 12 x 12"):
        processor(frames=[textured(), textured(), textured(size=8)])
    cv2.imwrite(str(tmp_path / "tiny.png"), textured(size=10))
    with pytest.raises(ValueError, match=r"^apex \(.*tiny\.png\) is 10x10"):
        processor(onset=textured(), apex=str(tmp_path / "tiny.png"))
    with pytest.raises(ValueError, match=r"^onset is 4x4"):
        compute_flow(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), "dis")


# One rule per dtype


def test_float_frames_in_unit_range_are_scaled(processor):
    onset, apex = textured(), shifted(textured(), 1.5)
    expected = processor(onset=onset, apex=apex)
    assert same_outputs(processor(onset=onset / 255.0, apex=apex / 255.0), expected)
    as_pil = [Image.fromarray((frame / 255.0).astype(np.float32), mode="F") for frame in (onset, apex)]
    assert same_outputs(processor(onset=as_pil[0], apex=as_pil[1]), expected)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: np.minimum(f / 255.0 * 1.02, 1.02), r"onset is float64 with values 0\.\.1\.02; float frames must lie in \[0, 1\]"),
        (lambda f: f / 127.5 - 1.0, r"onset is float64 with values -1\.\.1; float frames must lie in \[0, 1\]"),
        (lambda f: f.astype(np.float32), r"onset is float32 with values 0\.\.255; float frames must lie in \[0, 1\]"),
        (lambda f: Image.fromarray(f.astype(np.float32), mode="F"), r"onset is float32 with values 0\.\.255"),
        (lambda f: f.astype(np.int32) * 16, r"onset is int32 with values 0\.\.4080; integer frames other than uint16"),
        (lambda f: Image.fromarray(f.astype(np.int32) * 16, mode="I"), r"onset is int32 with values 0\.\.4080"),
        (lambda f: f > 128, r"onset has dtype bool; expected uint8, uint16"),
    ],
    ids=["float_slightly_over_1", "float_minus_1_to_1", "float_0_to_255", "pil_F_0_to_255", "int32_12bit",
         "pil_I_12bit", "bool"],
)
def test_values_a_dtype_rule_cannot_read_are_refused(processor, make, message):
    onset = textured()
    with pytest.raises(ValueError, match=message):
        processor(onset=make(onset), apex=onset)


def test_integer_dtypes_that_the_rules_read(processor):
    onset, apex = textured(), shifted(textured(), 1.5)
    expected = processor(onset=onset, apex=apex)
    assert same_outputs(processor(onset=onset.astype(np.int32), apex=apex.astype(np.int64)), expected)
    assert same_outputs(processor(onset=onset.astype(np.uint16) * 257, apex=apex.astype(np.uint16) * 257), expected)
    wide = [Image.fromarray(frame.astype(np.uint16) * 257) for frame in (onset, apex)]  # PIL mode I;16
    assert same_outputs(processor(onset=wide[0], apex=wide[1]), expected)


# Files


def test_truncated_jpeg_is_refused_naming_the_file(processor, tmp_path):
    whole = tmp_path / "whole.jpg"
    cv2.imwrite(str(whole), textured(size=128))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    trailer = tmp_path / "trailer.jpg"  # data some cameras append after the end-of-image marker
    trailer.write_bytes(whole.read_bytes() + b"camera trailer" * 100)
    onset = shifted(textured(size=128), 1.0)
    assert same_outputs(processor(onset=onset, apex=str(trailer)), processor(onset=onset, apex=str(whole)))
    with pytest.raises(ValueError, match=r"^apex \(.*cut\.jpg\): truncated JPEG"):
        processor(onset=str(whole), apex=str(cut))


def test_a_folder_where_a_file_is_expected(processor, tmp_path):
    with pytest.raises(ValueError, match=r"^onset \(.*\): is a folder; expected an image file"):
        processor(onset=str(tmp_path), apex=textured())
    with pytest.raises(ValueError, match=r"^video: .* is a folder; expected a video file"):
        processor(video=str(tmp_path))


def test_non_square_flow_image_is_refused_naming_the_file(processor, tmp_path):
    cv2.imwrite(str(tmp_path / "flow.png"), np.zeros((28, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"^flow \(.*flow\.png\) is 32x28 .*must be square"):
        processor(flow=str(tmp_path / "flow.png"), apex=textured())


def test_tiny_flow_image_is_refused_for_its_own_reason(processor, tmp_path):
    """No flow is computed from a precomputed map, so the frames' reason would mislead."""
    cv2.imwrite(str(tmp_path / "flow.png"), np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"^flow \(.*flow\.png\) is 5x5 .*at least 12 x 12 pixels \(a smaller map "
                                         r"holds too little"):
        processor(flow=str(tmp_path / "flow.png"))


def test_one_channel_flow_image_in_a_batch_names_its_file(processor, tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    cv2.imwrite(str(good), np.zeros((28, 28, 3), np.uint8))
    cv2.imwrite(str(bad), np.zeros((28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"^flow\[1\] \(.*bad\.png\) has shape \(28, 28\); a flow image must have 3"):
        processor(flow=[str(good), str(bad)], apex=[textured(), textured()])
    with pytest.raises(ValueError, match=r"^flow\[1\] \(.*bad\.png\) has shape \(28, 28\)"):
        processor(flow=[Image.open(good), Image.open(bad)], apex=[textured(), textured()])  # as `datasets` decodes


# Settings


def test_unknown_key_in_preprocessor_config_is_refused(tmp_path):
    MMMERImageProcessor().save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    saved = json.loads(path.read_text())
    assert MMMERImageProcessor.from_pretrained(tmp_path).texture_size == MMMERImageProcessor().texture_size
    path.write_text(json.dumps({**saved, "do_crop_faces": True}))
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['do_crop_faces'\].*known parameters: .*'do_crop_face'"):
        MMMERImageProcessor.from_pretrained(tmp_path)


def test_flow_alone_is_a_flow_only_sample_that_feeds_a_flow_only_model():
    """The STSTNet layout of the public maps has no apex faces: a flow map alone gives flow_values only."""
    from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification

    flow = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    config = MMMERConfig()  # the default recipe is flow-only
    processor = MMMERImageProcessor.from_config(config)
    out = processor(flow=[flow, flow], return_tensors="pt")
    assert "texture_values" not in out and tuple(out["flow_values"].shape) == (2, 3, 28, 28)
    with_apex = processor(flow=flow, apex=np.zeros((56, 56, 3), np.uint8), return_tensors="pt")
    assert np.array_equal(out["flow_values"][0].numpy(), with_apex["flow_values"][0].numpy())
    logits = MMMERForMicroExpressionClassification(config).eval()(flow_values=out["flow_values"]).logits
    assert tuple(logits.shape) == (2, config.num_labels)


def test_a_flow_map_alone_is_classified_by_the_pipeline_and_the_cli(tmp_path):
    """A flow-only model trained on the public STSTNet maps (no apex faces) must run on one map."""
    from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification
    from hf_mmmer.cli import main
    from hf_mmmer.pipeline_mmmer import MicroExpressionClassificationPipeline

    config = MMMERConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, flow_patch_sizes=[7, 14])
    model = MMMERForMicroExpressionClassification(config).eval()
    classify = MicroExpressionClassificationPipeline(model=model, image_processor=MMMERImageProcessor.from_config(config))
    path = tmp_path / "map.png"
    cv2.imwrite(str(path), np.random.default_rng(1).integers(0, 256, (28, 28, 3), dtype=np.uint8))
    ranked = classify({"flow": str(path)})
    assert [entry["label"] for entry in ranked] and abs(sum(entry["score"] for entry in ranked) - 1) < 1e-5
    details = classify({"flow": str(path)}, return_importance=True)
    assert details["apex_face"] is None and details["motion_importance"].shape == (28, 28)
    model.save_pretrained(tmp_path / "model")
    MMMERImageProcessor.from_config(config).save_pretrained(tmp_path / "model")
    assert main(["predict", "--model", str(tmp_path / "model"), "--flow", str(path), "--json"]) == 0


def test_a_video_cut_short_is_refused_not_read_in_part(processor, tmp_path):
    """A truncated file decodes its first frames without an error; its container's own sizes say it is short."""
    from hf_mmmer.data.synthetic_videos import render_video
    from hf_mmmer.video_spotting import spot_video

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    for dx in range(9):
        writer.write(cv2.cvtColor(shifted(textured(), dx * 0.5), cv2.COLOR_GRAY2BGR))
    writer.release()
    assert processor(video=str(clip))["flow_values"].shape == (1, 3, 28, 28)
    padded = tmp_path / "padded.avi"  # bytes after the RIFF structure are not a cut
    padded.write_bytes(clip.read_bytes() + b"\0" * 100)
    assert processor(video=str(padded))["flow_values"].shape == (1, 3, 28, 28)
    # A container without such sizes (a raw stream) is not judged.
    stream = tmp_path / "clip.mjpeg"
    stream.write_bytes(b"".join(cv2.imencode(".jpg", shifted(textured(), dx * 0.5))[1].tobytes() for dx in range(9)))
    assert processor(video=str(stream))["apex_index"][0] > 0
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match=r"^video \(.*cut.avi\): the file ends before its container says it does; "
                                         r"it is cut short"):
        processor(video=str(cut))
    render_video(0, duration_s=2, fps=25).write(tmp_path / "long.avi")
    writer = cv2.VideoWriter(str(tmp_path / "long.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    for dx in range(50):
        writer.write(cv2.cvtColor(shifted(textured(), dx * 0.2), cv2.COLOR_GRAY2BGR))
    writer.release()
    padded = tmp_path / "padded.mp4"  # bytes after MP4's last box are not a cut either
    padded.write_bytes((tmp_path / "long.mp4").read_bytes() + bytes(range(7, 107)))
    assert spot_video(str(padded), do_crop_face=False).num_frames == 50
    for long in (tmp_path / "long.avi", tmp_path / "long.mp4"):  # spotting refuses before reading a frame
        cut = tmp_path / f"cut_{long.name}"
        cut.write_bytes(long.read_bytes()[: long.stat().st_size // 2])
        with pytest.raises(ValueError, match=f"{cut.name}: the file ends before its container says it does"):
            spot_video(str(cut), do_crop_face=False)
