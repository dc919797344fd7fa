"""Tail augmentation views (spec §2.5): rotations and flips of the predicted tail images only.

``rot15flip`` / ``rot30flip`` / ``rot45flip``: every angle step x {no flip, flip}, minus the identity,
starting from the resized (not cropped) image: flip, edge-pad by ceil((sqrt(2)*crop - crop)/2), rotate
counter-clockwise about the centre (nearest neighbour, no expansion, zero fill), centre-crop.
``rotflip``: the 90-degree rotations x flip of the normal crop, minus the identity (7 views).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..data.images import _open, resize_crop, resize_shorter

AUGMENTATIONS = ("none", "rot15flip", "rot30flip", "rot45flip", "rotflip")
_STEPS = {"rot15flip": 15, "rot30flip": 30, "rot45flip": 45}


def num_views(kind: str) -> int:
    if kind == "none":
        return 0
    if kind == "rotflip":
        return 7
    return 2 * (360 // _STEPS[kind]) - 1


def _centre_crop(array: np.ndarray, crop: int) -> np.ndarray:
    height, width = array.shape[:2]
    top, left = int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))
    return array[top : top + crop, left : left + crop]


def tail_views(path: str, resize: int, crop: int, kind: str) -> list[np.ndarray]:
    """The extra views (uint8 (crop, crop, 3)) of one image, without the identity view."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown tail augmentation {kind!r}; choose from {AUGMENTATIONS}")
    if kind == "none":
        return []
    image = _open(path, "RGB")
    if kind == "rotflip":
        base = np.asarray(resize_crop(image, resize, crop))
        views = []
        for flip in (False, True):
            oriented = base[:, ::-1] if flip else base
            for quarter in range(4):
                if flip or quarter:
                    views.append(np.ascontiguousarray(np.rot90(oriented, quarter)))
        return views
    resized = np.asarray(resize_shorter(image, resize))
    pad = math.ceil((math.sqrt(2) * crop - crop) / 2)
    views = []
    for flip in (False, True):
        oriented = resized[:, ::-1] if flip else resized
        padded = np.pad(oriented, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        for angle in range(0, 360, _STEPS[kind]):
            if not flip and angle == 0:
                continue
            rotated = Image.fromarray(np.ascontiguousarray(padded))
            if angle:
                rotated = rotated.rotate(angle, resample=Image.NEAREST, expand=False, fillcolor=(0, 0, 0))
            views.append(_centre_crop(np.asarray(rotated), crop))
    return views
