"""The Gradio app: a micro-expression from two frames, a clip or a webcam recording, and why the model said so.

The page shows the class scores, the face crop the model saw, the onset-to-apex optical flow as a colour
image, and a heatmap over the face (the motion importance by default, the paper's fused attention on
request; `hf_mmmer.visualization`). A third tab finds the micro-expressions of a long video
(`hf_mmmer.video_spotting`, as `hf-mmmer spot` does) and draws them on the spotting timeline.

```python
from hf_mmmer.demo.app import build_app

build_app("runs/demo/final_model").launch(**LAUNCH_OPTIONS)   # or: hf-mmmer demo --model runs/demo/final_model
```
"""

import functools
import math
from pathlib import Path

import cv2

from . import require_gradio

require_gradio()
import gradio as gr  # noqa: E402  (after the check that turns its absence into an install hint)

from ..cli import load_pipeline  # noqa: E402
from ..errors import USER_ERRORS, quiet_native_decoders  # noqa: E402
from ..spotting_timeline import timeline_figure  # noqa: E402
from ..video_spotting import recognise, spot_video  # noqa: E402
from ..visualization import HEATMAP_VIEWS, PANEL_SIZE, flow_to_color, heatmap_image  # noqa: E402

TITLE = "hf-mmmer: micro-expression recognition"
LAUNCH_OPTIONS = {"ssr_mode": False, "show_error": True, "max_file_size": "200mb"}
"""Server-side rendering needs Node.js, which neither this package nor a Space needs for this page. Errors
are shown on the page: Gradio decodes an upload (a text file named .png) before the page's own checks run,
and without `show_error` the visitor would see only that something failed. The price: an unexpected error's
text (a server path, say) reaches the visitor too, on a public Space or with `--host 0.0.0.0` as well.
Uploads are capped so that one visitor cannot fill the server's disk (a minute of 1080p video is well under
the cap)."""

MAX_CLIP_FRAMES = 300
"""The longest clip the clip tab takes: a clip is decoded whole into memory, and a micro-expression lasts half
a second at most (100 frames at 200 fps), so ten seconds of 30 fps video is room enough."""
MAX_SPOTTING_FRAMES = 30 * 60 * 10
"""The longest video the spotting tab takes, ten minutes at 30 fps: spotting reads the frames one by one, but
its time grows with their number, and a public page must not let one visitor hold the server for long."""

MAX_FRAME_PIXELS = 4096 * 4096
"""The largest frame, or video frame, the page takes by default. The optical flow runs on the face crop at
the frame's own resolution (on the whole frame when no face is found), so its time grows with the pixels:
a very large upload would hold a shared server for minutes (`benchmarks/RESULTS.md`, "Inference latency").
The pipeline and `hf-mmmer predict` take any size; a page on a bigger machine passes its own limit."""


def analyse(classify, sample, crop_face: bool, view: str) -> tuple:
    """Classify one pipeline input and draw what the page shows.

    Returns `(scores, face, flow, heatmap, info)`: `{label: score}`, three uint8 RGB images (the face as the
    model saw it, the flow in colour, the heatmap in `view`) and a Markdown line on the apex frame and crop.
    Raises the pipeline's errors (`ValueError` for a frame without a face, an unreadable file, ...).
    """
    result = classify(sample, return_importance=True, do_crop_face=crop_face)
    scores = {entry["label"]: entry["score"] for entry in result["predictions"]}
    face = result["apex_face"]
    face = cv2.resize(face if face.ndim == 3 else cv2.cvtColor(face, cv2.COLOR_GRAY2RGB), (PANEL_SIZE, PANEL_SIZE),
                      interpolation=cv2.INTER_CUBIC)
    crops = {"face": "the face found on the onset", "full_frame": "no face found: the whole frame",
             "off": "the frames as given (face crop off)"}
    info = [f"**{result['predictions'][0]['label']}** ({result['predictions'][0]['score']:.2f}); model input: "
            f"{crops[result['face_crop']]}"]
    if result["apex_index"] is not None:
        info.append(f"apex spotted at frame {result['apex_index']}")
    return scores, face, flow_to_color(result["flow"]), heatmap_image(result, view), "; ".join(info) + "."


def check_upload_pixels(name: str, height: int, width: int, max_pixels: int):
    """Refuse a frame larger than `max_pixels`, naming it, its size and the way round the limit."""
    if height * width > max_pixels:
        side = math.isqrt(max_pixels)
        raise ValueError(f"{name}: {width}x{height} pixels is more than this page takes ({max_pixels:,} pixels, "
                         f"{side}x{side}); scale it down, or run `hf-mmmer predict`, which takes any size.")


def check_video_upload(path: str, max_pixels: int, max_frames: int, tab: str, count: bool):
    """`check_upload_pixels` for a video's frames, and at most `max_frames` of them. With `count`, the frames
    are counted (decoded up to one past the limit, none kept), since a header can lie and the clip tab
    decodes the whole clip into memory; else the container's count is taken where it gives one (spotting
    streams its frames, so a lying header costs time, not memory). A file OpenCV cannot open is left to the
    pipeline, whose error says so."""
    capture = cv2.VideoCapture(path)
    try:
        if capture.isOpened():
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            check_upload_pixels(f"the video's frames ({Path(path).name})", height, width, max_pixels)
            frames = 0 if count else max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
            if frames == 0:
                while frames <= max_frames and capture.grab():
                    frames += 1
            if frames > max_frames:
                raise ValueError(f"{Path(path).name}: the {tab} tab takes videos of up to {max_frames} frames, and "
                                 "this one has more; cut it shorter, or run `hf-mmmer predict` or `hf-mmmer spot`, "
                                 "which take any length.")
    finally:
        capture.release()


