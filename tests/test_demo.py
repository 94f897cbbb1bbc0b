"""The web demo without a browser: what the page computes, its errors, the `hf-mmmer demo` command, the
spotting hook, and the exported Space run as its own app (called through `gradio_client`)."""

import contextlib
import os
import signal
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import free_port

from hf_mmmer.cli import main
from hf_mmmer.data import render_clip
from hf_mmmer.data.synthetic_videos import render_video
from hf_mmmer.video_spotting import spot_video

gr = pytest.importorskip("gradio", reason="the demo extra (pip install 'hf-mmmer[demo]') is not installed")
from hf_mmmer.demo import app as demo_app  # noqa: E402  (needs Gradio)
from hf_mmmer.demo.space import export_space  # noqa: E402


@pytest.fixture(autouse=True)
def environment_untouched():
    """Undo what Gradio writes to `os.environ` (`HF_HUB_DISABLE_TELEMETRY=True` when an app is built without
    analytics): later tests' child processes inherit the environment, and the Hub upload tests count the
    endpoints their client calls, which include one that telemetry-free clients skip."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Onset and apex of a built-in synthetic clip (a procedural face whose lip corners or brows move), as PNGs."""
    clip = render_clip(seed=0, subject=0, index=0, label=1, image_size=112)
    folder = tmp_path_factory.mktemp("frames")
    paths = {"onset": folder / "onset.png", "apex": folder / "apex.png"}
    cv2.imwrite(str(paths["onset"]), clip.frames[0])
    cv2.imwrite(str(paths["apex"]), clip.frames[clip.apex_index])
    return paths


def test_analyse_gives_scores_and_three_images(model_dir, frames):
    classify = demo_app.load_pipeline(model_dir)
    sample = {key: str(path) for key, path in frames.items()}
    scores, face, flow, heatmap, info = demo_app.analyse(classify, sample, False, "motion")
    assert set(scores) == {"negative", "positive", "surprise"} and sum(scores.values()) == pytest.approx(1, abs=1e-5)
    assert face.shape == flow.shape == (256, 256, 3) and heatmap.shape == (256, 512, 3)
    assert flow.max() > 0  # the lip corners or brows moved
    assert info.startswith(f"**{max(scores, key=scores.get)}**") and "face crop off" in info
    assert demo_app.analyse(classify, sample, False, "attention")[3].shape == (256, 768, 3)


def test_page_errors_are_one_line_gradio_errors(model_dir, frames, tmp_path):
    app = demo_app.build_app(model_dir)
    functions = {block.api_name: block.fn for block in app.fns.values()}
    with pytest.raises(gr.Error, match="Give both frames"):
        functions["classify_pair"](None, str(frames["apex"]), False, "motion")
    blank = np.full((120, 120, 3), 128, np.uint8)
    with pytest.raises(gr.Error, match="No face found"):
        functions["classify_pair"](blank, blank, True, "motion")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(gr.Error, match="cannot read any frame"):
        functions["classify_video"](str(broken), False, "motion")


def test_page_refuses_frames_over_its_pixel_and_length_limits_before_any_work(model_dir, tmp_path):
    """Flow time grows with the pixels, so a public page has a limit; each frame and video is named."""
    app = demo_app.build_app(model_dir, max_frame_pixels=100 * 100)
    functions = {block.api_name: block.fn for block in app.fns.values()}
    small, large = np.full((100, 100, 3), 128, np.uint8), np.full((90, 120, 3), 128, np.uint8)
    with pytest.raises(gr.Error, match=r"apex: 120x90 pixels is more than this page takes \(10,000 pixels, 100x100\)"):
        functions["classify_pair"](small, large, False, "motion")
    moved = small.copy()
    moved[40:60, 40:60] = 160
    scores = functions["classify_pair"](small, moved, False, "motion")[0]  # at the limit: classified
    assert sum(scores.values()) == pytest.approx(1, abs=1e-5)
    video = tmp_path / "wide clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (120, 90))
    for _ in range(3):
        writer.write(large)
    writer.release()
    for name, arguments in (("classify_video", (False, "motion")), ("spot", (False,))):
        with pytest.raises(gr.Error, match=r"the video's frames \(wide clip.avi\): 120x90 pixels is more than"):
            functions[name](str(video), *arguments)
    # Length: a clip is decoded whole, and spotting takes time per frame.
    functions = {block.api_name: block.fn for block in
                 demo_app.build_app(model_dir, max_clip_frames=2, max_spotting_frames=2).fns.values()}
    stream = tmp_path / "stream.mjpeg"  # a raw stream has no index, and OpenCV reports a nonsense count for it
    stream.write_bytes(b"".join(cv2.imencode(".jpg", small)[1].tobytes() for _ in range(3)))
    lying = tmp_path / "lying.avi"  # its headers say 1 frame: the clip tab, which decodes it whole, counts
    data = bytearray(video.read_bytes())
    for chunk, offset in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength
        start = data.index(chunk) + 8 + offset
        data[start : start + 4] = (1).to_bytes(4, "little")
    lying.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(lying)).get(cv2.CAP_PROP_FRAME_COUNT) == 1
    with pytest.raises(gr.Error, match="lying.avi: the clip tab takes videos of up to 2 frames, and this one has more"):
        functions["classify_video"](str(lying), False, "motion")
    for name, arguments, tab in (("classify_video", (False, "motion"), "clip"), ("spot", (False,), "spotting")):
        for path in (video, stream):
            with pytest.raises(gr.Error, match=f"{path.name}: the {tab} tab takes videos of up to 2 frames, and this "
                                               "one has more"):
                functions[name](str(path), *arguments)
    assert demo_app.LAUNCH_OPTIONS["max_file_size"]  # uploads are capped too


