"""Face crop for micro-expression frames with OpenCV's bundled Haar cascades.

The crop is found once, on the onset frame, and applied unchanged to the apex (and every frame of a clip): if
the box moved between frames, the optical flow would measure the box moving instead of the face. Haar
cascades ship inside OpenCV 4.x (`cv2.data.haarcascades`), so the crop needs no download and no extra model.

This file is copied next to saved model weights and imported by transformers' remote-code loader, so it may
import only the standard library, NumPy and OpenCV.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


# Eye pairs tilted more than this are taken as false eye detections rather than a tilted head.
_MAX_EYE_TILT_DEGREES = 30.0


@lru_cache(maxsize=None)
def _cascade(file_name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + file_name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load its bundled Haar cascade {file_name!r} (OpenCV 4.x ships it).")
    return cascade


@dataclass(frozen=True)
class FaceCrop:
    """
    A face region found on the onset frame, to be cut identically from every frame of the sample.

    Attributes:
        box (`tuple[int, int, int, int]`): `(x0, y0, x1, y1)` in frame pixels, margin included, clipped to the
            frame.
        angle (`float`): degrees (counter-clockwise) by which the frame is rotated about the box centre before
            cutting, to level the eyes; 0 without alignment.
    """

    box: tuple[int, int, int, int]
    angle: float = 0.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Cut the face from `image` (`(H, W)` or `(H, W, C)`, the size of the frame it was found on)."""
        x0, y0, x1, y1 = self.box
        if self.angle == 0.0:
            return image[y0:y1, x0:x1]
        # Rotating and cutting in one warp touches only the box's pixels, not the whole frame.
        centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, self.angle, 1.0)
        matrix[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def detect_face_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """
    The most certain frontal face in a uint8 gray frame as `(x, y, w, h)`, or `None` when there is none.

    Certainty is the number of overlapping raw detections merged into the box: on the astronaut photo the face
    gathers about 40 and a false box on the suit about 7, so taking the largest box would pick the suit.
    Faces smaller than a tenth of the frame's short side are ignored: micro-expression footage is framed on
    one face, and the bound keeps detection fast.
    """
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"Face detection needs a uint8 gray (H, W) frame; got {gray.dtype} {gray.shape}.")
    min_side = max(24, min(gray.shape[:2]) // 10)
    faces, certainty = _cascade("haarcascade_frontalface_default.xml").detectMultiScale2(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = faces[int(np.argmax(certainty))]
    return int(x), int(y), int(w), int(h)


def eye_tilt(gray: np.ndarray, face: tuple[int, int, int, int]) -> float | None:
    """
    Angle in degrees of the line from the left to the right eye inside `face` (`(x, y, w, h)`), positive when
    the right eye (in the image) is lower; `None` when two plausible eyes are not found.
    """
    x, y, w, h = face
    upper_face = gray[y : y + int(0.6 * h), x : x + w]
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        cv2.equalizeHist(upper_face), scaleFactor=1.1, minNeighbors=3, minSize=(max(8, w // 10),) * 2
    )
    centres = [(ex + ew / 2.0, ey + eh / 2.0, ew * eh) for ex, ey, ew, eh in eyes]
    left = [c for c in centres if c[0] < w / 2.0]
    right = [c for c in centres if c[0] >= w / 2.0]
    if not left or not right:
        return None
    (lx, ly, _), (rx, ry, _) = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    return angle if abs(angle) <= _MAX_EYE_TILT_DEGREES else None


def find_face(gray: np.ndarray, margin: float = 0.1, align: bool = False) -> FaceCrop | None:
    """
    Find the face crop on a uint8 gray onset frame; `None` when no face is found.

    Args:
        gray (`np.ndarray`): the onset frame, `(H, W)` uint8.
        margin (`float`): fraction of the detected face width added on every side, so that brows and chin,
            where much micro-expression motion is, stay inside the crop.
        align (`bool`): rotate about the face centre so that the eyes are level (skipped, without error, when
            two eyes are not found: the crop is then unrotated).
    """
    face = detect_face_box(gray)
    if face is None:
        return None
    x, y, w, h = face
    pad = int(round(margin * w))
    height, width = gray.shape[:2]
    box = (max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad))
    tilt = eye_tilt(gray, face) if align else None
    # cv2 rotation angles are counter-clockwise; a positive tilt (right eye lower) is undone by rotating
    # the frame counter-clockwise by the same angle.
    return FaceCrop(box=box, angle=tilt or 0.0)
