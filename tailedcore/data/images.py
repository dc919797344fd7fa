"""Image and mask loading, and the geometry that maps every image, mask and anomaly map of a dataset onto
one shared grid.

Three geometries (``features.geometry``), the same for images, masks and anomaly maps:

- ``crop``: the paper's preprocessing, shorter side to ``resize`` then a square centre crop of ``crop``;
- ``resize``: squash to ``size`` = (height, width), any aspect;
- ``pad``: letterbox into ``size``: scale to fit, aspect kept, centred; the padding is never scored as a
  defect and never counted in pixel metrics (:meth:`Geometry.valid`).

Images of any mode are read as RGB uint8 (16-bit and 32-bit greyscale scaled, not clipped; palette, RGBA,
CMYK converted), masks of any mode are binarised (> 0), and the EXIF orientation is applied to both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

GEOMETRIES = ("crop", "resize", "pad")


class ImageReadError(ValueError):
    """An image or mask file cannot be read; the message names the file and the fix."""


def _open_raw(path) -> Image.Image:
    """The decoded image with its EXIF orientation applied."""
    try:
        with Image.open(path) as handle:
            handle.load()
            return ImageOps.exif_transpose(handle)
    except FileNotFoundError as err:
        raise ImageReadError(
            f"{path} does not exist; rebuild the dataset index (results/<dataset>/index/<category>.csv)"
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(
            f"{path} is not a readable image ({err}); re-download or re-extract the dataset, or delete the file "
            "(a folder dataset's index follows its files)"
        ) from err


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB of any PIL mode. 16-bit and 32-bit greyscale are scaled to 8 bits over their full range
    (65535 -> 255), never clipped; float images are taken as 0..1."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) <= 65535 else float(array.max())
        scaled = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if image.mode == "F":
        scaled = np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def mask_array(image: Image.Image) -> np.ndarray:
    """A mask of any mode as bool (non-zero = defect): a palette mask by its colours (not its indices), an
    alpha channel masks out fully transparent pixels."""
    if image.mode == "P":
        image = image.convert("RGBA")
    array = np.asarray(image)
    if array.ndim == 2:
        return array > 0
    if image.mode in ("RGBA", "LA"):
        return (array[..., :-1] > 0).any(axis=-1) & (array[..., -1] > 0)
    return (array > 0).any(axis=-1)


@dataclass(frozen=True)
class Geometry:
    """Where every image of a dataset lands on the shared (height, width) grid."""

    mode: str = "crop"
    resize: int = 256
    crop: int = 224
    size: tuple[int, int] | None = None  # (height, width), for resize and pad

    def __post_init__(self):
        if self.mode not in GEOMETRIES:
            raise ValueError(f"unknown geometry {self.mode!r}; choose one of {GEOMETRIES}")
        if self.mode == "crop" and self.crop > self.resize:
            raise ValueError(f"features.crop ({self.crop}) is larger than features.resize ({self.resize})")
        if self.mode != "crop" and (self.size is None or len(self.size) != 2):
            raise ValueError(f"geometry {self.mode!r} needs features.size: [height, width]")

    @classmethod
    def from_features(cls, features: dict) -> Geometry:
        mode = features.get("geometry", "crop")
        size = features.get("size")
        return cls(
            mode=mode,
            resize=int(features.get("resize", 256)),
            crop=int(features.get("crop", 224)),
            size=(int(size[0]), int(size[1])) if size is not None and mode != "crop" else None,
        )

    def as_block(self) -> dict:
        """The config's spelling of this geometry (the features block's keys): the inverse of
        :meth:`from_features`."""
        size = list(self.size) if self.size is not None else None
        return {"geometry": self.mode, "resize": self.resize, "crop": self.crop, "size": size}

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of every image, mask and anomaly map."""
        return (self.crop, self.crop) if self.mode == "crop" else tuple(self.size)

    def describe(self) -> str:
        if self.mode == "crop":
            return f"crop {self.crop} (shorter side {self.resize})"
        return f"{self.mode} {self.size[0]}x{self.size[1]}"

    def layout(self, width: int, height: int):
        """(resized (w, h), box (left, top, right, bottom)): the box of the resized image kept (crop), or where
        it is pasted (pad), in output pixels; for resize the whole grid."""
        return self._layout(width, height)

    def _layout(self, width: int, height: int):
        """(resized (w, h), the box of the resized image kept (crop), or pasted (pad), in output pixels)."""
        out_h, out_w = self.shape
        if self.mode == "crop":
            if width <= height:
                new = (self.resize, int(self.resize * height / width))
            else:
                new = (int(self.resize * width / height), self.resize)
            left = int(round((new[0] - self.crop) / 2.0))
            top = int(round((new[1] - self.crop) / 2.0))
            return new, (left, top, left + self.crop, top + self.crop)
        if self.mode == "resize":
            return (out_w, out_h), (0, 0, out_w, out_h)
        scale = min(out_w / width, out_h / height)
        new = (max(1, min(out_w, round(width * scale))), max(1, min(out_h, round(height * scale))))
        left, top = (out_w - new[0]) // 2, (out_h - new[1]) // 2
        return new, (left, top, left + new[0], top + new[1])

    def apply(self, image: Image.Image, fill=0) -> Image.Image:
        """An image (any mode PIL accepts) on the output grid. ``fill``: the padding value (pad only)."""
        _, box = self._layout(*image.size)
        resized = self.apply_resize_only(image)
        if self.mode == "crop":
            return resized.crop(box)
        if self.mode == "resize":
            return resized
        canvas = Image.new(resized.mode, (self.shape[1], self.shape[0]), fill)
        canvas.paste(resized, box[:2])
        return canvas

    def apply_resize_only(self, image: Image.Image) -> Image.Image:
        """The image resized, before its crop or padding (the crop geometry's rotated views start here)."""
        new, _ = self._layout(*image.size)
        return image.resize(new, Image.BILINEAR) if new != image.size else image

    def valid(self, width: int, height: int) -> np.ndarray:
        """(height, width) bool of the output pixels that show the image (False = padding)."""
        out = np.zeros(self.shape, dtype=bool)
        if self.mode != "pad":
            out[:] = True
            return out
        _, (left, top, right, bottom) = self._layout(width, height)
        out[top:bottom, left:right] = True
        return out

    def valid_cells(self, width: int, height: int, grid: tuple[int, int]) -> np.ndarray:
        """(gh, gw) bool of the patch cells whose centre shows the image (at least the central cell)."""
        if self.mode != "pad":
            return np.ones(grid, dtype=bool)
        valid = self.valid(width, height)
        rows = ((np.arange(grid[0]) + 0.5) * self.shape[0] / grid[0]).astype(int)
        cols = ((np.arange(grid[1]) + 0.5) * self.shape[1] / grid[1]).astype(int)
        cells = valid[np.ix_(rows, cols)]
        if not cells.any():
            cells[grid[0] // 2, grid[1] // 2] = True
        return cells

    def area_scale(self, width: int, height: int) -> float:
        """Output pixels per source pixel."""
        new, _ = self._layout(width, height)
        return new[0] * new[1] / float(width * height)


def load_image(path, geometry: Geometry, fill=0) -> np.ndarray:
    """RGB uint8 array (height, width, 3) on the geometry's grid."""
    return np.asarray(geometry.apply(to_rgb(_open_raw(path)), fill))


def threshold_mask(resized: np.ndarray, gt_rule: str) -> np.ndarray:
    """Which resized mask pixels (0..255) count as defect: ``exact_one`` keeps pixels whose resized value is
    exactly 255 (the original code's uint8 cast), ``half`` keeps pixels >= 128."""
    if gt_rule == "exact_one":
        return resized == 255
    if gt_rule == "half":
        return resized >= 128
    raise ValueError(f"unknown gt_rule {gt_rule!r}; use 'exact_one' or 'half'")


def read_mask(path) -> np.ndarray:
    """The source mask as bool (height, width), EXIF orientation applied, binarised (> 0)."""
    return mask_array(_open_raw(path))


def transform_mask(binary: np.ndarray, geometry: Geometry, gt_rule: str = "exact_one") -> np.ndarray:
    """A source bool mask on the geometry's grid, resized like the image and thresholded by ``gt_rule``."""
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    return threshold_mask(np.asarray(geometry.apply(image, 0)), gt_rule)


def load_mask(path, geometry: Geometry, gt_rule: str = "exact_one") -> np.ndarray:
    """Binary mask (height, width) of bool on the geometry's grid (VisA's small-id masks are fixed by the
    binarisation)."""
    return transform_mask(read_mask(path), geometry, gt_rule)


def header(path) -> tuple[int, int, str]:
    """(width, height, mode) from the file header, EXIF orientation applied, without decoding the pixels."""
    with Image.open(path) as handle:
        width, height = handle.size
        orientation = handle.getexif().get(0x0112, 1)
        return (height, width, handle.mode) if orientation in (5, 6, 7, 8) else (width, height, handle.mode)


LOSSY_FORMATS = ("JPEG", "MPO", "WEBP", "JPEG2000")  # PIL format names whose compression moves pixel values


def body_problem(path) -> str | None:
    """What is wrong with an image's body, read without decoding its pixels (None when it is whole): a JPEG
    must end in its end-of-image marker (a truncated copy or download loses it; the marker cannot occur in
    entropy-coded data), a PNG must pass ``verify`` (every chunk read and its CRC checked). Measured cost:
    bench/run.py, index (well under a millisecond per image; a full decode costs 5-15 ms)."""
    with Image.open(path) as handle:
        kind = handle.format
        if kind == "PNG":
            handle.verify()
            return None
    if kind in ("JPEG", "MPO"):
        with open(path, "rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(0, size - 4096))
            if b"\xff\xd9" not in stream.read():
                return "truncated JPEG: no end-of-image marker at its end (an interrupted copy or download)"
    return None


def mask_values(path) -> dict:
    """What check needs to know of a mask: its file format, whether that format is lossy, the pixel count,
    the defect pixels (> 0, as every mask is binarised) and the ambiguous ones (neither 0 nor the mask's
    largest value: JPEG ringing, anti-aliased edges), on its grey levels."""
    with Image.open(path) as image:  # value counts: the EXIF orientation does not matter
        kind = image.format
        grey = np.asarray(image.convert("L") if image.mode not in ("L", "I", "I;16", "F") else image)
    top = grey.max() if grey.size else 0
    return {
        "format": kind,
        "lossy": kind in LOSSY_FORMATS,
        "pixels": int(grey.size),
        "defect": int(np.count_nonzero(grey > 0)),
        "ambiguous": int(np.count_nonzero((grey > 0) & (grey != top))),
    }