@pytest.mark.slow
def test_spotting_tab_spots_a_long_video_and_reports_errors_in_one_line(model_dir, tmp_path):
    """The tab runs what `hf-mmmer spot` runs (spot_video, recognise) with the page's model and draws the timeline."""
    app = demo_app.build_app(model_dir)
    assert [block.label for block in app.blocks.values() if isinstance(block, gr.Tab)][-1] == "Spotting (long video)"
    spot = {block.api_name: block.fn for block in app.fns.values()}["spot"]
    video = render_video(0, duration_s=8, fps=25)
    path = tmp_path / "long.avi"
    video.write(path)
    figure, rows = spot(str(path), False)
    expected = spot_video(str(path), do_crop_face=False)
    assert [row[:3] for row in rows] == [[i.onset, i.apex, i.offset] for i in expected.intervals] and rows
    assert "micro-expression(s) spotted" in figure.axes[0].get_title()
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(gr.Error, match="OpenCV cannot read a frame"):
        spot(str(tmp_path / "broken.mp4"), False)


def test_demo_command_reports_a_wrong_model_folder_and_a_missing_gradio(capsys, tmp_path, monkeypatch):
    assert main(["demo", "--model", str(tmp_path / "nowhere")]) == 1
    assert "no model folder at" in capsys.readouterr().err
    assert main(["demo", "--model", str(tmp_path)]) == 1  # a folder, but not a saved model
    assert "no config.json" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if Gradio were not installed: find_spec says None
    monkeypatch.delitem(sys.modules, "hf_mmmer.demo.app")  # so that the command imports it anew
    assert main(["demo", "--model", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'hf-mmmer[demo]'" in err and len(err.strip().splitlines()) == 1


def test_export_space_refuses_a_non_empty_folder_and_a_wrong_model(model_dir, tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        export_space(model_dir, occupied)
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    with pytest.raises(FileNotFoundError, match="no model folder"):
        export_space(tmp_path / "nowhere", tmp_path / "space")
    assert not (tmp_path / "space").exists()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    with pytest.raises(ValueError, match=r"dangling is a symbolic link to nothing \(.*gone\)"):
        export_space(model_dir, dangling)
    assert not (tmp_path / "gone").exists()


@pytest.mark.slow
def test_exported_space_runs_as_its_own_app(capsys, model_dir, frames, tmp_path, fork_server):
    """The Space's app runs in a process that never imported this session's package (a fork of the fork
    server, cwd the Space): its `hf_mmmer` is the Space's own copy."""
    from gradio_client import Client, handle_file

    space = tmp_path / "space"
    assert main(["demo", "--model", str(model_dir), "--export_space", str(space)]) == 0
    assert "Space written to" in capsys.readouterr().out
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and f"sdk_version: {gr.__version__}" in readme
    assert "app_file: app.py" in readme and (space / "model" / "model.safetensors").is_file()
    assert any(line.startswith("torch") for line in (space / "requirements.txt").read_text().splitlines())
    port = free_port()
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    [pid] = fork_server.start(space, code="import runpy, hf_mmmer; print(hf_mmmer.__file__, flush=True); "
                                           "runpy.run_path('app.py', run_name='__main__')", argv=["-c"], envs=[env])
    log = space / "fork-0.out"
    try:
        deadline = time.time() + 60
        while fork_server.running() and time.time() < deadline and "\n" not in (log.exists() and log.read_text() or ""):
            time.sleep(0.05)
        assert log.read_text().splitlines()[0] == str(space / "hf_mmmer" / "__init__.py")
        client = None
        for _ in range(120):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "files"))
                break
            except Exception:  # not listening yet
                assert fork_server.running(), (space / "fork-0.err").read_text()
                time.sleep(0.5)
        assert client is not None, "the Space's app did not start"
        scores, face, flow, heatmap, info = client.predict(
            handle_file(str(frames["onset"])), handle_file(str(frames["apex"])), False, "motion",
            api_name="/classify_pair")
        assert scores["label"] in {"negative", "positive", "surprise"} and info.startswith(f"**{scores['label']}**")
        assert cv2.imread(heatmap).shape == (256, 512, 3)
        not_an_image = tmp_path / "notes.png"
        not_an_image.write_text("a text file with an image's name")
        with pytest.raises(Exception, match="cannot identify image file .*notes.png"):
            client.predict(handle_file(str(not_an_image)), handle_file(str(frames["apex"])), False, "motion",
                           api_name="/classify_pair")
        assert client.predict(handle_file(str(frames["onset"])), handle_file(str(frames["apex"])), False, "motion",
                              api_name="/classify_pair")[0]["label"] == scores["label"]  # still serving
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        fork_server.wait(30)