def _shown_to_user(callback):
    """Report the user's mistakes (no face, unreadable file, missing input) in the page, as one line."""

    @functools.wraps(callback)
    def wrapper(*args):
        try:
            return callback(*args)
        except USER_ERRORS as error:
            raise gr.Error(str(error), print_exception=False) from error

    return wrapper


def build_app(model_dir, max_frame_pixels: int = MAX_FRAME_PIXELS, max_clip_frames: int = MAX_CLIP_FRAMES,
              max_spotting_frames: int = MAX_SPOTTING_FRAMES) -> "gr.Blocks":
    """The demo page around the saved model in `model_dir` (loaded once; a wrong folder fails here, in one
    line). Frames and video frames over `max_frame_pixels`, clips over `max_clip_frames` frames and videos
    to spot over `max_spotting_frames` are refused (the constants say why)."""
    quiet_native_decoders()  # a visitor's broken upload gets the page's one line, the server log no chatter
    model_dir = Path(model_dir)
    classify = load_pipeline(model_dir)

    @_shown_to_user
    def classify_pair(onset, apex, crop_face, view):
        if onset is None or apex is None:
            raise ValueError("Give both frames: the onset (neutral face) and the apex (the expression at its peak).")
        for name, frame in (("onset", onset), ("apex", apex)):
            check_upload_pixels(name, *frame.shape[:2], max_frame_pixels)
        return analyse(classify, {"onset": onset, "apex": apex}, crop_face, view)

    @_shown_to_user
    def classify_video(video, crop_face, view):
        if not video:
            raise ValueError("Upload a clip or record one with the webcam first.")
        check_video_upload(video, max_frame_pixels, max_clip_frames, "clip", count=True)
        return analyse(classify, {"video": video}, crop_face, view)

    @_shown_to_user
    def spot(video, crop_face):
        if not video:
            raise ValueError("Upload a long video first.")
        check_video_upload(video, max_frame_pixels, max_spotting_frames, "spotting", count=False)
        result = spot_video(video, do_crop_face=crop_face)
        entries = recognise(classify.model, classify.image_processor, video, result)
        rows = [[entry[key] for key in ("onset", "apex", "offset", "onset_time", "offset_time", "label", "score")]
                for entry in entries]
        return timeline_figure(result, entries), rows

    frame_sources = ["upload", "webcam", "clipboard"]
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\nModel: `{model_dir.name}` ({', '.join(classify.model.config.id2label.values())}). "
                    "Give the neutral onset and the apex of an expression, or a short clip whose first frame is "
                    "the onset; the page shows the scores and where the face moved.")
        with gr.Row():
            with gr.Column():
                with gr.Tabs():
                    with gr.Tab("Two frames"):
                        with gr.Row():
                            onset = gr.Image(label="onset (neutral)", type="numpy", sources=frame_sources,
                                             elem_id="onset")
                            apex = gr.Image(label="apex", type="numpy", sources=frame_sources, elem_id="apex")
                        pair_button = gr.Button("Classify the two frames", variant="primary", elem_id="classify-pair")
                    with gr.Tab("Clip or webcam"):
                        video = gr.Video(label="clip, onset first (the apex is spotted)",
                                         sources=["upload", "webcam"], elem_id="video")
                        video_button = gr.Button("Classify the clip", variant="primary", elem_id="classify-video")
                    with gr.Tab("Spotting (long video)"):
                        long_video = gr.Video(label="long video", sources=["upload"], elem_id="long-video")
                        spot_button = gr.Button("Find the micro-expressions", variant="primary")
                        timeline = gr.Plot(label="timeline")
                        table = gr.Dataframe(headers=["onset", "apex", "offset", "onset s", "offset s", "label",
                                                      "score"], label="intervals (frames and seconds)")
                crop_face = gr.Checkbox(value=classify.image_processor.do_crop_face, label="crop the face first "
                                        "(untick for frames that are already face crops)")
                view = gr.Radio([(text, name) for name, text in HEATMAP_VIEWS.items()], value="motion",
                                label="heatmap")
            with gr.Column():
                scores = gr.Label(label="class scores", elem_id="scores")
                info = gr.Markdown(elem_id="info")
                # Gradio draws an image's label and buttons over its top corners, where the heatmap has its
                # titles: the images go without, under a caption of their own.
                gr.Markdown("face crop (model input) | optical flow, onset to apex (hue: direction, brightness: size)")
                with gr.Row():
                    face = gr.Image(show_label=False, buttons=[], elem_id="face")
                    flow = gr.Image(show_label=False, buttons=[], elem_id="flow")
                gr.Markdown("heatmap over the face")
                heatmap = gr.Image(show_label=False, buttons=[], elem_id="heatmap")
        outputs = [scores, face, flow, heatmap, info]
        pair_button.click(classify_pair, [onset, apex, crop_face, view], outputs, api_name="classify_pair")
        video_button.click(classify_video, [video, crop_face, view], outputs, api_name="classify_video")
        spot_button.click(spot, [long_video, crop_face], [timeline, table], api_name="spot")
    return app


def launch(model_dir, host: str = "127.0.0.1", port: int | None = None, **options):
    """Start the demo server and block (`hf-mmmer demo`); `options` go to `gr.Blocks.launch`."""
    build_app(model_dir).launch(server_name=host, server_port=port, **{**LAUNCH_OPTIONS, **options})


__all__ = ["build_app", "launch", "analyse", "LAUNCH_OPTIONS"]
