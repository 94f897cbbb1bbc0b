"""Micro-expression spotting on synthetic data: long-video intervals, single-clip apex, speed.

1. Long videos (`hf_mmmer.data.synthetic_videos`): micro-expressions at known times among blinks, head
   turns and drift, macro-expressions, sensor noise and lighting flicker, at 25, 100 and 200 fps. Scored
   with the MEGC spotting metric: a spotted interval is a true positive when its IoU (in frames) with a
   ground-truth interval not matched yet is >= 0.5; precision, recall and F1 pooled over the videos.
2. Apex error on single clips: `render_clip(seed, subject=i, num_frames=30)` for 30 subjects, the set on
   which the former whole-face mean flow was measured (benchmarks/RESULTS.md, "Spotting"): head jitter and
   drift on every clip, blinks on about a third.
3. Speed of `hf-mmmer spot`'s work (decode, Haar face tracking, flow, peaks) on a 640x480 30 fps video of
   a real face photo (scikit-image's astronaut) with head jitter and noise: frames per second and the
   real-time factor.

    python benchmarks/spotting.py [--seeds 0,1,2] [--duration 30] [--rates 25,100,200]
                                  [--apex_seeds 10,11,12] [--speed_seconds 10] [--parts spotting,apex,speed]
"""

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from hf_mmmer.data.synthetic_clips import render_clip
from hf_mmmer.data.synthetic_videos import render_video
from hf_mmmer.spotting import spot_apex
from hf_mmmer.video_spotting import spot_video


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def megc_matches(found: list[tuple[int, int]], truth: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`(found index, truth index)` of the true positives: each spotted interval in time order takes the
    unmatched ground truth of largest IoU, and counts when that IoU is >= 0.5."""
    matches = []
    for i, interval in enumerate(found):
        candidates = [(iou(interval, t), k) for k, t in enumerate(truth) if k not in {m for _, m in matches}]
        best = max(candidates, default=(0.0, None))
        if best[0] >= 0.5:
            matches.append((i, best[1]))
    return matches


def megc_counts(found: list[tuple[int, int]], truth: list[tuple[int, int]],
                matches=None) -> tuple[int, int, int]:
    """True positives, false positives, false negatives (`matches`: `megc_matches(found, truth)`, computed when
    not given)."""
    tp = len(megc_matches(found, truth) if matches is None else matches)
    return tp, len(found) - tp, len(truth) - tp


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def spotting_table(seeds: list[int], duration: float, rates: list[float]) -> None:
    print(f"\n## Long-video spotting: {len(seeds)} seeds x {duration:g} s per frame rate (IoU >= 0.5)\n")
    print("| fps | videos | ground truth | TP | FP | FN | precision | recall | F1 | apex error of TPs, ms (frames) "
          "| spotting s per video s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total, all_errors = np.zeros(3, int), []
    for fps in rates:
        counts, seconds, truth_count, errors = np.zeros(3, int), 0.0, 0, []
        for seed in seeds:
            video = render_video(seed, duration, fps)
            start = time.perf_counter()
            result = spot_video(video.frames, fps, do_crop_face=False)
            seconds += time.perf_counter() - start
            truth = [(m.onset, m.offset) for m in video.micro_expressions]
            truth_count += len(truth)
            found = [(i.onset, i.offset) for i in result.intervals]
            matches = megc_matches(found, truth)
            counts += megc_counts(found, truth, matches)
            errors += [abs(result.intervals[i].apex - video.micro_expressions[k].apex) / fps for i, k in matches]
        total += counts
        all_errors += errors
        p, r, f = prf(*counts)
        print(f"| {fps:g} | {len(seeds)} | {truth_count} | {counts[0]} | {counts[1]} | {counts[2]} | {p:.3f} | {r:.3f} | "
              f"**{f:.3f}** | {1000 * np.mean(errors):.0f} ({fps * np.mean(errors):.1f}) | "
              f"{seconds / (len(seeds) * duration):.2f} |")
    p, r, f = prf(*total)
    print(f"| all | {len(seeds) * len(rates)} | {total[0] + total[2]} | {total[0]} | {total[1]} | {total[2]} | {p:.3f} | "
          f"{r:.3f} | **{f:.3f}** | {1000 * np.mean(all_errors):.0f} | |")


def apex_table(seeds: list[int], num_clips: int = 30, num_frames: int = 30) -> None:
    print(f"\n## Apex on single clips: {num_clips} clips of {num_frames} frames per seed\n")
    print("| seed | within +-2 frames | exact | mean abs error (frames) | middle frame within +-2 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for seed in seeds:
        errors, middle = [], []
        for subject in range(num_clips):
            clip = render_clip(seed=seed, subject=subject, index=0, num_frames=num_frames)
            errors.append(spot_apex(clip.frames) - clip.apex_index)
            middle.append(spot_apex(clip.frames, strategy="middle") - clip.apex_index)
        errors, middle = np.abs(errors), np.abs(middle)
        print(f"| {seed} | **{(errors <= 2).sum()} / {num_clips}** | {(errors == 0).sum()} | {errors.mean():.2f} | "
              f"{(middle <= 2).sum()} / {num_clips} |")


def speed_video(path: Path, seconds: float, fps: float = 30.0) -> None:
    """A 640x480 MJPG video of the astronaut's face with sub-pixel head jitter and sensor noise."""
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[:400, 80:480]
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[40:440, 120:520] = face
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    try:
        for _ in range(int(seconds * fps)):
            shift = np.float32([[1, 0, rng.normal(0, 0.3)], [0, 1, rng.normal(0, 0.3)]])
            frame = cv2.warpAffine(canvas, shift, (640, 480), borderMode=cv2.BORDER_REPLICATE)
            writer.write(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
    finally:
        writer.release()


def speed_table(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speed.avi"
        speed_video(path, seconds)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = spot_video(path)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"\n## Speed: 640x480, 30 fps, {seconds:g} s, face found and tracked (Haar), DIS flow\n")
    print("CPU time is this process's own; wall time includes waiting for the shared cores.\n")
    print("| frames | wall s | CPU s | frames per wall s | real-time factor (wall) | real-time factor (CPU) | face lost |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {result.num_frames} | {elapsed:.2f} | {cpu:.2f} | {result.num_frames / elapsed:.1f} | "
          f"**{seconds / elapsed:.2f}x** | {seconds / cpu:.2f}x | {len(result.gaps)} gaps |")


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=integers, default=[0, 1, 2], help="long-video seeds (tuned on 100-102)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per long video")
    parser.add_argument("--rates", type=lambda t: [float(p) for p in t.split(",")], default=[25.0, 100.0, 200.0])
    parser.add_argument("--apex_seeds", type=integers, default=[10, 11, 12], help="clip seeds (tuned on 5-8)")
    parser.add_argument("--speed_seconds", type=float, default=10.0)
    parser.add_argument("--parts", default="spotting,apex,speed")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "spotting" in parts:
        spotting_table(args.seeds, args.duration, args.rates)
    if "apex" in parts:
        apex_table(args.apex_seeds)
    if "speed" in parts:
        speed_table(args.speed_seconds)


if __name__ == "__main__":
    main()
