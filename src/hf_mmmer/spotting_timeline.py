"""The spotting timeline: the motion signal of a long video with its spotted, labelled intervals.

People read a plot faster than a table: the contrast signal over time shows how far each spotted interval
rose above the rest, the shaded spans show where the face was lost (nothing analysed there), and each
interval carries its class and score.
"""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display on servers, and no GUI backend picked up from the environment
import matplotlib.pyplot as plt  # noqa: E402

from .atomic_files import atomic_path  # noqa: E402


def timeline_figure(result, entries: list[dict]):
    """The figure of `result` (`video_spotting.SpottingResult`) with the labelled `entries` (`recognise`);
    the caller saves or shows it, then closes it."""
    figure, axis = plt.subplots(figsize=(12, 3.2), layout="constrained")
    axis.plot(result.times, result.signal, color="tab:blue", linewidth=0.8, label="motion contrast")
    for start, end in result.gaps:
        axis.axvspan(start, end, color="0.85", label="face lost")
    top = max(float(np.nanmax(result.signal, initial=0.0)), 1e-6)
    for entry in entries:
        axis.axvspan(entry["onset_time"], entry["offset_time"], color="tab:orange", alpha=0.35)
        axis.annotate(f"{entry['label']} {entry['score']:.2f}", (entry["onset_time"], top), fontsize=8,
                      rotation=90, va="top", ha="right")
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axis.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axis.set_xlim(0, result.num_frames / result.fps)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("contrast (px)")
    lost = sum(end - start for start, end in result.gaps)  # "none spotted" must not hide "not looked at"
    duration = result.num_frames / result.fps
    unseen = f"; face lost for {lost:.2f} of {duration:.2f} s (grey), not searched" if lost else ""
    axis.set_title(f"{Path(result.name).name}: {len(entries)} micro-expression(s) spotted{unseen}")
    return figure


def save_timeline(result, entries: list[dict], path) -> Path:
    """[`timeline_figure`] written to `path` as a PNG (`hf-mmmer spot --plot`; atomically: a link at `path` is
    replaced, never written through)."""
    figure = timeline_figure(result, entries)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
    finally:
        plt.close(figure)
    return Path(path)
