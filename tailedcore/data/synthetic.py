"""Embedded synthetic industrial dataset in the MVTec AD layout.

Nine product categories (five textures, four objects with pose jitter) that look clearly different
to an ImageNet backbone, each with defect types whose binary masks are exact: a mask pixel is 1
exactly where the defect changed the rendering. Everything is a pure function of
``(seed, category, split, index)``, so changing the number of images never changes the images that
were already there.

Over 300 lines: nine categories' renderers and their defect painters, each a few lines, kept beside the
one seeding scheme that makes every image a pure function of its key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from . import KNOWN_CATEGORIES, SYNTHETIC_OBJECTS, SYNTHETIC_TEXTURES

TEXTURES, OBJECTS = SYNTHETIC_TEXTURES, SYNTHETIC_OBJECTS
CATEGORIES = KNOWN_CATEGORIES["synthetic"]
DEFECTS = {name: ("scratch", "stain", "hole") for name in TEXTURES}
DEFECTS.update({name: ("scratch", "stain", "missing") for name in OBJECTS})

_SPLIT_CODES = {"train": 0, "test_good": 1, "test_defect": 2}


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of one synthetic dataset (all of them change the images)."""

    seed: int = 0
    image_size: int = 128
    n_train: int = 60
    n_test_good: int = 12
    n_test_defect_per_type: int = 6
    categories: tuple[str, ...] = CATEGORIES
    defect_strength: float = 1.0
    defect_types: dict = field(default_factory=lambda: {k: list(v) for k, v in DEFECTS.items()})

    def __post_init__(self):
        unknown = sorted(set(self.categories) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown synthetic categories {unknown}; choose from {list(CATEGORIES)}")
        if self.image_size < 32:
            raise ValueError(f"synthetic image_size must be >= 32, got {self.image_size}")
        if min(self.n_train, self.n_test_good, self.n_test_defect_per_type) < 1:
            raise ValueError("synthetic image counts must all be >= 1")


# ----------------------------------------------------------------------------------------------
# rendering helpers (coordinates are in [0, 1); float images in [0, 1], shape (H, W, 3))


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(axis, axis)  # x, y


def _smooth_noise(rng: np.random.Generator, size: int, sigma_frac: float) -> np.ndarray:
    field_ = gaussian_filter(rng.standard_normal((size, size)), sigma=max(sigma_frac * size, 0.5), mode="wrap")
    return (field_ - field_.mean()) / (field_.std() + 1e-12)


def _rotate(x: np.ndarray, y: np.ndarray, cx: float, cy: float, angle: float):
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return c * dx + s * dy, -s * dx + c * dy


def _colour(base, shade: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(base, dtype=np.float64)[None, None, :] * shade[..., None], 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# normal renderings: each returns (image, foreground mask where defects may be placed)


def _fabric(rng, size):
    x, y = _coords(size)
    u, v = _rotate(x, y, 0.5, 0.5, rng.normal(0, 0.03))
    freq = 14 + rng.normal(0, 0.3)
    phase = rng.uniform(0, 2 * np.pi, 2)
    warp = np.sin(2 * np.pi * freq * u + phase[0])
    weft = np.sin(2 * np.pi * freq * v + phase[1])
    shade = 0.75 + 0.18 * np.where((np.floor(freq * u + phase[0]) + np.floor(freq * v + phase[1])) % 2 == 0, warp, weft)
    return _colour((0.80, 0.30, 0.28), shade), np.ones((size, size), bool), None


def _marble(rng, size):
    x, y = _coords(size)
    noise = _smooth_noise(rng, size, 0.06)
    veins = np.abs(np.sin(2 * np.pi * (3 * x + 1.5 * y) + 2.5 * noise + rng.uniform(0, 2 * np.pi)))
    shade = 0.70 + 0.25 * veins**0.5
    img = _colour((0.92, 0.92, 0.95), shade)
    img[..., 2] = np.clip(img[..., 2] + 0.08 * (1 - veins), 0, 1)
    return img, np.ones((size, size), bool), None


def _wood(rng, size):
    x, y = _coords(size)
    noise = _smooth_noise(rng, size, 0.08)
    cx = rng.uniform(-0.6, -0.2)
    rings = np.sin(2 * np.pi * (9 * np.sqrt((x - cx) ** 2 + 0.02 * (y - 0.5) ** 2) + 0.6 * noise))
    shade = 0.72 + 0.16 * rings + 0.04 * _smooth_noise(rng, size, 0.01)
    return _colour((0.72, 0.48, 0.26), shade), np.ones((size, size), bool), None


def _mesh(rng, size):
    x, y = _coords(size)
    period = 0.1
    off = rng.uniform(0, period, 2)
    dist_x = np.abs(((x + off[0]) % period) - period / 2)
    dist_y = np.abs(((y + off[1]) % period) - period / 2)
    wire = np.minimum(dist_x, dist_y) < 0.012
    shade = 0.80 + 0.05 * _smooth_noise(rng, size, 0.2)
    img = _colour((0.62, 0.66, 0.70), shade)
    img[wire] *= 0.35
    return img, np.ones((size, size), bool), None


def _perforated(rng, size):
    x, y = _coords(size)
    period = 0.125
    off = rng.uniform(0, period, 2)
    row = np.floor((y + off[1]) / period)
    xs = x + off[0] + (row % 2) * period / 2
    dx = (xs % period) - period / 2
    dy = ((y + off[1]) % period) - period / 2
    hole = dx**2 + dy**2 < (0.032) ** 2
    shade = 0.85 + 0.05 * _smooth_noise(rng, size, 0.25)
    img = _colour((0.20, 0.55, 0.30), shade)
    img[hole] = (0.08, 0.12, 0.09)
    return img, np.ones((size, size), bool), None


def _background(rng, size, rgb):
    shade = 1.0 + 0.03 * _smooth_noise(rng, size, 0.3)
    return _colour(rgb, shade)


def _washer(rng, size):
    x, y = _coords(size)
    cx, cy = 0.5 + rng.normal(0, 0.02, 2)
    r = np.hypot(x - cx, y - cy)
    ring = (r < 0.32) & (r > 0.13)
    angle = 0.8 + rng.uniform(-0.6, 0.6)  # the notch: a visible rotation jitter of about +-35 degrees
    theta = np.arctan2(y - cy, x - cx)
    notch = (np.abs(np.angle(np.exp(1j * (theta - angle)))) < 0.12) & (r > 0.27)
    background = _background(rng, size, (0.15, 0.15, 0.18))
    img = background.copy()
    shade = 0.75 + 0.2 * np.cos(theta - 0.8) * (r - 0.13) / 0.19
    metal = _colour((0.80, 0.78, 0.70), shade)
    body = ring & ~notch
    img[body] = metal[body]
    return img, body, background


def _pill(rng, size):
    x, y = _coords(size)
    cx, cy = 0.5 + rng.normal(0, 0.02, 2)
    u, v = _rotate(x, y, cx, cy, rng.normal(0, 0.08))
    half_len, radius = 0.26, 0.13
    body = np.hypot(np.maximum(np.abs(u) - half_len, 0), v) < radius
    background = _background(rng, size, (0.30, 0.32, 0.45))
    img = background.copy()
    shade = 0.9 + 0.1 * (1 - (v / radius) ** 2)
    left = _colour((0.95, 0.95, 0.92), shade)
    right = _colour((0.85, 0.25, 0.20), shade)
    img[body & (u < 0)] = left[body & (u < 0)]
    img[body & (u >= 0)] = right[body & (u >= 0)]
    return img, body, background


def _screw(rng, size):
    x, y = _coords(size)
    cx, cy = 0.5 + rng.normal(0, 0.015, 2)
    u, v = _rotate(x, y, cx, cy, np.pi / 4 + rng.normal(0, 0.06))
    shaft = (np.abs(v) < 0.06) & (u > -0.25) & (u < 0.33)
    head = np.hypot(u + 0.30, v) < 0.12
    thread = shaft & (((u + 0.25) * 28) % 1 < 0.35)
    background = _background(rng, size, (0.88, 0.88, 0.86))
    img = background.copy()
    shade = 0.65 + 0.25 * np.cos(v / 0.06 * np.pi / 2) ** 2
    metal = _colour((0.60, 0.62, 0.66), shade)
    body = shaft | head
    img[body] = metal[body]
    img[thread] *= 0.75
    slot = head & (np.abs(v) < 0.015)
    img[slot] = (0.2, 0.2, 0.22)
    return img, body, background


def _chip(rng, size):
    x, y = _coords(size)
    cx, cy = 0.5 + rng.normal(0, 0.015, 2)
    u, v = _rotate(x, y, cx, cy, rng.normal(0, 0.03))
    package = (np.abs(u) < 0.22) & (np.abs(v) < 0.22)
    pins = np.zeros_like(package)
    pitch = 0.44 / 6
    for axis_a, axis_b in ((u, v), (v, u)):
        along = ((axis_b + 0.22) % pitch) < pitch * 0.5
        within = (np.abs(axis_b) < 0.21) & (np.abs(axis_a) >= 0.22) & (np.abs(axis_a) < 0.29)
        pins |= along & within
    background = _background(rng, size, (0.10, 0.40, 0.18))
    img = background.copy()
    img[pins] = (0.82, 0.82, 0.78)
    img[package] = (0.12, 0.12, 0.13)
    dot = np.hypot(u + 0.15, v + 0.15) < 0.025
    img[dot] = (0.35, 0.35, 0.36)
    return img, package | pins, background


RENDERERS: dict[str, Callable] = {
    "fabric": _fabric,
    "marble": _marble,
    "wood": _wood,
    "mesh": _mesh,
    "perforated": _perforated,
    "washer": _washer,
    "pill": _pill,
    "screw": _screw,
    "chip": _chip,
}

# ----------------------------------------------------------------------------------------------
# defects: each returns the binary mask of the pixels it changes; the image is changed in place


def _pick_centre(rng, fg: np.ndarray, size: int) -> tuple[float, float]:
    lo, hi = int(0.2 * size), int(0.8 * size)
    ys, xs = np.nonzero(fg[lo:hi, lo:hi])
    k = rng.integers(len(ys))
    return (xs[k] + lo + 0.5) / size, (ys[k] + lo + 0.5) / size


def _scratch(rng, img, fg, size, strength):
    x, y = _coords(size)
    cx, cy = _pick_centre(rng, fg, size)
    angle = rng.uniform(0, np.pi)
    u, v = _rotate(x, y, cx, cy, angle)
    length = rng.uniform(0.10, 0.22)
    bend = rng.uniform(-1.5, 1.5)
    width = max(1.2 / size, 0.006)
    region = (np.abs(v - bend * u**2) < width) & (np.abs(u) < length / 2) & fg
    # lighter on dark surfaces, darker on light ones, so the scratch is never clipped away
    sign = 1.0 if img[region].mean() < 0.5 else -1.0
    img[region] = np.clip(img[region] + sign * strength * rng.uniform(0.25, 0.43), 0, 1)
    return region


def _stain(rng, img, fg, size, strength):
    x, y = _coords(size)
    cx, cy = _pick_centre(rng, fg, size)
    u, v = _rotate(x, y, cx, cy, rng.uniform(0, np.pi))
    a, b = rng.uniform(0.035, 0.07), rng.uniform(0.025, 0.05)
    wobble = 1 + 0.15 * np.sin(5 * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
    region = ((u / a) ** 2 + (v / b) ** 2 < wobble**2) & fg
    tint = rng.choice([(0.23, 0.16, -0.05), (-0.19, -0.12, -0.05), (0.05, -0.14, 0.19)])
    img[region] = np.clip(img[region] + strength * np.asarray(tint), 0, 1)
    return region


def _hole(rng, img, fg, size, strength):
    x, y = _coords(size)
    cx, cy = _pick_centre(rng, fg, size)
    radius = rng.uniform(0.035, 0.055)
    region = (np.hypot(x - cx, y - cy) < radius) & fg
    depth = min(1.0, strength * rng.uniform(0.63, 0.99))
    img[region] = img[region] * (1 - depth)
    return region


def _missing(rng, img, fg, size, strength, *, background):
    x, y = _coords(size)
    # bite out a piece at the object's edge: choose a foreground pixel next to the background
    edge = fg & ~np.roll(fg, 2, axis=0) | fg & ~np.roll(fg, -2, axis=1)
    edge[: int(0.2 * size)] = edge[int(0.8 * size) :] = False
    edge[:, : int(0.2 * size)] = edge[:, int(0.8 * size) :] = False
    cx, cy = _pick_centre(rng, edge if edge.any() else fg, size)
    radius = rng.uniform(0.045, 0.075) * min(1.0, strength)
    region = (np.hypot(x - cx, y - cy) < radius) & fg
    img[region] = background[region]
    return region


_DEFECT_FUNCS = {"scratch": _scratch, "stain": _stain, "hole": _hole}


def render(category: str, spec: SyntheticSpec, split: str, index: int, defect: str | None = None):
    """Render one image; returns (uint8 image HxWx3, bool mask HxW or None for a normal image).

    The defect-free rendering of the same ``(split, index)`` is identical outside the mask: the scene,
    the gain and the sensor noise come from their own streams, the defect from a third.
    """
    stream = [spec.seed, CATEGORIES.index(category), _SPLIT_CODES[split], index]
    size = spec.image_size
    img, fg, background = RENDERERS[category](np.random.default_rng(stream + [0]), size)
    mask = None
    if defect is not None:
        rng = np.random.default_rng(stream + [1])
        if defect == "missing":
            mask = _missing(rng, img, fg, size, spec.defect_strength, background=background)
        else:
            mask = _DEFECT_FUNCS[defect](rng, img, fg, size, spec.defect_strength)
        if not mask.any():
            raise RuntimeError(f"synthetic defect {defect} on {category}/{index} produced an empty mask")
    sensor = np.random.default_rng(stream + [2])
    img = img * (1 + sensor.normal(0, 0.02)) + sensor.normal(0, 0.012, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def write_dataset(root: str | Path, spec: SyntheticSpec) -> dict:
    """Write the dataset under ``root`` in the MVTec AD layout; returns a summary (also root/synthetic.json)."""
    root = Path(root)
    counts = {}
    for category in spec.categories:
        cat_dir = root / category
        for i in range(spec.n_train):
            save_png(cat_dir / "train" / "good" / f"{i:03d}.png", render(category, spec, "train", i)[0])
        for i in range(spec.n_test_good):
            save_png(cat_dir / "test" / "good" / f"{i:03d}.png", render(category, spec, "test_good", i)[0])
        types = spec.defect_types[category]
        for t, defect in enumerate(types):
            for i in range(spec.n_test_defect_per_type):
                index = 1000 * (t + 1) + i
                image, mask = render(category, spec, "test_defect", index, defect)
                save_png(cat_dir / "test" / defect / f"{i:03d}.png", image)
                save_png(cat_dir / "ground_truth" / defect / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)
        counts[category] = {
            "train": spec.n_train,
            "test_good": spec.n_test_good,
            "test_defect": spec.n_test_defect_per_type * len(types),
        }
    summary = {"spec": asdict(spec), "counts": counts}
    summary["spec"]["categories"] = list(spec.categories)
    (root / "synthetic.json").write_text(json.dumps(summary, indent=2))
    return summary


def save_png(path: Path, array: np.ndarray) -> None:
    """Write an image or mask array as PNG (fast compression), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=False, compress_level=1)
