"""Spotting: the apex of a clip, micro-expression intervals in synthetic long videos, bad input, the command."""

import json
import os
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest
from skimage import data
from transformers import pipeline

from hf_mmmer.cli import main
from hf_mmmer.data.synthetic_clips import class_motion, draw_frame, make_face
from hf_mmmer.data.synthetic_videos import render_video
from hf_mmmer.spotting import spot_apex
from hf_mmmer.spotting_timeline import timeline_figure
from hf_mmmer.video_spotting import spot_video


SIZE = 96
SEED = 4
"""A synthetic 8 s video with two micro-expressions (0.5 to 2 px) and a blink between them."""


def textured_frame(size: int = SIZE) -> np.ndarray:
    noise = np.random.default_rng(1).random((size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return 255 * (texture - texture.min()) / (texture.max() - texture.min())


def warp(frame: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]].astype(np.float32)
    moved = cv2.remap(frame, x - dx.astype(np.float32), y - dy.astype(np.float32), cv2.INTER_CUBIC,
                      borderMode=cv2.BORDER_REFLECT)
    return np.clip(moved, 0, 255).round().astype(np.uint8)


def clip_with_distractors(peak: int, blink: int, length: int = 12) -> list[np.ndarray]:
    """A lip-corner-like motion (mouth region) peaking at `peak`, head jitter of up to 1.5 px on every
    frame, and at `blink` a large change of the eye band: what made whole-face mean flow miss the apex."""
    frame, size = textured_frame(), SIZE
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    mouth = np.exp(-((x - 0.35) ** 2 + (y - 0.75) ** 2) / (2 * 0.06**2))
    jitter = np.random.default_rng(0).uniform(-1.5, 1.5, (length, 2))
    frames = []
    for t in range(length):
        amount = 1.5 * max(0.0, 1 - abs(t - peak) / peak)
        moved = warp(frame, np.full_like(mouth, jitter[t, 0]), jitter[t, 1] - amount * mouth)
        if t == blink:
            moved[round(0.38 * size) : round(0.48 * size)] = 40
        frames.append(moved)
    return frames


@pytest.mark.parametrize("peak, blink", [(4, 8), (7, 3)])
def test_apex_is_the_expression_not_the_blink_or_the_head(peak, blink):
    assert spot_apex(clip_with_distractors(peak, blink)) == peak


@pytest.mark.parametrize("apex, blink", [(5, 7), (11, 9), (15, 16)])
def test_apex_of_a_synthetic_clip_with_a_blink_and_head_jitter(apex, blink):
    """A smooth 1.5 px expression with a flat side (two frames from the apex it is within 3 to 8 % of its
    peak on one side) on a procedural face with head jitter and drift on every frame and a blink near the apex."""
    rng = np.random.default_rng(apex)
    face = make_face(rng)  # 128 px, the size spotting works at: a smaller face is upscaled and blurred
    t = np.arange(20)
    amount = np.where(t <= apex, np.sin(0.5 * np.pi * t / apex) ** 2,
                      1 - 0.7 * np.sin(0.5 * np.pi * (t - apex) / (19 - apex)) ** 2)
    motion = class_motion(face, label=1, amplitude=1.5)
    shifts = np.linspace(0, 0.5, 20)[:, None] + rng.normal(0, 0.25, (20, 2))
    closure = np.clip(1 - np.abs(t - blink) / 1.5, 0, 1)
    frames = [draw_frame(face, a * motion, shift, c, 2.0, rng) for a, shift, c in zip(amount, shifts, closure)]
    assert abs(spot_apex(frames) - apex) <= 2


def test_middle_apex_and_bad_clips():
    clip = clip_with_distractors(4, 8, length=9)
    assert spot_apex(clip, strategy="middle") == 4
    assert spot_apex(clip[:2], strategy="middle") == 1
    with pytest.raises(ValueError, match="at least 2 frames; got 1"):
        spot_apex(clip[:1])
    with pytest.raises(ValueError, match="apex_spotting 'last'.*flow_magnitude"):
        spot_apex(clip, strategy="last")


@pytest.fixture(scope="module")
def video_25():
    return render_video(SEED, duration_s=8, fps=25)


@pytest.fixture(scope="module")
def spotted_25(video_25):
    return spot_video(video_25.frames, 25, do_crop_face=False)


def iou(a, b) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def test_micro_expressions_are_spotted_and_the_blink_is_not(video_25, spotted_25):
    truth = [(m.onset, m.offset) for m in video_25.micro_expressions]
    found = [(i.onset, i.offset) for i in spotted_25.intervals]
    blinks = np.flatnonzero(video_25.frames._timeline.closure > 0)
    assert len(truth) == 2 and len(blinks) and not any(a <= blinks.mean() <= b for a, b in truth)
    assert len(found) == len(truth) and all(iou(f, t) >= 0.5 for f, t in zip(found, truth))
    for interval in spotted_25.intervals:
        assert interval.onset < interval.apex < interval.offset
        assert interval.onset_time == pytest.approx(interval.onset / 25)
        assert interval.score > 0
    assert len(spotted_25.times) == len(spotted_25.signal) == 200 and not spotted_25.gaps


def test_spotting_does_not_depend_on_the_frame_rate(spotted_25):
    spotted_100 = spot_video(render_video(SEED, duration_s=8, fps=100).frames, 100, do_crop_face=False)
    times = lambda result: [(i.onset_time, i.offset_time) for i in result.intervals]  # noqa: E731
    assert len(spotted_100.intervals) == len(spotted_25.intervals)
    assert np.allclose(times(spotted_100), times(spotted_25), atol=0.1)


def test_the_frame_count_includes_the_frames_after_the_last_analysed_one(video_25):
    """At 200 fps every 4th frame is analysed; 199 frames end 2 frames after the last analysed one (196)."""
    result = spot_video([video_25.frames[i] for i in range(199)], 200, do_crop_face=False)
    assert result.num_frames == 199 and len(result.times) == len(result.signal) == 50


def test_frames_need_a_frame_rate_and_a_long_enough_stretch(video_25):
    frames = [video_25.frames[i] for i in range(6)]
    with pytest.raises(ValueError, match="frames carry no frame rate; pass it"):
        spot_video(frames, do_crop_face=False)
    with pytest.raises(ValueError, match="too short to spot in.*at least 0.3"):
        spot_video(frames, 25, do_crop_face=False)


def test_no_face_is_reported_with_the_time_range():
    frames = [np.full((120, 160), 90, np.uint8)] * 50
    with pytest.raises(ValueError, match=r"no face found in the video \(0.00-2.00 s"):
        spot_video(frames, 25)


def test_a_lost_face_is_skipped_and_reported():
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (256, 256), interpolation=cv2.INTER_AREA)
    blank = np.full_like(face, 90)
    frames = [face] * 30 + [blank] * 30 + [face] * 30  # 2 s, 2 s, 2 s at 15 fps
    result = spot_video(frames, 15)
    assert result.gaps == [(2.0, 4.0)]
    assert np.isnan(result.signal[30:60]).all() and not np.isnan(result.signal[:30]).all()
    figure = timeline_figure(result, [])  # the page's and --plot's title says what was not searched
    assert figure.axes[0].get_title().endswith("0 micro-expression(s) spotted; face lost for 2.00 of 6.00 s (grey), "
                                               "not searched")
    plt.close(figure)


