"""Pixel metrics on the model's grid against native resolution, on thin defects in elongated images.

    python bench/native.py                       # generate (once), run, evaluate twice: a few minutes on 2 cores

A folder dataset of line-scan strips (1024 x 128, 8:1) from three of the embedded synthetic textures, with
two defect types: one-pixel scratches (thin, long) and small stains. The run uses the custom template's
settings (pad 192 x 192, so a strip lands on 192 x 24 pixels of the grid) with one tail and one split seed;
its fits are evaluated once with `evaluation.resolution: model` and once with `native` (only the evaluation
and the tables rerun). Prints how many masks each resolution loses and the pixel metrics of every method in
both; writes results/bench/native.csv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tailedcore.data.synthetic import SyntheticSpec, render, save_png  # noqa: E402

CATEGORIES = ("fabric", "wood", "mesh")
WIDTH, HEIGHT = 1024, 128
TRAIN, TEST_GOOD, PER_TYPE = (80, 60, 40), 20, 15


def _strip(category: str, split: str, index: int) -> np.ndarray:
    spec = SyntheticSpec(seed=5, image_size=WIDTH, categories=(category,))
    image = render(category, spec, split, index)[0]
    top = (WIDTH - HEIGHT) // 2
    return image[top : top + HEIGHT]


def _defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A one-pixel scratch (a long thin line) or a small stain (an ellipse), painted lighter or darker."""
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(mask)
    if kind == "scratch":
        x0, y0 = rng.integers(20, WIDTH - 420), rng.integers(10, HEIGHT - 10)
        length, slope = rng.integers(150, 400), rng.uniform(-0.08, 0.08)
        draw.line([(x0, y0), (x0 + length, int(np.clip(y0 + slope * length, 2, HEIGHT - 3)))], fill=255, width=1)
    else:
        cx, cy, rx, ry = (
            rng.integers(30, WIDTH - 30),
            rng.integers(15, HEIGHT - 15),
            rng.integers(4, 12),
            rng.integers(3, 8),
        )
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    region = np.asarray(mask) > 0
    out = image.astype(np.float32) / 255
    sign = 1.0 if out[region].mean() < 0.5 else -1.0
    out[region] = np.clip(out[region] + sign * 0.35, 0, 1)
    return (out * 255 + 0.5).astype(np.uint8), region


def generate(root: Path) -> dict:
    marker = root / "native.json"
    if marker.exists():
        return json.loads(marker.read_text())
    rng = np.random.default_rng(0)
    counts = {}
    for category, train in zip(CATEGORIES, TRAIN):
        folder = root / category
        for i in range(train):
            save_png(folder / "train" / "good" / f"{i:03d}.png", _strip(category, "train", i))
        for i in range(TEST_GOOD):
            save_png(folder / "test" / "good" / f"{i:03d}.png", _strip(category, "test_good", i))
        for t, kind in enumerate(("scratch", "stain")):
            for i in range(PER_TYPE):
                image, region = _defect(_strip(category, "test_defect", 1000 * (t + 1) + i), kind, rng)
                save_png(folder / "test" / kind / f"{i:03d}.png", image)
                save_png(folder / "ground_truth" / kind / f"{i:03d}_mask.png", region.astype(np.uint8) * 255)
        counts[category] = {"train": train, "test_good": TEST_GOOD, "test_defect": 2 * PER_TYPE}
    marker.write_text(json.dumps(counts, indent=2))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/tailedcore-native-data")
    parser.add_argument("--work", default="/tmp/tailedcore-native")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args()
    generate(Path(args.data))
    config = yaml.safe_load((ROOT / "config" / "custom.yaml").read_text())
    config["datasets"]["custom"].update(path=args.data, categories=list(CATEGORIES))
    config["splits"].update(tails=["step_k4"], seeds=[1])
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    snakemake = Path(sys.executable).with_name("snakemake")
    results = {}
    for resolution in ("model", "native"):
        config["evaluation"]["resolution"] = resolution
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        subprocess.run(
            [str(snakemake), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", "config.yaml"]
            + ["--cores", "2"],
            check=True,
            cwd=work,
        )
        tables = work / "results" / "tables"
        shutil.copytree(tables, work / f"tables_{resolution}", dirs_exist_ok=True)
        results[resolution] = pd.read_csv(tables / "custom_per_class.csv")
    both = pd.concat([frame.assign(resolution=name) for name, frame in results.items()], ignore_index=True)
    pixel = both[both["metric"].str.contains("pixel")]
    table = pixel.groupby(["metric", "method", "resolution"])["value_percent"].mean().unstack("resolution").round(2)
    emptied = both[both["metric"] == "image_auroc"].groupby(["resolution", "category"])["n_masks_emptied"].max()
    print(table.to_string())
    print("\nmasks emptied per category:\n" + emptied.unstack("resolution").to_string())
    Path(args.out).mkdir(parents=True, exist_ok=True)
    table.reset_index().to_csv(Path(args.out) / "native.csv", index=False)


if __name__ == "__main__":
    main()
