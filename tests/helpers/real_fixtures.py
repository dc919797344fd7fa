"""A small MVTec-layout folder with what real industrial images bring: elongated 16-bit greyscale images of
many sizes in one class with defects at the borders, 4:3 colour photos as EXIF-rotated JPEGs with
uppercase extensions, RGBA and palette masks, and an all-zero mask. Optional damage for the error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _texture(rng, height: int, width: int) -> np.ndarray:
    """A smooth random texture in [0, 1]."""
    coarse = rng.random((height // 8 + 2, width // 8 + 2))
    image = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR))
    return image.astype(np.float64) / 255.0


def _border_defect(rng, height: int, width: int) -> np.ndarray:
    """A defect at one end of an elongated image (a centre crop cuts it away)."""
    mask = np.zeros((height, width), dtype=bool)
    top = int(rng.integers(2, max(3, height // 10)))
    left = int(rng.integers(width // 4, 3 * width // 4))
    mask[top : top + max(3, height // 12), left : left + max(4, width // 6)] = True
    if rng.random() < 0.5:
        mask = mask[::-1]
    return mask


# file names real datasets have: spaces, unicode, brackets, a leading dash, two spaces, a newline-free quote
ODD_STEMS = ("kratzer ü 3", "IMG 0001", "[b] (2)", "-lead", "a  b", "it's #1", "x,y;z", "NA")


def _stem(prefix: str, i: int, odd: bool) -> str:
    return f"{ODD_STEMS[i % len(ODD_STEMS)]} {prefix}{i:02d}" if odd else f"{prefix}{i:02d}"


def write_real_folder(
    root: Path,
    n_train: int = 8,
    n_good: int = 3,
    n_defect: int = 3,
    all_zero_mask: bool = True,
    masks: bool = True,
    odd_names: bool = False,
) -> Path:
    """With ``odd_names`` every file name carries one of :data:`ODD_STEMS` (masks follow their image's name)."""
    rng = np.random.default_rng(0)
    # class "strip": greyscale line-scan style, 1:2.5 portrait, a different size for every image, 16-bit PNG
    for split, label, count in (("train", "good", n_train), ("test", "good", n_good), ("test", "crack", n_defect)):
        folder = root / "strip" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            width = int(rng.integers(36, 48))
            height = int(width * 2.5) + int(rng.integers(0, 6))
            image = 0.35 + 0.3 * _texture(rng, height, width)
            if label != "good":
                mask = _border_defect(rng, height, width)
                image[mask] = 0.02  # a dark crack
                if masks:
                    gt = root / "strip" / "ground_truth" / label
                    gt.mkdir(parents=True, exist_ok=True)
                    if all_zero_mask and i == 0:
                        mask = np.zeros_like(mask)  # labelled defective, but the mask marks nothing
                    rgba = np.zeros((height, width, 4), dtype=np.uint8)
                    rgba[mask] = (255, 255, 255, 255)
                    Image.fromarray(rgba, "RGBA").save(gt / f"{_stem('s', i, odd_names)}_mask.png")
            Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(folder / f"{_stem('s', i, odd_names)}.png")
    # class "photo": colour 4:3 photos, stored sideways as JPEG with EXIF orientation 6, extension .JPG
    for split, label, count in (("train", "good", n_train), ("test", "good", n_good), ("test", "dent", n_defect)):
        folder = root / "photo" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            height, width = 48, 64
            image = np.stack([0.2 + 0.6 * _texture(rng, height, width) for _ in range(3)], axis=-1)
            if label != "good":
                mask = np.zeros((height, width), dtype=bool)
                mask[height - 8 : height - 2, 2:12] = True  # at the bottom-left border
                image[mask] = (0.95, 0.1, 0.1)
                if masks:
                    gt = root / "photo" / "ground_truth" / label
                    gt.mkdir(parents=True, exist_ok=True)
                    palette = Image.fromarray(mask.astype(np.uint8), "P")
                    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
                    palette.save(gt / f"{_stem('p', i, odd_names)}_mask.PNG")
            upright = Image.fromarray(np.round(image * 255).astype(np.uint8))
            stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
            exif = Image.Exif()
            exif[0x0112] = 6  # rotate 90 CW to display: undoes the ROTATE_90 (counter-clockwise) above
            stored.save(folder / f"{_stem('p', i, odd_names)}.JPG", quality=95, exif=exif)
    return root


def damage(root: Path) -> list[str]:
    """Break the folder in the three ways the index must report together; returns the offending paths."""
    wrong = root / "strip" / "ground_truth" / "crack" / "s01_mask.png"
    with Image.open(wrong) as mask:
        small = mask.resize((mask.width // 2, mask.height // 2))
    small.save(wrong)
    unreadable = root / "photo" / "train" / "good" / "p01.JPG"
    unreadable.write_bytes(b"not an image at all")
    missing = root / "photo" / "ground_truth" / "dent" / "p02_mask.PNG"
    missing.unlink()
    return [str(wrong), str(unreadable), "p02"]