def test_a_frame_rate_too_low_to_see_a_micro_expression_is_refused():
    """An empty result would read as "none here" where none could have been seen."""
    frames = [np.full((64, 64), 90, np.uint8)] * 10
    for fps in (0.001, 1, 14.9):
        with pytest.raises(ValueError, match=f"frames: {fps:g} fps is too few to spot micro-expressions .*at least 15"):
            spot_video(frames, fps)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory, video_25):
    path = tmp_path_factory.mktemp("video") / "long.avi"
    video_25.write(path)
    return path


def test_spot_command_prints_labelled_intervals_as_json_and_plots(capsys, model_dir, video_file, tmp_path):
    plot = tmp_path / "timeline.png"
    code = main(["spot", str(video_file), "--model", str(model_dir), "--no_face_crop", "--json", "--plot", str(plot)])
    entries = json.loads(capsys.readouterr().out)
    assert code == 0 and len(entries) >= 1
    for entry in entries:
        assert {"onset", "apex", "offset", "onset_time", "offset_time", "label", "score"} <= set(entry)
        assert entry["label"] in ("negative", "positive", "surprise") and 0 < entry["score"] <= 1
        assert entry["onset"] < entry["apex"] < entry["offset"]
    assert cv2.imread(str(plot)) is not None and not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_spot_command_keeps_existing_files_and_says_why_it_cannot_run(capsys, model_dir, video_file, tmp_path):
    plot = tmp_path / "timeline.png"
    plot.write_bytes(b"mine")
    assert main(["spot", str(video_file), "--model", str(model_dir), "--plot", str(plot)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err and plot.read_bytes() == b"mine"
    linked = tmp_path / "linked.png"
    linked.symlink_to(plot)  # with --overwrite the link is replaced by the plot; the file it names is kept
    assert main(["spot", str(video_file), "--model", str(model_dir), "--no_face_crop", "--plot", str(linked),
                 "--overwrite"]) == 0
    assert plot.read_bytes() == b"mine" and not linked.is_symlink() and cv2.imread(str(linked)) is not None
    capsys.readouterr()
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "img0.png"), np.zeros((8, 8), np.uint8))
    assert main(["spot", str(folder), "--model", str(model_dir)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no frame rate; pass it (--fps" in error


def test_the_pipeline_spots_a_long_video(model_dir, video_25, spotted_25):
    """Through the remote code saved with the model: the spotting modules are saved next to it."""
    assert (model_dir / "spotting.py").is_file() and (model_dir / "video_spotting.py").is_file()
    classify = pipeline("micro-expression-classification", model=str(model_dir), trust_remote_code=True)
    entries = classify(list(video_25.frames), spot=True, fps=25, do_crop_face=False)
    assert [(e["onset"], e["apex"], e["offset"]) for e in entries] == [
        (i.onset, i.apex, i.offset) for i in spotted_25.intervals]
    assert all(e["label"] in ("negative", "positive", "surprise") for e in entries)


def test_benchmark_scores_with_the_megc_metric(monkeypatch):
    """IoU >= 0.5 with a ground truth not matched yet; a second hit on one interval is a false positive."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from spotting import megc_counts, prf

    truth = [(10, 20), (50, 60)]
    assert megc_counts([(10, 20), (12, 21), (55, 70), (90, 95)], truth) == (1, 3, 1)  # (55, 70): IoU 6/21
    assert megc_counts([(11, 21), (50, 59)], truth) == (2, 0, 0)
    assert prf(1, 3, 1) == pytest.approx((0.25, 0.5, 1 / 3))


def test_a_stray_image_in_a_frame_folder_is_refused_by_name(video_25, tmp_path):
    frames = [video_25.frames[i] for i in range(30)]
    with pytest.raises(ValueError, match=r"frames: frame 12 is 60x40 but frame 0 is .*one size"):
        spot_video(frames[:12] + [np.zeros((40, 60), np.uint8)] + frames[12:], 25, do_crop_face=False)


def test_spot_plot_may_not_land_in_the_input_folder_and_must_be_png(capsys, model_dir, video_25, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:03d}.png"), video_25.frames[index])
    before = sorted(folder.iterdir())
    for plot, message in ((folder / "plot.png", "would write over or into the input"), (tmp_path / "t.jpg", ".png")):
        assert main(["spot", str(folder), "--model", str(model_dir), "--fps", "25", "--plot", str(plot)]) == 1
        assert message in capsys.readouterr().err
    assert sorted(folder.iterdir()) == before


def test_an_interval_whose_onset_and_apex_are_one_image_is_named_by_its_time(model_dir):
    """A video that repeats frames can give such an interval; the batch's own error would name an index only."""
    from hf_mmmer.cli import load_pipeline
    from hf_mmmer.face_detection import FaceCrop
    from hf_mmmer.spotting import Interval
    from hf_mmmer.video_spotting import SpottingResult, recognise

    classify = load_pipeline(model_dir)
    frames = [np.full((64, 64), 90, np.uint8)] * 10
    result = SpottingResult("clip.mp4", 25.0, 10, [Interval(2, 5, 8, 0.08, 0.32, 1.0)], np.arange(10) / 25,
                            np.zeros(10), crops=[FaceCrop(box=(0, 0, 64, 64))])
    with pytest.raises(ValueError, match=r"^clip.mp4: the interval at 0.08-0.32 s has the same image at its onset "
                                         r"\(frame 2\) and apex \(frame 5\)"):
        recognise(classify.model, classify.image_processor, frames, result)
