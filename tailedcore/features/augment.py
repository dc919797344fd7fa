"""Tail augmentation views (docs/protocol.md §2.5): rotations and flips of the predicted tail images only.

``rot15flip`` / ``rot30flip`` / ``rot45flip``: every angle step x {no flip, flip}, minus the identity,
starting from the resized (not cropped) image: flip, edge-pad by ceil((sqrt(2)*crop - crop)/2), rotate
counter-clockwise about the centre (nearest neighbour, no expansion, zero fill), centre-crop.
``rotflip``: the 90-degree rotations x flip of the normal crop, minus the identity (7 views).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..data.images import Geometry, _open_raw, to_rgb

AUGMENTATIONS = ("none", "rot15flip", "rot30flip", "rot45flip", "rotflip")
_STEPS = {"rot15flip": 15, "rot30flip": 30, "rot45flip": 45}


def _centre_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = array.shape[:2]
    top, left = int(round((rows - height) / 2.0)), int(round((cols - width) / 2.0))
    return array[top : top + height, left : left + width]


def tail_views(path: str, geometry: Geometry, kind: str, fill=0) -> list[np.ndarray]:
    """The extra views (uint8 (height, width, 3) on the geometry's grid) of one image, without the identity.

    Crop geometry: as the original code (rotations start from the resized, uncropped image). Resize and pad
    geometries rotate the geometry's output, edge-padded so that no corner comes from outside it; on a
    non-square grid ``rotflip`` keeps the shape-preserving views only (horizontal and vertical flip, 180
    degrees: 3 views).
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown tail augmentation {kind!r}; choose from {AUGMENTATIONS}")
    if kind == "none":
        return []
    return transformed_views(to_rgb(_open_raw(path)), geometry, kind, fill)


def mask_views(mask: np.ndarray, geometry: Geometry, kind: str) -> list[np.ndarray]:
    """The views of a source bool mask that :func:`tail_views` makes of its image, in the same order: the same
    resize, crop or padding (bilinear), flips and rotations (nearest neighbour); float32, each pixel's defect
    share in [0, 1] (soft, as :func:`tailedcore.evaluation.diagnostics.mask_on_grid`)."""
    if kind == "none":
        return []
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return [view.astype(np.float32) / 255.0 for view in transformed_views(image, geometry, kind, 0)]


def transformed_views(image: Image.Image, geometry: Geometry, kind: str, fill=0) -> list[np.ndarray]:
    """The views of an RGB or single-channel image (:func:`tail_views`), as arrays on the geometry's grid."""
    height, width = geometry.shape
    if kind == "rotflip":
        base = np.asarray(geometry.apply(image, fill))
        if height != width:
            return [np.ascontiguousarray(v) for v in (base[:, ::-1], base[::-1], base[::-1, ::-1])]
        views = []
        for flip in (False, True):
            oriented = base[:, ::-1] if flip else base
            for quarter in range(4):
                if flip or quarter:
                    views.append(np.ascontiguousarray(np.rot90(oriented, quarter)))
        return views
    if geometry.mode == "crop":
        source = np.asarray(geometry.apply_resize_only(image))
        pad = math.ceil((math.sqrt(2) * geometry.crop - geometry.crop) / 2)
        pads = ((pad, pad), (pad, pad))
    else:
        source = np.asarray(geometry.apply(image, fill))
        side = math.ceil(math.hypot(height, width))
        pads = ((math.ceil((side - height) / 2),) * 2, (math.ceil((side - width) / 2),) * 2)
    pads += ((0, 0),) * (source.ndim - 2)
    black = (0, 0, 0) if source.ndim == 3 else 0
    views = []
    for flip in (False, True):
        oriented = source[:, ::-1] if flip else source
        padded = np.pad(oriented, pads, mode="edge")
        for angle in range(0, 360, _STEPS[kind]):
            if not flip and angle == 0:
                continue
            rotated = Image.fromarray(np.ascontiguousarray(padded))
            if angle:
                rotated = rotated.rotate(angle, resample=Image.NEAREST, expand=False, fillcolor=black)
            views.append(_centre_crop(np.asarray(rotated), height, width))
    return views
