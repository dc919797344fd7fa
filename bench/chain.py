"""The whole chain at a realistic size: a folder dataset of about 3,500 images in five categories, run with
the custom template (config/custom.yaml: pad 192 x 192, three tails, two split seeds, four methods), timed
per stage from the workflow's own benchmark files.

    python bench/chain.py                                   # generate (once) and run: about 30 min on 2 cores
    python bench/chain.py --set methods.tailedcore.coreset_ratio=0.05 --work /tmp/chain-r05   # a variant

The images come from the embedded synthetic renderers (five of the nine categories), at the sizes and class
counts of a real five-category folder: 516 to 914 training images in the head classes, non-square images,
enough defective images that every head class can give 10 % noise. Prints the time of each stage, the
end-to-end wall time and the image and pixel AUROC table; writes results/bench/chain.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tailedcore.data.synthetic import DEFECTS, SyntheticSpec, render, save_png  # noqa: E402

# category -> (training images, rendered side, (height, width) kept: a centre crop of the rendering)
CLASSES = {
    "fabric": (914, 256, (256, 256)),
    "wood": (700, 320, (256, 320)),
    "screw": (560, 288, (288, 288)),
    "pill": (516, 320, (240, 320)),
    "chip": (100, 256, (256, 256)),
}
TEST_GOOD, DEFECTS_PER_TYPE = 30, 40


def _crop(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top, left = (array.shape[0] - shape[0]) // 2, (array.shape[1] - shape[1]) // 2
    return array[top : top + shape[0], left : left + shape[1]]


def generate(root: Path) -> dict:
    """Write the dataset once (a marker file records it); returns its counts."""
    marker = root / "chain.json"
    if marker.exists():
        return json.loads(marker.read_text())
    counts = {}
    for category, (train, side, shape) in CLASSES.items():
        spec = SyntheticSpec(seed=7, image_size=side, categories=(category,))
        for i in range(train):
            save_png(
                root / category / "train" / "good" / f"{i:04d}.png", _crop(render(category, spec, "train", i)[0], shape)
            )
        for i in range(TEST_GOOD):
            save_png(
                root / category / "test" / "good" / f"{i:04d}.png",
                _crop(render(category, spec, "test_good", i)[0], shape),
            )
        defects = 0
        for t, defect in enumerate(DEFECTS[category]):
            written, index = 0, 1000 * (t + 1)
            while written < DEFECTS_PER_TYPE:
                image, mask = render(category, spec, "test_defect", index, defect)
                index += 1
                mask = _crop(mask, shape)
                if not mask.any():  # the defect fell outside the crop: draw another
                    continue
                save_png(root / category / "test" / defect / f"{written:04d}.png", _crop(image, shape))
                save_png(
                    root / category / "ground_truth" / defect / f"{written:04d}_mask.png", mask.astype(np.uint8) * 255
                )
                written += 1
            defects += written
        counts[category] = {"train": train, "test_good": TEST_GOOD, "test_defect": defects, "shape": list(shape)}
    marker.write_text(json.dumps(counts, indent=2))
    return counts


def config_for(root: Path, overrides: list[str]) -> dict:
    """config/custom.yaml with the dataset's path and categories, and ``key.path=value`` overrides."""
    config = yaml.safe_load((ROOT / "config" / "custom.yaml").read_text())
    config["datasets"]["custom"].update(path=str(root), categories=list(CLASSES))
    for item in overrides:
        key, value = item.split("=", 1)
        block = config
        *parents, last = key.split(".")
        for part in parents:
            block = block.setdefault(part, {})
        block[last] = yaml.safe_load(value)
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/tailedcore-chain-data", help="where the dataset is generated")
    parser.add_argument("--work", default="/tmp/tailedcore-chain", help="the run's working directory")
    parser.add_argument("--set", action="append", default=[], help="config override key.path=value (repeatable)")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args()
    started = time.perf_counter()
    counts = generate(Path(args.data))
    images = sum(c["train"] + c["test_good"] + c["test_defect"] for c in counts.values())
    print(f"dataset: {images} images in {len(counts)} categories ({time.perf_counter() - started:.0f} s)", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(Path(args.data), args.set)))
    snakemake = Path(sys.executable).with_name("snakemake")
    started = time.perf_counter()
    subprocess.run(
        [str(snakemake), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", "config.yaml"]
        + ["--cores", args.cores],
        check=True,
        cwd=work,
    )
    wall = time.perf_counter() - started
    runtime = pd.read_csv(work / "results" / "tables" / "custom_runtime.csv")
    print(runtime.to_string(index=False))
    stages = _stage_seconds([work / "resources" / "benchmarks", work / "results" / "benchmarks"])
    stages.loc[len(stages)] = ["end to end (wall)", 1, wall]
    print(stages.to_string(index=False))
    print(f"end to end: {wall / 60:.1f} min on {args.cores} cores")
    for table in ("custom_image_auroc.md", "custom_pixel_auroc.md"):
        print((work / "results" / "tables" / table).read_text())
    Path(args.out).mkdir(parents=True, exist_ok=True)
    stages.to_csv(Path(args.out) / "chain.csv", index=False)


def _stage_seconds(folders: list[Path]) -> pd.DataFrame:
    """Jobs and summed seconds per rule, from Snakemake's benchmark files (<folder>/<rule>/...)."""
    rows = []
    for rule in [p for folder in folders if folder.exists() for p in sorted(folder.iterdir()) if p.is_dir()]:
        seconds = [pd.read_csv(f, sep="\t")["s"].iloc[0] for f in rule.rglob("*.tsv")]
        rows.append([rule.name, len(seconds), float(np.sum(seconds))])
    return pd.DataFrame(rows, columns=["stage", "jobs", "seconds"])


if __name__ == "__main__":
    main()
