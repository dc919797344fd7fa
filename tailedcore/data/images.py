"""Image and mask loading with the paper's preprocessing: shorter side to ``resize``, centre crop ``crop``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image or mask file cannot be read; the message names the file and the fix."""


def _open(path: str | Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as handle:
            handle.load()
            return handle.convert(mode)
    except FileNotFoundError as err:
        raise ImageReadError(f"{path} does not exist; rebuild the dataset index (results/<dataset>/index.csv)") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(
            f"{path} is not a readable image ({err}); re-download or re-extract the dataset, or delete the file "
            "and rebuild the index"
        ) from err


def resize_shorter(image: Image.Image, resize: int) -> Image.Image:
    """torchvision ``Resize(resize)``: shorter side to ``resize``, bilinear (PIL antialiases when shrinking)."""
    width, height = image.size
    if width <= height:
        new_w, new_h = resize, int(resize * height / width)
    else:
        new_w, new_h = int(resize * width / height), resize
    return image.resize((new_w, new_h), Image.BILINEAR) if (new_w, new_h) != (width, height) else image


def resize_crop(image: Image.Image, resize: int, crop: int) -> Image.Image:
    """torchvision ``Resize(resize)`` then ``CenterCrop(crop)``."""
    image = resize_shorter(image, resize)
    new_w, new_h = image.size
    left = int(round((new_w - crop) / 2.0))
    top = int(round((new_h - crop) / 2.0))
    return image.crop((left, top, left + crop, top + crop))


def load_image(path: str | Path, resize: int, crop: int) -> np.ndarray:
    """RGB uint8 array (crop, crop, 3)."""
    return np.asarray(resize_crop(_open(path, "RGB"), resize, crop))


def load_mask(path: str | Path, resize: int, crop: int, gt_rule: str = "exact_one") -> np.ndarray:
    """Binary mask (crop, crop) of bool.

    The raw mask is binarised (> 0) first, which fixes VisA's small-id masks, then resized like the image.
    ``gt_rule`` decides which resized pixels count as anomalous: ``exact_one`` keeps pixels whose resized
    value is exactly 255 (the original code's uint8 cast), ``half`` keeps pixels >= 128.
    """
    raw = np.asarray(_open(path, "L"))
    binary = Image.fromarray(((raw > 0) * 255).astype(np.uint8))
    resized = np.asarray(resize_crop(binary, resize, crop))
    if gt_rule == "exact_one":
        return resized == 255
    if gt_rule == "half":
        return resized >= 128
    raise ValueError(f"unknown gt_rule {gt_rule!r}; use 'exact_one' or 'half'")
